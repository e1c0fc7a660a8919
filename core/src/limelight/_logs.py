"""The log pipeline: OpenTelemetry log records to the exporters plugins contribute.

Built at telemetry start only when some plugin contributes a log record
exporter or processor (``limelight_logs_provide_*``): an SDK
``LoggerProvider`` with the telemetry's resource, a
:class:`BoundedBatchLogProcessor` per exporter, the processors as given. A
surface hands records to it through :class:`LogEmitter` (``telemetry.log_emitter``),
with no OpenTelemetry logs type of its own to import.

The batch processor is the span one's twin, for the same reasons: the SDK's
``BatchLogRecordProcessor`` exports in the caller's thread on ``force_flush``
without a bound and counts nothing it loses. This one exports only from its
worker thread, under :func:`~limelight.export.suppressed` (so what an export
logs, its HTTP client's lines included, is never exported in turn: the
surfaces leave records made in a suppressed context out), bounds flush and
shutdown by their deadlines, and counts every lost record in
``limelight_logs_dropped_total`` and every failed export in
``limelight_export_errors_total{exporter}``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from typing import Any

from limelight_hookspecs import BatchSettings, SelfMetrics

from ._context import current_context
from ._export import ExportHealth, ExportWorker, run_bounded, suppressed
from ._log import get_logger
from ._sdk.logs import (
    LoggerProvider,
    LogRecordExporter,
    LogRecordExportResult,
    LogRecordProcessor,
    make_record,
    readable,
)
from ._state import STATE

__all__ = ["BoundedBatchLogProcessor", "LogEmitter"]

_log = get_logger("limelight")


class BoundedBatchLogProcessor(LogRecordProcessor):
    """Batches emitted log records for one exporter.

    :param exporter: where batches go (a ``LogRecordExporter``).
    :param name: the exporter name used in ``limelight_export_errors_total``.
    :param settings: queue and batch sizes, delay and export timeout (``OTEL_BLRP_*``).
    :param self_metrics: where losses and failures are counted.
    """

    def __init__(
        self,
        exporter: LogRecordExporter,
        name: str,
        settings: BatchSettings,
        self_metrics: SelfMetrics,
    ) -> None:
        self.exporter = exporter
        self.name = name
        self._settings = settings
        self._metrics = self_metrics
        self._health = ExportHealth(
            self_metrics,
            name,
            "log export",
            "log records are dropped and counted until it recovers",
        )
        self._max_queue = settings.max_queue_size
        self._batch = settings.max_export_batch_size
        self._queue: collections.deque[Any] = collections.deque()
        self._shutdown = False
        self._abandoned = False
        self._forks = STATE.forks
        self._worker = ExportWorker(
            f"limelight-log-export-{name}", settings.schedule_delay, self._drain
        )
        self._worker.start()

    # -- LogRecordProcessor -------------------------------------------------------------

    def on_emit(self, log_record: Any) -> None:
        if self._shutdown:
            self._dropped(1)
            return
        if self._forks != STATE.forks:
            # a forked child inherits the queue but not the worker thread
            self._forks = STATE.forks
            self._queue.clear()
            self._worker.restart()
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._dropped(1)
            return
        queue.append(readable(log_record))
        if len(queue) >= self._batch:
            self._worker.wake()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now; wait at most *timeout_millis*."""
        return self.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        self.close(self._settings.export_timeout)

    # -- bounded operations -------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Ask the worker to export the whole queue; true when it did within *timeout*."""
        if self._shutdown or not self._worker.alive:
            return not self._queue
        return self._worker.flush(timeout)

    def close(self, timeout: float) -> bool:
        """Flush within *timeout*, stop the worker, count what could not be sent."""
        if self._shutdown:
            return True
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._shutdown = True
        self._worker.close(max(0.0, deadline - time.monotonic()))
        self._abandoned = True
        left = len(self._queue)
        if left:
            self._queue.clear()
            self._metrics.logs_dropped(left)
            with suppressed():
                _log.warning(
                    "log records not exported before shutdown timeout",
                    exporter=self.name,
                    dropped=left,
                    timeout=timeout,
                )
        released = run_bounded(
            self._shutdown_exporter,
            max(0.0, deadline - time.monotonic()),
            f"log-exporter-{self.name}",
        )
        return flushed and not left and released

    def _shutdown_exporter(self) -> None:
        with suppressed():
            self.exporter.shutdown()  # type: ignore[no-untyped-call]

    def _dropped(self, count: int) -> None:
        self._metrics.logs_dropped(count)

    # -- worker -------------------------------------------------------------------------

    def _drain(self, everything: bool) -> None:
        """Export full batches, at least one; every queued record when *everything*."""
        queue = self._queue
        first = True
        while queue and (everything or first or len(queue) >= self._batch):
            first = False
            batch: list[Any] = []
            try:
                while len(batch) < self._batch:
                    batch.append(queue.popleft())
            except IndexError:
                pass
            if batch:
                self._export(batch)
            if self._abandoned or (self._shutdown and not everything):
                return

    def _export(self, batch: list[Any]) -> None:
        # everything logged meanwhile in this thread (the exporter's failures, its HTTP
        # client's debug lines, limelight's own warning) stays out of the pipeline
        with suppressed():
            try:
                result = self.exporter.export(batch)
                failed = result is not LogRecordExportResult.SUCCESS
                error = "export returned FAILURE" if failed else None
            except Exception as exc:
                error = repr(exc)
            if error is None:
                self._health.succeeded()
                return
            self._metrics.logs_dropped(len(batch))
            self._health.failed(error, dropped=len(batch))


