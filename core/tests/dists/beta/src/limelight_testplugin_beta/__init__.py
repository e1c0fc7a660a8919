"""Test-only plugin: records its lifecycle calls to $LIMELIGHT_TEST_LOG, declares a metric."""

from __future__ import annotations

import os
from collections.abc import Sequence

from limelight_hookspecs import Config, MetricDeclaration, MetricKind, TelemetryView, hookimpl

NAME = "beta"


def _log(event: str) -> None:
    path = os.environ.get("LIMELIGHT_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{NAME}:{event}\n")


class Plugin:
    limelight_priority = 250

    @hookimpl
    def limelight_lifecycle_configure(self, config: Config) -> None:
        _log("configure")

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return (MetricDeclaration(f"{NAME}_events_total", MetricKind.COUNTER, "Test events."),)

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        _log("start")

    @hookimpl
    def limelight_lifecycle_stop(self, telemetry: TelemetryView, timeout: float) -> None:
        _log("stop")


plugin = Plugin()
