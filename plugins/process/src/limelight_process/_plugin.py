"""The plugin object: declares the metrics and variables, instruments at start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight_hookspecs import Config, EnvVar, MetricDeclaration, TelemetryView, hookimpl

from ._env import LIMELIGHT_PROCESS_INSTRUMENT, VARIABLES
from ._instrumentation import INSTRUMENTATION
from ._metrics import ALL_METRICS

__all__ = ["ProcessPlugin", "plugin"]


class ProcessPlugin:
    """Spawned processes and pool tasks: a span per child, four metrics, context handed over."""

    limelight_name = "process"
    limelight_priority = 240

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return VARIABLES

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return ALL_METRICS

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        # each library when the application imports it (at once when it already has)
        libraries: tuple[str, ...] = telemetry.config.get(LIMELIGHT_PROCESS_INSTRUMENT)
        if libraries:
            INSTRUMENTATION.instrument_on_import(*libraries)


plugin = ProcessPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
