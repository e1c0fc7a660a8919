"""The plugin object: declares the metrics and variables, instruments the libraries at start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight_hookspecs import Config, EnvVar, MetricDeclaration, TelemetryView, hookimpl

from ._env import LIMELIGHT_HTTPCLIENT_INSTRUMENT, VARIABLES
from ._instrumentation import instrumentation
from ._metrics import ALL_METRICS

__all__ = ["HttpClientPlugin", "plugin"]


class HttpClientPlugin:
    """Outbound HTTP: httpx and requests, a CLIENT span and three metrics per request."""

    limelight_name = "httpclient"
    limelight_priority = 210

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return VARIABLES

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return ALL_METRICS

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        # each library when the application imports it: never imported for nothing
        libraries: tuple[str, ...] = telemetry.config.get(LIMELIGHT_HTTPCLIENT_INSTRUMENT)
        if libraries:
            instrumentation.instrument_on_import(*libraries)


plugin = HttpClientPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
