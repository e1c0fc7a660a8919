"""What an exporter plugin needs, for exporter authors.

An exporter plugin reads the one metric store (a :class:`StoreReader` returned
from ``limelight_metrics_provide_readers`` reads ``telemetry.store.snapshot()``,
a :class:`MetricsSnapshot`) and contributes span exporters
(``limelight_spans_provide_exporters``), which the core wraps in its bounded
batch processor, and log record exporters (``limelight_logs_provide_exporters``:
a :class:`LogRecordExporter`, which receives :class:`ReadableLogRecord` batches),
batched the same way. :class:`ExportWorker` runs periodic exports on one thread
with deadlines; :class:`ExportHealth` counts failed exports and logs an
episode once; :func:`suppressed` keeps an exporter's own network calls out
of the surfaces that would record them. :func:`restricted_metric` answers a
Prometheus ``?name[]=`` scrape as prometheus_client's own registry does. See
``docs/exporter-guide.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from limelight_hookspecs import (
    Exemplar,
    HistogramPoint,
    MetricFamily,
    MetricsSnapshot,
    NumberPoint,
    SelfMetrics,
    SnapshotSource,
    StoreReader,
    TelemetryView,
)

from ._export import ExportHealth, ExportWorker, suppressed
from ._sdk.prometheus import restricted_metric

if TYPE_CHECKING:
    from ._sdk.logs import (
        LogRecordExporter,
        LogRecordExportResult,
        LogRecordProcessor,
        ReadableLogRecord,
        otlp_log_exporter_class,
    )

__all__ = [
    "Exemplar",
    "ExportHealth",
    "ExportWorker",
    "HistogramPoint",
    "LogRecordExportResult",
    "LogRecordExporter",
    "LogRecordProcessor",
    "MetricFamily",
    "MetricsSnapshot",
    "NumberPoint",
    "ReadableLogRecord",
    "SelfMetrics",
    "SnapshotSource",
    "StoreReader",
    "TelemetryView",
    "otlp_log_exporter_class",
    "restricted_metric",
    "suppressed",
]

_LOGS = frozenset(
    (
        "LogRecordExportResult",
        "LogRecordExporter",
        "LogRecordProcessor",
        "ReadableLogRecord",
        "otlp_log_exporter_class",
    )
)
"""The logs signal's names: the OpenTelemetry logs SDK under them loads when one is
first asked for, so an exporter that takes no log records never imports it."""


def __getattr__(name: str) -> Any:
    if name in _LOGS:
        value = getattr(importlib.import_module("._sdk.logs", __package__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
