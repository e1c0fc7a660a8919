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

        # each library when the application imports it: never imported for nothing
        wanted: tuple[str, ...] = telemetry.config.get(LIMELIGHT_QUEUE_INSTRUMENT)
        if wanted:
            instrumentation.instrument_on_import(*wanted)


plugin = QueuePlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
