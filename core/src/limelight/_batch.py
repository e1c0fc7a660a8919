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
import threading
import time
from typing import TYPE_CHECKING

import structlog
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from limelight_hookspecs import BatchSettings, SelfMetrics

if TYPE_CHECKING:
    pass

__all__ = ["BoundedBatchSpanProcessor"]

_log = structlog.get_logger("limelight")


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
        self._max_queue = settings.max_queue_size
        self._batch = settings.max_export_batch_size
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._flush_requested = 0  # generation of the latest flush request
        self._flush_done = 0
        self._exporting = False
        self._shutdown = False
        self._abandoned = False
        self._failing = False
        self._pid = os.getpid()
        self._worker = self._start_worker()

    def _start_worker(self) -> threading.Thread:
        worker = threading.Thread(
            target=self._run, name=f"limelight-span-export-{self.name}", daemon=True
        )
        worker.start()
        return worker

    def _after_fork(self) -> None:
        # A forked child inherits the queue but not the worker thread.
        self._pid = os.getpid()
        self._queue.clear()
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._worker = self._start_worker()

    # -- SpanProcessor ----------------------------------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        if self._shutdown:
            self._metrics.spans_dropped(1)
            return
        if self._pid != os.getpid():
            self._after_fork()
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._metrics.spans_dropped(1)
            return
        queue.append(span)
        if len(queue) >= self._batch and not self._wake.is_set():
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now; wait at most *timeout_millis*."""
        return self.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        self.close(self._settings.export_timeout)

    # -- bounded operations -------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Ask the worker to export the whole queue; true when it did within *timeout*."""
        if self._shutdown or not self._worker.is_alive():
            return not self._queue
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested += 1
            target = self._flush_requested
        self._wake.set()
        with self._cond:
            while self._flush_done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float) -> bool:
        """Flush within *timeout*, stop the worker, count what could not be sent."""
        if self._shutdown:
            return True
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._shutdown = True
        self._wake.set()
        self._worker.join(max(0.0, deadline - time.monotonic()))
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
        try:
            self.exporter.shutdown()
        except Exception as exc:
            _log.warning("span exporter failed to shut down", exporter=self.name, error=repr(exc))
        return flushed and not left

    # -- worker -------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._settings.schedule_delay
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            with self._cond:
                flush_target = self._flush_requested
            if self._shutdown:
                return
            self._drain(everything=flush_target > self._flush_done)
            if flush_target > self._flush_done:
                with self._cond:
                    self._flush_done = flush_target
                    self._cond.notify_all()

    def _drain(self, everything: bool) -> None:
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
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            result = self.exporter.export(batch)
            ok = result is SpanExportResult.SUCCESS
            error = None if ok else "export returned FAILURE"
        except Exception as exc:
            ok, error = False, repr(exc)
        finally:
            detach(token)
        if ok:
            if self._failing:
                self._failing = False
                _log.info("span export recovered", exporter=self.name)
            return
        self._metrics.export_error(self.name)
        self._metrics.spans_dropped(len(batch))
        if not self._failing:
            self._failing = True
            _log.warning(
                "span export failing; spans are dropped and counted until it recovers",
                exporter=self.name,
                error=error,
                dropped=len(batch),
            )
