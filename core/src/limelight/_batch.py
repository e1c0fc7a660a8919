"""A batch span processor whose flush and shutdown are bounded and whose losses are counted.

The SDK's ``BatchSpanProcessor`` exports in the caller's thread on
``force_flush`` with no bound (a down collector can hold shutdown for as many
export timeouts as there are batches) and it does not count spans lost to a
full queue or a failed export. This processor exports only from its worker
thread; callers wait for it with a deadline. Every lost span is counted in
``limelight_spans_dropped_total`` and every failed export in
``limelight_export_errors_total{exporter}``; failures are logged once when
they start and once when exports recover, never per batch.

The worker is woken as soon as a batch's worth of spans is queued, as the
SDK's is. That alone does not keep up with a burst: encoding spans for OTLP
costs several times what making them costs, and the worker shares the
interpreter with the threads that make them, so a burst of a few thousand
spans fills the queue while the first batches are still being encoded. A span
that ends on a full queue while exports succeed therefore waits for the
export in progress to make room (at most ``BatchSettings.queue_full_wait``
seconds). A wait that runs out, or a full queue while exports fail, starts a
*full-queue episode*: spans are dropped at once and counted until the worker
has drained the queue below one batch; the episode is logged when it starts
and, with the number of spans it dropped, when it ends.
"""

from __future__ import annotations

import collections
import os
import threading
import time

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from limelight_hookspecs import BatchSettings, SelfMetrics

from ._export import ExportHealth, ExportWorker, run_bounded, suppressed
from ._log import get_logger
from ._sdk.spans import Span as _LeanSpan
from ._sdk.spans import own_context as _own_context
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
        self._full_wait = settings.queue_full_wait
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._shutdown = False
        self._abandoned = False
        self._forks = STATE.forks
        # producers waiting for the worker to make room in a full queue
        self._room = threading.Condition(threading.Lock())
        self._waiting = 0
        # the current full-queue episode: spans dropped at once while it lasts
        self._overflowing = False
        self._overflow_dropped = 0
        self._worker = ExportWorker(
            f"limelight-span-export-{name}", settings.schedule_delay, self._drain
        )
        self._worker.start()

    # -- SpanProcessor ----------------------------------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        # a limelight span's context without the call of get_span_context
        ctx = _own_context(span) if type(span) is _LeanSpan else span.get_span_context()
        if ctx is None or not _trace_flags(ctx) & 1:  # the sampled bit
            return
        if self._shutdown:
            self._metrics.spans_dropped(1)
            return
        if self._forks != STATE.forks:
            self._after_fork()
        queue = self._queue
        if len(queue) >= self._max_queue and not self._wait_for_room():
            self._overflowed()
            return
        queue.append(span)
        if len(queue) >= self._batch:
            self._worker.wake()

    def _after_fork(self) -> None:
        # a forked child inherits the queue but not the worker thread, and locks
        # that a thread of the parent may have held
        self._forks = STATE.forks
        self._queue.clear()
        self._room = threading.Condition(threading.Lock())
        self._waiting = 0
        self._overflowing = False
        self._overflow_dropped = 0
        self._worker.restart()

    def _wait_for_room(self) -> bool:
        """On a full queue: wait for the export in progress to make room, while
        exports succeed and no wait has run out since the queue last drained."""
        if (
            self._overflowing
            or self._full_wait <= 0
            or self._health.failing
            or self._shutdown
            or not self._worker.alive
            or self._worker.is_current()  # the worker would wait for itself
        ):
            return False
        deadline = time.monotonic() + self._full_wait
        room = self._room
        with room:
            self._waiting += 1
            try:
                while len(self._queue) >= self._max_queue:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._overflowing or self._shutdown:
                        return False
                    room.wait(remaining)
            finally:
                self._waiting -= 1
        return not self._shutdown

    def _overflowed(self) -> None:
        """A span lost to a full queue: counted, and the episode logged when it starts
        (unless the processor has shut down meanwhile)."""
        self._metrics.spans_dropped(1)
        if self._shutdown:
            return
        with self._room:
            self._overflow_dropped += 1
            if self._overflowing:
                return
            self._overflowing = True
            self._room.notify_all()  # the others waiting give up too
        _log.warning(
            "span queue full; spans are dropped and counted in "
            "limelight_spans_dropped_total until it drains",
            exporter=self.name,
            max_queue_size=self._max_queue,
            export_failing=self._health.failing,
        )

    def _made_room(self) -> None:
        """The worker took a batch: wake the producers waiting, end a drained episode."""
        if self._waiting:
            with self._room:
                self._room.notify_all()
        if self._overflowing and len(self._queue) < self._batch:
            self._end_overflow("span queue drained")

    def _end_overflow(self, event: str) -> None:
        with self._room:
            if not self._overflowing:
                return
            dropped, self._overflow_dropped = self._overflow_dropped, 0
            self._overflowing = False
        _log.warning(event, exporter=self.name, dropped=dropped)

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
        with self._room:
            self._room.notify_all()  # producers waiting for room drop their spans
        self._worker.close(max(0.0, deadline - time.monotonic()))
        self._abandoned = True
        self._end_overflow("span queue full until shutdown")
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
            self._made_room()
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
