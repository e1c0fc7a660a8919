"""limelight-otlp: spans, the metric store and log records over OTLP (http/protobuf or gRPC).

Installed, it exports every sampled span through the core's bounded batch
processor and pushes the metric store every ``OTEL_METRIC_EXPORT_INTERVAL``
milliseconds, both to the endpoints the ``OTEL_EXPORTER_OTLP_*`` variables
name. Metrics are read from the same store Prometheus serves, so one
observation counts once in every sink, with the same buckets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._exporters import (
        DeferredExporter,
        GatedSpanExporter,
        build_metric_exporter,
        build_span_exporter,
        effective_protocol,
    )
    from ._log_export import GatedLogExporter, build_log_exporter
    from ._logs import LogGate
    from ._metrics import (
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
        OtlpConverter,
        OtlpMetricsReader,
        Temporality,
        to_metrics_data,
    )
    from ._plugin import OtlpPlugin, plugin


__all__ = [
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "DeferredExporter",
    "GatedLogExporter",
    "GatedSpanExporter",
    "LogGate",
    "OtlpConverter",
    "OtlpMetricsReader",
    "OtlpPlugin",
    "Temporality",
    "build_log_exporter",
    "build_metric_exporter",
    "build_span_exporter",
    "effective_protocol",
    "plugin",
    "to_metrics_data",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._exporters": (
            "DeferredExporter",
            "GatedSpanExporter",
            "build_metric_exporter",
            "build_span_exporter",
            "effective_protocol",
        ),
        "._log_export": (
            "GatedLogExporter",
            "build_log_exporter",
        ),
        "._logs": ("LogGate",),
        "._metrics": (
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "OtlpConverter",
            "OtlpMetricsReader",
            "Temporality",
            "to_metrics_data",
        ),
        "._plugin": (
            "OtlpPlugin",
            "plugin",
        ),
    },
)
