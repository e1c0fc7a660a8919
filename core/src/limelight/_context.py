"""The current context and span, read at the cost a hot path can pay on every call.

``opentelemetry.trace.get_current_span()`` goes through three calls and a
runtime-context lookup (about 0.2 µs here). Where OpenTelemetry keeps its
context in its default context variable, :func:`current_span` reads that
variable and the span key directly (about 0.06 µs): the same span, found the
same way. With another runtime context (``OTEL_PYTHON_CONTEXT``) or a
release that keeps them elsewhere it is the public function itself
(:mod:`limelight._sdk.context` decides).
:func:`current_context` is, likewise, the context variable's own ``get``;
:func:`span_in` and :func:`with_span` read and set the span of a given context
the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.context import Context, get_current

from ._sdk.context import SPAN_KEY, context_reader

__all__ = ["SPAN_KEY", "current_context", "current_span", "span_in", "with_span"]

current_context: Callable[[], Context] = context_reader()
"""The current context, as ``opentelemetry.context.get_current()`` returns it: with
the default runtime context, its context variable's own ``get`` (no Python call)."""


def _reader() -> Callable[[], trace.Span]:
    key = SPAN_KEY
    if current_context is get_current or key is None:
        return trace.get_current_span
    get_context = current_context
    invalid = trace.INVALID_SPAN

    def current_span() -> trace.Span:
        return get_context().get(key, invalid)  # type: ignore[return-value]

    return current_span


current_span: Callable[[], trace.Span] = _reader()
"""The current span (``INVALID_SPAN`` when there is none), as
``opentelemetry.trace.get_current_span()`` returns it."""


def _span_in() -> Callable[[Context], trace.Span]:
    key = SPAN_KEY
    if key is None:
        return trace.get_current_span
    invalid = trace.INVALID_SPAN

    def span_in(context: Context) -> trace.Span:
        return context.get(key, invalid)  # type: ignore[return-value]

    return span_in


span_in: Callable[[Context], trace.Span] = _span_in()
"""The span of *context* (``INVALID_SPAN`` when it holds none), as
``opentelemetry.trace.get_current_span(context)`` returns it."""


def with_span(span: trace.Span, context: Context) -> Context:
    """*context* with *span* as its span: what ``opentelemetry.trace.set_span_in_context(span,
    context)`` returns, made in one copy (no current context is consulted)."""
    key = SPAN_KEY
    if key is None:
        return trace.set_span_in_context(span, context)
    if not context:
        return Context({key: span})
    entries = dict(context)
    entries[key] = span
    return Context(entries)
