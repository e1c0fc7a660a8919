"""limelight-jsonl: spans and metrics appended to a file as JSON lines."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from limelight_hookspecs import (
    EnvVar,
    HistogramPoint,
    SelfMetrics,
    SnapshotSource,
    StoreReader,
    TelemetryView,
    hookimpl,
    parse_str,
)

__all__ = ["LIMELIGHT_JSONL_PATH", "JsonLinesPlugin", "plugin"]

LIMELIGHT_JSONL_PATH = EnvVar(
    "LIMELIGHT_JSONL_PATH",
    "",
    parse_str,
    "File the spans and metrics are appended to, one JSON object a line; "
    "nothing is exported while it is unset.",
    "/var/log/myapp/telemetry.jsonl",
)


class JsonLinesFile:
    """Appends records to one file; safe to share between threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, records: list[dict[str, Any]]) -> bool:
        """Append *records*; false when the file cannot be written (it never raises)."""
        text = "".join(json.dumps(record, default=str) + "\n" for record in records)
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError:  # a missing directory, no permission, a full disk
            return False
        return True


class JsonLinesSpanExporter(SpanExporter):
    """Writes each batch of spans; limelight's batch processor calls it off the hot path."""

    def __init__(self, out: JsonLinesFile) -> None:
        self.out = out

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        records = []
        for span in spans:
            ctx, parent = span.context, span.parent
            records.append(
                {
                    "type": "span",
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
                    "span_id": f"{ctx.span_id:016x}" if ctx else None,
                    "parent_id": f"{parent.span_id:016x}" if parent else None,
                    "start_ns": span.start_time,
                    "end_ns": span.end_time,
                    "status": span.status.status_code.name,
                    "attributes": dict(span.attributes or {}),
                }
            )
        # FAILURE is counted by the core in limelight_export_errors_total{exporter="jsonl"}
        return SpanExportResult.SUCCESS if self.out.write(records) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        return None


class JsonLinesMetricsReader:
    """A store reader: writes every series of the metric store on each flush."""

    def __init__(self, store: SnapshotSource, out: JsonLinesFile, health: SelfMetrics) -> None:
        self.store = store
        self.out = out
        self.health = health

    def start(self) -> None:
        return None

    def force_flush(self, timeout: float) -> bool:
        records: list[dict[str, Any]] = []
        for family in self.store.snapshot():
            for point in family.points:
                record: dict[str, Any] = {
                    "type": "metric",
                    "name": family.name,
                    "kind": family.kind.value,
                    "labels": dict(point.labels),
                }
                if isinstance(point, HistogramPoint):
                    record.update(
                        count=point.count,
                        sum=point.sum,
                        bounds=list(point.bounds),
                        buckets=list(point.bucket_counts),
                    )
                else:
                    record["value"] = point.value
                records.append(record)
        if self.out.write(records):
            return True
        self.health.export_error("jsonl")  # a reader counts its own failures
        return False

    def shutdown(self, timeout: float) -> None:
        return None  # the core calls force_flush() first: the last values are written


class JsonLinesPlugin:
    """The exporter name is ``jsonl`` (for OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER)."""

    limelight_name = "jsonl"
    limelight_priority = 150

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (LIMELIGHT_JSONL_PATH,)

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        out = self._file(telemetry, "traces")
        return (JsonLinesSpanExporter(out),) if out is not None else ()

    @hookimpl
    def limelight_metrics_provide_readers(self, telemetry: TelemetryView) -> Sequence[StoreReader]:
        out = self._file(telemetry, "metrics")
        if out is None:
            return ()
        return (JsonLinesMetricsReader(telemetry.store, out, telemetry.self_metrics),)

    def _file(self, telemetry: TelemetryView, signal: str) -> JsonLinesFile | None:
        config = telemetry.config
        path = config.get(LIMELIGHT_JSONL_PATH)
        if not path or not config.exporter_enabled(signal, self.limelight_name):
            return None
        return JsonLinesFile(path)


plugin = JsonLinesPlugin()
