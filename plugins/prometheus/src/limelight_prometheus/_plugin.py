"""The limelight-prometheus plugin object (entry point ``prometheus``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight_hookspecs import EnvVar, StoreReader, TelemetryView, hookimpl

from ._env import (
    LIMELIGHT_PROMETHEUS_SERVER,
    LIMELIGHT_PROMETHEUS_TARGET_INFO,
    OTEL_EXPORTER_PROMETHEUS_HOST,
    OTEL_EXPORTER_PROMETHEUS_PORT,
    PROMETHEUS_MULTIPROC_DIR,
)

__all__ = ["PrometheusPlugin", "plugin"]


class PrometheusPlugin:
    """Serves the metric store to Prometheus (``OTEL_METRICS_EXPORTER`` name ``prometheus``)."""

    limelight_name = "prometheus"
    limelight_priority = 100

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (
            OTEL_EXPORTER_PROMETHEUS_HOST,
            OTEL_EXPORTER_PROMETHEUS_PORT,
            LIMELIGHT_PROMETHEUS_SERVER,
            LIMELIGHT_PROMETHEUS_TARGET_INFO,
            PROMETHEUS_MULTIPROC_DIR,
        )

    @hookimpl
    def limelight_metrics_provide_readers(self, telemetry: TelemetryView) -> Sequence[StoreReader]:
        config = telemetry.config
        if not config.exporter_enabled("metrics", self.limelight_name):
            return ()
        # imported only when Prometheus is an exporter: a process that exports
        # elsewhere never loads the exposition and its server
        from ._server import PrometheusReader

        reader = PrometheusReader(
            telemetry,
            host=config.get(OTEL_EXPORTER_PROMETHEUS_HOST),
            port=config.get(OTEL_EXPORTER_PROMETHEUS_PORT),
            serve=config.get(LIMELIGHT_PROMETHEUS_SERVER),
        )
        return (reader,)


plugin = PrometheusPlugin()
"""The plugin instance registered through the ``limelight.plugins`` entry point."""
