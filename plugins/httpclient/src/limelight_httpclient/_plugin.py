"""The plugin object: declares the metrics and variables, instruments the libraries at start."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import structlog

from limelight_hookspecs import Config, EnvVar, MetricDeclaration, TelemetryView, hookimpl

from ._env import LIMELIGHT_HTTPCLIENT_INSTRUMENT, VARIABLES
from ._metrics import ALL_METRICS

__all__ = ["HttpClientPlugin", "instrument_libraries", "plugin"]

_log = structlog.get_logger("limelight.httpclient")


def instrument_libraries(names: Sequence[str]) -> list[str]:
    """Instrument every installed library among *names* globally; return those done now.

    A library that is not installed is skipped; one that fails to instrument
    is reported and the others are still instrumented.
    """
    done: list[str] = []
    for name in names:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            if name == "httpx":
                from ._httpx import instrument_httpx

                installed = instrument_httpx()
            else:
                from ._requests import instrument_requests

                installed = instrument_requests()
        except Exception as exc:
            _log.error(
                "could not instrument the http client library", library=name, error=repr(exc)
            )
            continue
        if installed:
            done.append(name)
    return done


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
        libraries: tuple[str, ...] = telemetry.config.get(LIMELIGHT_HTTPCLIENT_INSTRUMENT)
        instrument_libraries(libraries)


plugin = HttpClientPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
