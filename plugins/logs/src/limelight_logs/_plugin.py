"""The logs plugin: declares ``log_emissions_total`` and its variable, instruments at start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight_hookspecs import (
    Config,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    TelemetryView,
    hookimpl,
    parse_list,
)

__all__ = [
    "LIBRARIES",
    "LIMELIGHT_LOGS_INSTRUMENT",
    "LOG_EMISSIONS",
    "LogsPlugin",
    "plugin",
]

LIBRARIES: tuple[str, ...] = ("logging", "structlog")
"""The logging libraries the plugin instruments, by import name."""

LOG_EMISSIONS = MetricDeclaration(
    "log_emissions_total",
    MetricKind.COUNTER,
    "Log records emitted, by level (debug, info, warning, error, critical, or a custom "
    "level's name): counted once each as it is made, whatever the handlers then do with it.",
    unit="1",
    label_names=("level",),
    series_limit=100,
)


def _parse_libraries(raw: str) -> tuple[str, ...]:
    names = tuple(name.lower() for name in parse_list(raw))
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in LIBRARIES]
    if unknown:
        raise ValueError(f"unknown library {unknown[0]!r}; expected {', '.join(LIBRARIES)} or none")
    return names


LIMELIGHT_LOGS_INSTRUMENT = EnvVar[tuple[str, ...]](
    "LIMELIGHT_LOGS_INSTRUMENT",
    LIBRARIES,
    _parse_libraries,
    "Logging libraries instrumented when telemetry starts (those installed among logging, "
    "structlog): trace ids in every record made inside a span, log_emissions_total, and OTLP "
    "log records where an exporter takes them; none to instrument nothing (call "
    "limelight_logs.instrument() yourself).",
    "logging",
)


class LogsPlugin:
    """Trace context in log lines, ``log_emissions_total``, log records to exporters.

    At telemetry start it instruments the libraries ``LIMELIGHT_LOGS_INSTRUMENT``
    names (both by default); instrumented code counts only while a running
    telemetry has this plugin loaded (the one started last counts).
    """

    limelight_name = "logs"
    limelight_priority = 205

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (LIMELIGHT_LOGS_INSTRUMENT,)

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return (LOG_EMISSIONS,)

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        from limelight import Telemetry

        from ._context import started
        from ._instrumentation import instrument_at_start

        if isinstance(telemetry, Telemetry):
            started(telemetry)  # it counts the lines from now on
        wanted: tuple[str, ...] = telemetry.config.get(LIMELIGHT_LOGS_INSTRUMENT)
        instrument_at_start(wanted)
        from ._export import attach
        from ._stdlib import installed

        # the telemetry starting (not yet the running one the bindings see)
        if installed.active and getattr(telemetry, "log_emitter", None) is not None:
            attach()  # log records to the exporters that take them

    @hookimpl
    def limelight_lifecycle_stop(self, telemetry: TelemetryView, timeout: float) -> None:
        from limelight import Telemetry

        from ._context import stopped
        from ._export import detach

        if isinstance(telemetry, Telemetry):
            stopped(telemetry)  # the lines after this are not its own
        detach()  # nothing takes records any more: logging's last resort is back


plugin = LogsPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
