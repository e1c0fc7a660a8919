"""The OpenTelemetry logs signal: the SDK's and the OTLP exporters' log pieces.

Assumption ``logs-sdk`` (see :mod:`limelight._sdk`): the logs signal is still
in development in OpenTelemetry Python, so its API and SDK live in private
modules: ``opentelemetry._logs`` (``LogRecord``, ``SeverityNumber``),
``opentelemetry.sdk._logs`` (``LoggerProvider``, ``LogRecordProcessor``,
``ReadableLogRecord``, ``ReadWriteLogRecord``), ``opentelemetry.sdk._logs.export``
(``LogRecordExporter``, ``LogRecordExportResult``) and the OTLP exporters'
``opentelemetry.exporter.otlp.proto.{http,grpc}._log_exporter``
(``OTLPLogExporter``). limelight uses them as they are (the logger provider,
the records and their limits, the exception fields, the OTLP encoding and
transport) rather than copies. When a release moved them, :data:`AVAILABLE`
is false: no log pipeline is built (no record is exported), and trace ids in
log lines and their counts are unaffected.
"""

from __future__ import annotations

import importlib
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import TraceFlags

from . import fallback

__all__ = [
    "AVAILABLE",
    "ApiLogRecord",
    "LogRecordExportResult",
    "LogRecordExporter",
    "LogRecordProcessor",
    "LoggerProvider",
    "ReadWriteLogRecord",
    "ReadableLogRecord",
    "SeverityNumber",
    "make_record",
    "otlp_log_exporter_class",
    "readable",
]

try:
    from opentelemetry._logs import LogRecord as ApiLogRecord
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import (
        LoggerProvider,
        LogRecordProcessor,
        ReadableLogRecord,
        ReadWriteLogRecord,
    )
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    AVAILABLE = True
except ImportError as exc:  # pragma: no cover - a release that moved the logs signal
    fallback("logs-sdk", "no log export (trace ids in log lines and their counts unaffected)", exc)
    AVAILABLE = False

    class _Missing:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the OpenTelemetry logs SDK is not available")

    ApiLogRecord = LoggerProvider = ReadableLogRecord = ReadWriteLogRecord = _Missing  # type: ignore[assignment,misc]

    class LogRecordProcessor:  # type: ignore[no-redef]
        """Stand-in base class: nothing is built on it while the SDK is missing."""

    class LogRecordExporter:  # type: ignore[no-redef]
        """Stand-in base class: nothing is built on it while the SDK is missing."""

    SeverityNumber = LogRecordExportResult = None  # type: ignore[assignment,misc]


def make_record(
    *,
    timestamp: int,
    context: Any,
    severity_number: int,
    severity_text: str,
    body: Any,
    attributes: Any,
    trace_id: int,
    span_id: int,
    trace_flags: int,
    exception: BaseException | None,
) -> Any:
    """An API ``LogRecord`` with the ids given (not those of *context*, which it keeps)."""
    record = ApiLogRecord(
        timestamp=timestamp,
        context=context,
        severity_number=SeverityNumber(severity_number),
        severity_text=severity_text,
        body=body,
        attributes=attributes,
        exception=exception,
    )
    record.trace_id = trace_id
    record.span_id = span_id
    record.trace_flags = TraceFlags(trace_flags)
    return record


def readable(record: Any) -> Any:
    """The ``ReadableLogRecord`` of an emitted ``ReadWriteLogRecord``, as the SDK's batch
    processor makes it: a shallow copy of the record without its (possibly large) context."""
    import copy

    api = copy.copy(record.log_record)
    api.context = Context()
    return ReadableLogRecord(
        log_record=api,
        resource=record.resource,
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )


def otlp_log_exporter_class(grpc: bool) -> type[Any]:
    """``OTLPLogExporter`` of opentelemetry-exporter-otlp-proto-grpc (*grpc*) or -http.

    :raises ImportError: that exporter package is not installed (or moved it).
    """
    module = importlib.import_module(
        f"opentelemetry.exporter.otlp.proto.{'grpc' if grpc else 'http'}._log_exporter"
    )
    found: type[Any] = module.OTLPLogExporter
    return found
