"""The limelight-otlp plugin object (entry point ``otlp``)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace.export import SpanExporter

from limelight_hookspecs import EnvVar, StoreReader, TelemetryView, hookimpl

from ._exporters import GatedSpanExporter, build_metric_exporter, build_span_exporter
from ._metrics import (
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
    OtlpMetricsReader,
    api_temporality,
)

__all__ = ["OtlpPlugin", "plugin"]


class OtlpPlugin:
    """Exports spans, the metric store and log records over OTLP (exporter name ``otlp``).

    Configured by the ``OTEL_EXPORTER_OTLP_*`` variables the core reads into
    ``config.otlp_traces`` / ``config.otlp_metrics`` / ``config.otlp_logs``;
    selected with ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` /
    ``OTEL_LOGS_EXPORTER``. Log records come from surfaces such as limelight-logs.
    """

    limelight_name = "otlp"
    limelight_priority = 110

    def __init__(self) -> None:
        # per running telemetry: the reader on its OpenTelemetry MeterProvider
        self._api_readers: weakref.WeakKeyDictionary[object, InMemoryMetricReader] = (
            weakref.WeakKeyDictionary()
        )

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,)

    @hookimpl
    def limelight_metrics_provide_otel_readers(
        self, telemetry: TelemetryView
    ) -> Sequence[MetricReader]:
        """Read the OpenTelemetry API instruments so they travel with the store's metrics."""
        if not telemetry.config.exporter_enabled("metrics", self.limelight_name):
            return ()
        preference = telemetry.config.get(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE)
        reader = InMemoryMetricReader(preferred_temporality=api_temporality(preference))
        self._api_readers[telemetry] = reader
        return (reader,)

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        config = telemetry.config
        if not config.exporter_enabled("traces", self.limelight_name):
            return ()
        exporter, gate = build_span_exporter(config)
        return (GatedSpanExporter(exporter, gate),)

    @hookimpl
    def limelight_logs_provide_exporters(self, telemetry: TelemetryView) -> Sequence[Any]:
        """Log records over OTLP (``OTEL_LOGS_EXPORTER``, ``OTEL_EXPORTER_OTLP_LOGS_*``)."""
        config = telemetry.config
        if not config.exporter_enabled("logs", self.limelight_name):
            return ()
        # imported here: with log records not exported, a start never loads the logs SDK
        from ._log_export import GatedLogExporter, build_log_exporter

        exporter, gate = build_log_exporter(config)
        return (GatedLogExporter(exporter, gate),)

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
            api_reader=self._api_readers.get(telemetry),
            temporality=config.get(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE),
        )
        return (reader,)


plugin = OtlpPlugin()
"""The plugin instance registered through the ``limelight.plugins`` entry point."""
