"""The limelight-console plugin object (entry point ``console``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from limelight_hookspecs import EnvVar, StoreReader, TelemetryView, hookimpl, parse_bool

from ._console import ConsoleMetricsSummary, ConsoleSpanProcessor

__all__ = ["LIMELIGHT_CONSOLE_ATTRIBUTES", "ConsolePlugin", "plugin"]

LIMELIGHT_CONSOLE_ATTRIBUTES = EnvVar(
    "LIMELIGHT_CONSOLE_ATTRIBUTES",
    True,
    parse_bool,
    "Show span attributes in the console trace trees (long values are shortened).",
    "false",
)


class ConsolePlugin:
    """Spans as trees as traces complete, and a metrics summary at stop, on stderr.

    For development: exporter name ``console`` in ``OTEL_TRACES_EXPORTER`` /
    ``OTEL_METRICS_EXPORTER``.
    """

    limelight_name = "console"
    limelight_priority = 120

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (LIMELIGHT_CONSOLE_ATTRIBUTES,)

    @hookimpl
    def limelight_spans_provide_processors(
        self, telemetry: TelemetryView
    ) -> Sequence[SpanProcessor]:
        config = telemetry.config
        if not config.exporter_enabled("traces", self.limelight_name):
            return ()
        return (ConsoleSpanProcessor(attributes=config.get(LIMELIGHT_CONSOLE_ATTRIBUTES)),)

    @hookimpl
    def limelight_metrics_provide_readers(self, telemetry: TelemetryView) -> Sequence[StoreReader]:
        if not telemetry.config.exporter_enabled("metrics", self.limelight_name):
            return ()
        return (ConsoleMetricsSummary(telemetry.store),)


plugin = ConsolePlugin()
"""The plugin instance registered through the ``limelight.plugins`` entry point."""
