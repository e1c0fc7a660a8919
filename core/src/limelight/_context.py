"""The current context and span, read at the cost a hot path can pay on every call.

``opentelemetry.trace.get_current_span()`` goes through three calls and a
runtime-context lookup (about 0.2 µs here). Where OpenTelemetry keeps its
context in its default context variable, :func:`current_span` reads that
variable and the span key directly (about 0.06 µs): the same span, found the
same way. With another runtime context (``OTEL_PYTHON_CONTEXT``) or a
release that keeps them elsewhere it is the public function itself
(:mod:`limelight._sdk.context` decides).
:func:`current_context` is, likewise, the context variable's own ``get``.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.context import Context, get_current

from ._sdk.context import SPAN_KEY, context_reader

__all__ = ["SPAN_KEY", "current_context", "current_span"]

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
