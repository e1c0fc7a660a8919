"""Every environment variable the plugin reads, declared once."""

from __future__ import annotations

from typing import Any

from limelight_hookspecs import EnvVar, parse_bool, parse_float, parse_int

__all__ = [
    "LIMELIGHT_TEMPORAL_INSTRUMENT",
    "LIMELIGHT_TEMPORAL_METRICS_INTERVAL",
    "LIMELIGHT_TEMPORAL_METRIC_LIMIT",
    "VARIABLES",
]

LIMELIGHT_TEMPORAL_INSTRUMENT = EnvVar(
    "LIMELIGHT_TEMPORAL_INSTRUMENT",
    True,
    parse_bool,
    "Add the tracing interceptor to every Temporal client created after telemetry starts "
    "(and so to the workers built on them). With false only clients given "
    "limelight_temporal.TracingInterceptor() are traced.",
    "false",
)
LIMELIGHT_TEMPORAL_METRICS_INTERVAL = EnvVar(
    "LIMELIGHT_TEMPORAL_METRICS_INTERVAL",
    1.0,
    parse_float(minimum=0.05, maximum=60.0),
    "Seconds between two drains of the Temporal runtime's metric buffer into the store "
    "(it is drained at stop too).",
    "0.5",
)
LIMELIGHT_TEMPORAL_METRIC_LIMIT = EnvVar(
    "LIMELIGHT_TEMPORAL_METRIC_LIMIT",
    500,
    parse_int(minimum=1),
    "Distinct metrics the Temporal SDK may add to the store besides the known SDK metrics "
    "(custom metric_meter() metrics, a newer SDK's); updates of further ones are dropped "
    "and counted.",
    "1000",
)

VARIABLES: tuple[EnvVar[Any], ...] = (
    LIMELIGHT_TEMPORAL_INSTRUMENT,
    LIMELIGHT_TEMPORAL_METRICS_INTERVAL,
    LIMELIGHT_TEMPORAL_METRIC_LIMIT,
)
"""Every variable the plugin reads, in documentation order."""
