"""The plugin object: declares the SDK metrics and variables, drains the metric buffer
while telemetry runs, adds the tracing interceptor to new clients."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from limelight_hookspecs import (
    Config,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    TelemetryView,
    hookimpl,
)

from ._catalog import SDK_METRICS
from ._env import LIMELIGHT_TEMPORAL_INSTRUMENT, VARIABLES

__all__ = ["METRIC_UPDATES_DROPPED", "PLUGIN_METRICS", "TemporalPlugin", "plugin"]

METRIC_UPDATES_DROPPED = MetricDeclaration(
    "limelight_temporal_metric_updates_dropped_total",
    MetricKind.COUNTER,
    "Temporal SDK metric updates that did not reach the store, by reason (buffer_full: "
    "the runtime's buffer was full; metric_limit: past LIMELIGHT_TEMPORAL_METRIC_LIMIT; "
    "conflict: the name is taken by another metric; invalid: unusable update).",
    unit="1",
    label_names=("reason",),
    series_limit=10,
)

PLUGIN_METRICS: tuple[MetricDeclaration, ...] = (*SDK_METRICS, METRIC_UPDATES_DROPPED)
"""Everything the plugin declares at start."""


class TemporalPlugin:
    """Temporal: the SDK's metrics in the store, the tracing interceptor on new clients."""

    limelight_name = "temporal"
    limelight_priority = 260

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return VARIABLES

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return PLUGIN_METRICS

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        # the bridge exists once the application built a runtime with limelight's
        # metric buffer (limelight_temporal.runtime()); temporalio is never imported here
        metrics = sys.modules.get(f"{__package__}._metrics")
        if metrics is not None:
            metrics.bridge.telemetry_started()
        if telemetry.config.get(LIMELIGHT_TEMPORAL_INSTRUMENT):
            from ._instrument import instrumentation

            instrumentation.instrument_on_import("temporalio")

    @hookimpl
    def limelight_lifecycle_stop(self, telemetry: TelemetryView, timeout: float) -> None:
        metrics = sys.modules.get(f"{__package__}._metrics")
        if metrics is not None:
            # the last drain, before the core's final export: nothing recorded is lost
            metrics.bridge.drain(telemetry)


plugin = TemporalPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
