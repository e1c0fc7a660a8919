"""Printing traces as they complete, and the metrics at stop, to stderr."""

from __future__ import annotations

import collections
import sys
import threading
from typing import TextIO

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

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
                tree, kept = _split_subtree(spans, span)
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
        _write_lines(self._stream, render_trace(spans, self._attributes))

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


def _write_lines(stream: TextIO | None, lines: list[str]) -> None:
    """Write *lines* to *stream* (``sys.stderr`` as it is now when ``None``) in one write."""
    out = stream if stream is not None else sys.stderr
    try:
        out.write("\n".join(lines) + "\n")
        out.flush()
    except (OSError, ValueError):  # closed stream: nothing to do in development output
        pass


def _split_subtree(
    spans: list[ReadableSpan], root: ReadableSpan
) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """*root* with its finished descendants among *spans*, and the other spans."""
    by_parent: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.parent is not None and span is not root:
            by_parent.setdefault(span.parent.span_id, []).append(span)
    tree = [root]
    for span in tree:  # grows while it is walked: breadth first
        if span.context is not None:
            tree.extend(by_parent.get(span.context.span_id, ()))
    if len(tree) == len(spans):
        return tree, []
    in_tree = {id(span) for span in tree}
    return tree, [span for span in spans if id(span) not in in_tree]


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
        _write_lines(self._stream, render_metrics(self.store.snapshot()))
