"""Where OpenTelemetry keeps the current context, the current span and baggage.

Assumptions ``runtime-context``, ``context-keys`` and ``suppress-keys`` (see
:mod:`limelight._sdk`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as context_api
from opentelemetry.context import Context

from . import fallback

__all__ = [
    "BAGGAGE_KEY",
    "SPAN_KEY",
    "SUPPRESS_HTTP_INSTRUMENTATION_KEY",
    "SUPPRESS_INSTRUMENTATION_KEY",
    "context_reader",
    "only_key",
]


def only_key(context: Context) -> str | None:
    """The one key of *context*, or ``None`` when it has another number of keys."""
    keys = list(context)
    return keys[0] if len(keys) == 1 else None


def _span_key() -> str | None:
    probe = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    try:
        stored = trace.set_span_in_context(probe, Context())
        key = only_key(stored)
        if key is not None and stored.get(key) is probe and trace.get_current_span(stored) is probe:
            return key
        problem: object = f"the span is stored under {list(stored)!r}"
    except Exception as exc:  # pragma: no cover - an API that refuses the probe
        problem = exc
    fallback("context-keys", "trace.get_current_span(context)", str(problem))
    return None


def _baggage_key() -> str | None:
    try:
        stored = baggage.set_baggage("limelight.probe", "1", Context())
        key = only_key(stored)
        found: Any = stored.get(key) if key is not None else None
        if key is not None and dict(found or {}) == dict(baggage.get_all(stored)):
            return key
        problem: object = f"baggage is stored under {list(stored)!r}"
    except Exception as exc:  # pragma: no cover
        problem = exc
    fallback("context-keys", "the baggage propagator on every injection", str(problem))
    return None


SPAN_KEY: str | None = _span_key()
"""The context key of the current span (``None`` if not found): ``context.get(SPAN_KEY)``
is what ``trace.get_current_span(context)`` looks up."""

BAGGAGE_KEY: str | None = _baggage_key()
"""The context key of the baggage (``None`` if not found)."""


def context_reader(runtime: object = None) -> Callable[[], Context]:
    """The cheapest function returning what ``opentelemetry.context.get_current()`` does.

    :param runtime: the runtime context to inspect (default: the API's own).
    """
    try:
        if runtime is None:
            runtime = context_api._RUNTIME_CONTEXT
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        if type(runtime) is not ContextVarsRuntimeContext:
            # another runtime context (OTEL_PYTHON_CONTEXT): its own get_current, by design
            return context_api.get_current
        get: Callable[[], Context] = runtime._current_context.get  # type: ignore[attr-defined,unused-ignore]
        probe = Context()
        token = context_api.attach(probe) if runtime is context_api._RUNTIME_CONTEXT else None
        try:
            if token is not None and get() is not probe:
                raise LookupError("the context variable is not the current context")
        finally:
            if token is not None:
                context_api.detach(token)
        return get
    except (ImportError, AttributeError, LookupError) as exc:
        fallback("runtime-context", "opentelemetry.context.get_current", exc)
        return context_api.get_current


def _suppress_keys() -> tuple[str, str]:
    try:
        return (
            context_api._SUPPRESS_INSTRUMENTATION_KEY,
            context_api._SUPPRESS_HTTP_INSTRUMENTATION_KEY,
        )
    except AttributeError as exc:
        fallback("suppress-keys", "limelight's own suppression keys", exc)
        return (
            context_api.create_key("suppress_instrumentation"),
            context_api.create_key("suppress_http_instrumentation"),
        )


SUPPRESS_INSTRUMENTATION_KEY, SUPPRESS_HTTP_INSTRUMENTATION_KEY = _suppress_keys()
"""The context keys under which a true value keeps instrumentation silent (all of it;
HTTP client instrumentation only)."""
