"""The plugin object: declares the metrics and variables, instruments the libraries at start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight_hookspecs import Config, EnvVar, MetricDeclaration, TelemetryView, hookimpl

from ._env import LIMELIGHT_QUEUE_INSTRUMENT, VARIABLES
from ._metrics import ALL_METRICS

__all__ = ["QueuePlugin", "plugin"]


class QueuePlugin:
    """Messaging: aio-pika, pika and nats-py, a span and the queue metrics per message."""

    limelight_name = "queue"
    limelight_priority = 240

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return VARIABLES

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return ALL_METRICS

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        from ._instrument import instrumentation

        wanted: tuple[str, ...] = telemetry.config.get(LIMELIGHT_QUEUE_INSTRUMENT)
        for name in wanted:
            instrumentor = instrumentation.instrumentors[name]
            if instrumentor.is_instrumented() or not instrumentor.available():
                continue
            try:
                instrumentor.instrument()
            except Exception as exc:
                from ._core import report

                report(f"instrument {name}", exc)


plugin = QueuePlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
