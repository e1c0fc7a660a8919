"""A tiny limelight plugin: keep the spans of recent traces in memory, to show one."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from limelight import hookimpl
from limelight_hookspecs import TelemetryView

__all__ = ["TraceKeeper"]


class _Keep(SpanProcessor):
    # on_end only: the base class's on_start is a no-op, and limelight's tracer
    # provider calls at span start only the processors that override it
    def __init__(self, keeper: TraceKeeper) -> None:
        self._keeper = keeper

    def on_end(self, span: ReadableSpan) -> None:
        self._keeper._add(span)


class TraceKeeper:
    """Keeps every finished span of the last *max_traces* traces.

    A plugin object like any other: pass it to ``limelight.start(plugins=[keeper])``
    and the core adds its span processor to the tracer provider.
    """

    limelight_name = "demo.traces"
    limelight_priority = 900

    def __init__(self, max_traces: int = 256) -> None:
        self.max_traces = max_traces
        self._traces: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._cond = threading.Condition()

    @hookimpl
    def limelight_spans_provide_processors(
        self, telemetry: TelemetryView
    ) -> Sequence[SpanProcessor]:
        return (_Keep(self),)

    def _add(self, span: ReadableSpan) -> None:
        if span.context is None:
            return
        with self._cond:
            spans = self._traces.setdefault(span.context.trace_id, [])
            spans.append(span)
            while len(self._traces) > self.max_traces:
                self._traces.popitem(last=False)
            self._cond.notify_all()

    def trace(self, trace_id: int, timeout: float = 5.0) -> list[ReadableSpan]:
        """The spans of one trace once its root span has ended (or *timeout* passed)."""

        def complete() -> bool:
            return any(s.parent is None for s in self._traces.get(trace_id, ()))

        deadline = time.monotonic() + timeout
        with self._cond:
            while not complete():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return sorted(self._traces.get(trace_id, ()), key=lambda s: s.start_time or 0)
