"""Log records over OTLP: the OpenTelemetry OTLP log exporter, built from limelight's settings.

The exporter is opentelemetry-exporter-otlp's own ``OTLPLogExporter`` (http/protobuf,
or gRPC when ``OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`` or ``OTEL_EXPORTER_OTLP_PROTOCOL``
says ``grpc``), configured from ``config.otlp_logs``; the core batches for it
(``OTEL_BLRP_*``) and runs every export in a suppressed context, so nothing the
export logs (this exporter's failures, its HTTP client's lines) comes back as a
log record. Its own failure lines go through the logs gate: one per failure
episode, as for the other signals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight.export import (
    LogRecordExporter,
    LogRecordExportResult,
    ReadableLogRecord,
    otlp_log_exporter_class,
)
from limelight_hookspecs import Config

from ._exporters import (
    _GRPC_LOGGER,
    DeferredExporter,
    _grpc_kwargs,
    _http_kwargs,
    effective_protocol,
)
from ._logs import LogGate, gate_for

__all__ = ["GatedLogExporter", "build_log_exporter"]


def build_log_exporter(config: Config) -> tuple[LogRecordExporter, LogGate]:
    """The OTLP log exporter for ``config.otlp_logs`` (made at first use, as a
    :class:`~limelight_otlp.DeferredExporter`) and its log gate."""
    settings = config.otlp_logs
    grpc = effective_protocol(config, settings, "logs") == "grpc"
    module = f"opentelemetry.exporter.otlp.proto.{'grpc' if grpc else 'http'}._log_exporter"
    shared = (_GRPC_LOGGER,) if grpc else ()

    def make() -> Any:
        exporter_class = otlp_log_exporter_class(grpc)
        kwargs = _grpc_kwargs(settings) if grpc else _http_kwargs(settings)
        exporter = exporter_class(**kwargs)
        gate_for("logs", own=(module,), shared=shared)  # the filters its import added
        return exporter

    deferred: Any = DeferredExporter(make)
    return deferred, gate_for("logs", own=(module,), shared=shared)


class GatedLogExporter(LogRecordExporter):
    """Delegates to an OTLP log exporter under its log gate; a success reopens the gate.

    :param exporter: the OTLP exporter.
    :param gate: the logs gate.
    """

    def __init__(self, exporter: LogRecordExporter, gate: LogGate) -> None:
        self.exporter = exporter
        self._gate = gate

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        with self._gate.exporting():
            result = self.exporter.export(batch)
        if result is LogRecordExportResult.SUCCESS:
            self._gate.reset()
        return result

    def shutdown(self) -> Any:
        with self._gate.exporting():
            return self.exporter.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._gate.exporting():
            return self.exporter.force_flush(timeout_millis)
