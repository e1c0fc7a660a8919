"""The limelight-otlp plugin object (entry point ``otlp``)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace.export import SpanExporter

from limelight_hookspecs import StoreReader, TelemetryView, hookimpl

from ._exporters import GatedSpanExporter, build_metric_exporter, build_span_exporter
from ._metrics import OtlpMetricsReader

__all__ = ["OtlpPlugin", "plugin"]


class OtlpPlugin:
    """Exports spans and the metric store over OTLP (exporter name ``otlp``).

    Configured by the ``OTEL_EXPORTER_OTLP_*`` variables the core reads into
    ``config.otlp_traces`` / ``config.otlp_metrics``; selected with
    ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``.
    """

    limelight_name = "otlp"
    limelight_priority = 110

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        config = telemetry.config
        if not config.exporter_enabled("traces", self.limelight_name):
            return ()
        exporter, gate = build_span_exporter(config)
        return (GatedSpanExporter(exporter, gate),)

    @hookimpl
    def limelight_metrics_provide_readers(self, telemetry: TelemetryView) -> Sequence[StoreReader]:
        config = telemetry.config
        if not config.exporter_enabled("metrics", self.limelight_name):
            return ()
        exporter, gate = build_metric_exporter(config)
        reader = OtlpMetricsReader(
            telemetry.store,
            telemetry.resource,
            exporter,
            interval=config.metric_export_interval,
            timeout=min(config.metric_export_timeout, config.otlp_metrics.timeout),
            self_metrics=telemetry.self_metrics,
            gate=gate,
            name=self.limelight_name,
        )
        return (reader,)


plugin = OtlpPlugin()
"""The plugin instance registered through the ``limelight.plugins`` entry point."""
