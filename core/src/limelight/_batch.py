"""A batch span processor whose flush and shutdown are bounded and whose losses are counted.

The SDK's ``BatchSpanProcessor`` exports in the caller's thread on
``force_flush`` with no bound (a down collector can hold shutdown for as many
export timeouts as there are batches) and it does not count spans lost to a
full queue or a failed export. This processor exports only from its worker
thread; callers wait for it with a deadline. Every lost span is counted in
``limelight_spans_dropped_total`` and every failed export in
``limelight_export_errors_total{exporter}``; failures are logged once when
they start and once when exports recover, never per batch.
"""

from __future__ import annotations

import collections
import os
import time

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from limelight_hookspecs import BatchSettings, SelfMetrics

from ._export import ExportHealth, ExportWorker, run_bounded, suppressed
from ._log import get_logger
from ._sdk.spans import trace_flags as _trace_flags
from ._state import STATE

__all__ = ["BoundedBatchSpanProcessor"]

_log = get_logger("limelight")


def _forked() -> None:
    # forks this process descends from: a processor whose count differs is in a child
    STATE.forks += 1


os.register_at_fork(after_in_child=_forked)


class BoundedBatchSpanProcessor(SpanProcessor):
    """Batches finished sampled spans for one exporter.

    :param exporter: where batches go.
    :param name: the exporter name used in ``limelight_export_errors_total``.
    :param settings: queue and batch sizes, delay and export timeout.
    :param self_metrics: where losses and failures are counted.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        name: str,
        settings: BatchSettings,
        self_metrics: SelfMetrics,
    ) -> None:
        self.exporter = exporter
        self.name = name
        self._settings = settings
        self._metrics = self_metrics
        self._health = ExportHealth(
            self_metrics, name, "span export", "spans are dropped and counted until it recovers"
        )
        self._max_queue = settings.max_queue_size
        self._batch = settings.max_export_batch_size
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._shutdown = False
        self._abandoned = False
        self._forks = STATE.forks
        self._worker = ExportWorker(
            f"limelight-span-export-{name}", settings.schedule_delay, self._drain
        )
        self._worker.start()

    # -- SpanProcessor ----------------------------------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None or not _trace_flags(ctx) & 1:  # the sampled bit
            return
        if self._shutdown:
            self._metrics.spans_dropped(1)
            return
        if self._forks != STATE.forks:
            # a forked child inherits the queue but not the worker thread
            self._forks = STATE.forks
            self._queue.clear()
            self._worker.restart()
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._metrics.spans_dropped(1)
            return
        queue.append(span)
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
            self._metrics.spans_dropped(left)
            _log.warning(
                "spans not exported before shutdown timeout",
                exporter=self.name,
                dropped=left,
                timeout=timeout,
            )
        # an exporter's shutdown can wait on an export still in flight (the OTLP gRPC
        # exporter up to 30 s): it gets what is left of the deadline, not more
        released = run_bounded(
            self.exporter.shutdown,
            max(0.0, deadline - time.monotonic()),
            f"span-exporter-{self.name}",
        )
        return flushed and not left and released

    # -- worker -------------------------------------------------------------------------

    def _drain(self, everything: bool) -> None:
        """Export full batches, at least one; every queued span when *everything*."""
        queue = self._queue
        first = True
        while queue and (everything or first or len(queue) >= self._batch):
            first = False
            batch: list[ReadableSpan] = []
            try:
                while len(batch) < self._batch:
                    batch.append(queue.popleft())
            except IndexError:
                pass
            if batch:
                self._export(batch)
            if self._abandoned or (self._shutdown and not everything):
                return

    def _export(self, batch: list[ReadableSpan]) -> None:
        with suppressed():
            try:
                result = self.exporter.export(batch)
                error = None if result is SpanExportResult.SUCCESS else "export returned FAILURE"
            except Exception as exc:
                error = repr(exc)
        if error is None:
            self._health.succeeded()
            return
        self._metrics.spans_dropped(len(batch))
        self._health.failed(error, dropped=len(batch))