class LogEmitter:
    """Hands log records to the running telemetry's log pipeline.

    A surface converts what its logging library made into the fields of an
    OpenTelemetry log record and calls :meth:`emit`; the pipeline's processors
    (and through them the exporters) receive it in the calling thread.

    :param provider: the telemetry's SDK ``LoggerProvider``.
    """

    __slots__ = ("_lock", "_loggers", "provider")

    def __init__(self, provider: LoggerProvider) -> None:
        self.provider = provider
        self._loggers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _logger(self, scope: str) -> Any:
        with self._lock:
            logger = self._loggers.get(scope)
            if logger is None:
                logger = self.provider.get_logger(scope)
                if len(self._loggers) < 1000:  # logger names come from code, rarely data
                    self._loggers[scope] = logger
            return logger

    def emit(
        self,
        scope: str,
        *,
        timestamp: int,
        severity_number: int,
        severity_text: str,
        body: Any,
        attributes: Mapping[str, Any] | None,
        trace_id: int = 0,
        span_id: int = 0,
        trace_flags: int = 0,
        exception: BaseException | None = None,
    ) -> None:
        """Emit one log record.

        :param scope: the instrumentation scope (for ``logging``, the logger's name).
        :param timestamp: when the event happened, in nanoseconds since the epoch.
        :param severity_number: the OpenTelemetry severity number (1 to 24; 0 unset).
        :param severity_text: the level as the library names it.
        :param body: the message (a string, or a value OTLP's ``AnyValue`` takes).
        :param attributes: the record's attributes (primitive values or sequences of them).
        :param trace_id: the trace the record was made in (0 for none).
        :param span_id: the span it was made in (0 for none).
        :param trace_flags: that span's trace flags.
        :param exception: an exception it carries: its ``exception.type``,
            ``exception.message`` and ``exception.stacktrace`` are added.
        """
        logger = self._loggers.get(scope) or self._logger(scope)
        logger.emit(
            make_record(
                timestamp=timestamp,
                context=current_context(),
                severity_number=severity_number,
                severity_text=severity_text,
                body=body,
                attributes=attributes,
                trace_id=trace_id,
                span_id=span_id,
                trace_flags=trace_flags,
                exception=exception,
            )
        )

    def force_flush(self, timeout: float) -> bool:
        """Export what the pipeline holds, within *timeout* seconds."""
        return bool(self.provider.force_flush(int(timeout * 1000)))
