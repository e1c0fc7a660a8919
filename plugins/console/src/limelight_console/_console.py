"""Printing traces as they complete, and the metrics at stop, to stderr."""

from __future__ import annotations

import collections
import sys
import threading
from typing import TextIO

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from limelight_hookspecs import SnapshotSource

from ._render import render_metrics, render_trace

__all__ = ["ConsoleMetricsSummary", "ConsoleSpanProcessor"]

MAX_PENDING_SPANS = 10_000
"""Spans kept while waiting for their local root to end; past it the oldest trace is printed."""


class ConsoleSpanProcessor(SpanProcessor):
    """Prints each trace as a tree when its local root span ends.

    A local root is a span without a parent or with a remote parent (the
    server span of a request that came with ``traceparent``). Its finished
    descendants are printed with it in one write, so concurrent requests do
    not interleave. Spans that end after their root are printed at shutdown.

    :param stream: where to write; ``sys.stderr`` as it is at write time by default.
    :param attributes: show span attributes.
    """

    def __init__(self, stream: TextIO | None = None, attributes: bool = True) -> None:
        self._stream = stream
        self._attributes = attributes
        self._lock = threading.Lock()
        self._pending: collections.OrderedDict[int, list[ReadableSpan]] = collections.OrderedDict()
        self._count = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        local_root = span.parent is None or span.parent.is_remote
        overflow: list[ReadableSpan] = []
        with self._lock:
            spans = self._pending.setdefault(ctx.trace_id, [])
            spans.append(span)
            self._count += 1
            if local_root:
                tree = _subtree(spans, ctx.span_id)
                kept = [s for s in spans if s not in tree]
                self._count -= len(tree)
                if kept:
                    self._pending[ctx.trace_id] = kept
                else:
                    del self._pending[ctx.trace_id]
            else:
                tree = []
                while self._count > MAX_PENDING_SPANS and self._pending:
                    _trace, oldest = self._pending.popitem(last=False)
                    self._count -= len(oldest)
                    overflow.extend(oldest)
        if tree:
            self._write(tree)
        if overflow:
            self._write(overflow)

    def _write(self, spans: list[ReadableSpan]) -> None:
        lines = render_trace(spans, self._attributes)
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):  # closed stream: nothing to do in development output
            pass

    def shutdown(self) -> None:
        self.force_flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Print what is still waiting for its root (spans that outlived it)."""
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
            self._count = 0
        for spans in pending:
            self._write(spans)
        return True


def _subtree(spans: list[ReadableSpan], root_id: int) -> list[ReadableSpan]:
    """*root_id*'s span and its finished descendants among *spans*."""
    wanted = {root_id}
    out: list[ReadableSpan] = []
    remaining = list(spans)
    changed = True
    while changed:
        changed = False
        for span in list(remaining):
            ctx = span.context
            if ctx is None:
                continue
            parent = span.parent.span_id if span.parent is not None else None
            if ctx.span_id in wanted or parent in wanted:
                wanted.add(ctx.span_id)
                out.append(span)
                remaining.remove(span)
                changed = True
    return out


class ConsoleMetricsSummary:
    """A store reader that prints a summary of the metric store when telemetry stops.

    :param store: the metric store.
    :param stream: where to write; ``sys.stderr`` as it is at write time by default.
    """

    def __init__(self, store: SnapshotSource, stream: TextIO | None = None) -> None:
        self.store = store
        self._stream = stream
        self._printed = False

    def start(self) -> None:
        return None

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self, timeout: float) -> None:
        """Print the summary (once)."""
        if self._printed:
            return
        self._printed = True
        lines = render_metrics(self.store.snapshot())
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass
