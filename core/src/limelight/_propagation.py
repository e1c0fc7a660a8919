"""Resolving ``OTEL_PROPAGATORS`` names into the global propagator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, get_current
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from ._log import get_logger
from ._logbound import bound_loggers
from ._metadata import entry_points
from ._sdk.context import BAGGAGE_KEY, SPAN_KEY
from ._sdk.imports import propagate
from ._sdk.spans import Span as _LeanSpan
from ._sdk.spans import own_context as _own_context
from ._state import STATE
from ._w3c import (
    TRACEPARENT,
    TRACESTATE,
    HeaderGetter,
    W3CTraceContextPropagator,
    header_getter,
    parse_traceparent,
    parse_tracestate,
    remote_parent_context,
)

__all__ = [
    "build_propagator",
    "extract_headers",
    "inject_span",
    "install_propagator",
    "known_propagators",
]

_log = get_logger("limelight")

_GROUP = "opentelemetry_propagator"

PROPAGATOR_OVERRIDES: dict[str, Callable[[], TextMapPropagator]] = {
    # W3C Trace Context Level 2, conformant where OpenTelemetry's is not (see _w3c).
    "tracecontext": W3CTraceContextPropagator,
}
"""Propagators limelight provides itself, by name; they win over the
``opentelemetry_propagator`` entry point of the same name."""


def _entry_point_names() -> frozenset[str]:
    names = STATE.propagator_names
    if names is None:
        try:
            names = frozenset(ep.name for ep in entry_points(group=_GROUP))
        except Exception:  # pragma: no cover - broken metadata
            names = frozenset()
        STATE.propagator_names = names
    return names


def known_propagators() -> frozenset[str]:
    """Every propagator name that can be used in ``OTEL_PROPAGATORS``."""
    return _entry_point_names() | frozenset(PROPAGATOR_OVERRIDES)


def _load(name: str) -> TextMapPropagator | None:
    factory = PROPAGATOR_OVERRIDES.get(name)
    if factory is not None:
        return factory()
    for ep in entry_points(group=_GROUP, name=name):
        try:
            loaded = ep.load()
            return loaded() if isinstance(loaded, type) else loaded  # type: ignore[no-any-return]
        except Exception as exc:
            _log.warning("propagator failed to load", propagator=name, error=repr(exc))
            return None
    return None


class _Composite(CompositePropagator):
    """The composite :func:`build_propagator` returns; it knows its parts, so
    :func:`inject_span` can skip building a context when every part allows it."""

    def __init__(self, propagators: Sequence[TextMapPropagator]) -> None:
        super().__init__(propagators)
        self.parts = tuple(propagators)
        # W3C trace context takes the span directly; baggage does not read the span
        self.direct = all(type(p) in _DIRECT for p in self.parts)
        # what extract_headers' fast path reads: whether a part reads traceparent, and
        # the baggage part (the parts set different context keys: their order is moot)
        self.tracecontext = any(type(p) is W3CTraceContextPropagator for p in self.parts)
        self.baggage: TextMapPropagator | None = next(
            (p for p in self.parts if type(p) is W3CBaggagePropagator), None
        )


_DIRECT = (W3CTraceContextPropagator, W3CBaggagePropagator)
_get_global_textmap = propagate.get_global_textmap
_get_current = get_current
# where the API keeps baggage in a context (looked up so that a context without
# baggage skips the baggage propagator; if the API moves it, it is always called)
_BAGGAGE_KEY: str | None = BAGGAGE_KEY
_set_span_in_context = trace.set_span_in_context


def build_propagator(names: Sequence[str]) -> TextMapPropagator:
    """A composite of the named propagators (empty for no propagation)."""
    return _Composite([p for p in (_load(n) for n in names) if p is not None])


def inject_span(
    carrier: CarrierT,
    span: trace.Span,
    context: Context | None = None,
    setter: Setter[CarrierT] = default_setter,
) -> None:
    """Inject *span* as the callee's parent into *carrier*, the rest (baggage,
    the received ``random-trace-id`` flag) from *context* (default: the current one).

    What the global propagator's ``inject(carrier, set_span_in_context(span,
    context), setter)`` sets. With the default propagators (``tracecontext``
    and ``baggage``, as :func:`install_propagator` builds them) no context is built.
    """
    textmap = _get_global_textmap()
    if type(textmap) is _Composite and textmap.direct:
        if context is None:
            context = _get_current()
        # a limelight span's context without the call of get_span_context
        span_context = _own_context(span) if type(span) is _LeanSpan else span.get_span_context()
        for part in textmap.parts:
            if type(part) is W3CTraceContextPropagator:
                part.inject_span_context(carrier, span_context, context, setter)
            elif _BAGGAGE_KEY is None or context.get(_BAGGAGE_KEY):  # no baggage: no header
                part.inject(carrier, context, setter)
        return
    textmap.inject(carrier, _set_span_in_context(span, context), setter)


_BAGGAGE_HEADER = "baggage"
_HEADER_NAMES = frozenset((TRACEPARENT, TRACESTATE, _BAGGAGE_HEADER))
_EMPTY = Context()


_header_getter_types: dict[type, bool] = {}


def _is_header_getter(kind: type) -> bool:
    """Whether *kind* is a :class:`HeaderGetter` (remembered: ``Getter`` is an ABC, whose
    ``isinstance`` is a Python call)."""
    known = _header_getter_types.get(kind)
    if known is None:
        known = _header_getter_types[kind] = issubclass(kind, HeaderGetter)
    return known


def _only_exact_names(carrier: dict[Any, Any]) -> bool:
    """Whether no key of *carrier* but the exact lowercase names could be read as one
    of the default propagators' headers (another spelling, a WSGI ``HTTP_`` name, bytes)."""
    for key in carrier:
        if type(key) is not str:
            return False
        if key in _HEADER_NAMES:
            continue
        lowered = key.lower()
        if lowered in _HEADER_NAMES or lowered.startswith("http_"):
            return False
    return True


def extract_headers(
    carrier: CarrierT,
    context: Context | None = None,
    getter: Getter[CarrierT] = header_getter,
) -> Context:
    """The context the global propagator extracts from the header table *carrier*,
    on top of *context* (default: an empty one, never the current context).

    Exactly the global propagator's ``extract(carrier, context, getter)``. With the
    default propagators (``tracecontext`` and ``baggage``, as
    :func:`install_propagator` builds them), a ``dict`` whose headers are spelled in
    lowercase with ``str`` values (what message clients decode) is read without the
    composite's loop and the per-header getter calls, and without calling the
    baggage propagator when there is no ``baggage`` header. *getter* is
    OpenTelemetry's default getter or a :class:`~limelight.propagation.HeaderGetter`
    (a subclass reads a ``dict``'s ``str`` entries as it does); any other getter
    always goes through the propagator.
    """
    if context is None:
        context = _EMPTY
    textmap = _get_global_textmap()
    if (
        type(textmap) is _Composite
        and textmap.direct
        and type(carrier) is dict
        and SPAN_KEY is not None
        and (
            getter is default_getter
            or _header_getter_types.get(type(getter))
            or _is_header_getter(type(getter))
        )
    ):
        headers: dict[Any, Any] = carrier  # type: ignore[assignment]
        traceparent = headers.get(TRACEPARENT)
        state = headers.get(TRACESTATE)
        bag = headers.get(_BAGGAGE_HEADER)
        if (
            (traceparent is None or type(traceparent) is str)
            and (state is None or type(state) is str)
            and (bag is None or type(bag) is str)
            and (
                len(headers) == (traceparent is not None) + (state is not None) + (bag is not None)
                or _only_exact_names(headers)
            )
        ):
            if traceparent is not None and textmap.tracecontext:
                parsed = parse_traceparent(traceparent)
                if parsed is not None:
                    context = remote_parent_context(
                        context, parsed, None if state is None else parse_tracestate((state,))
                    )
            if bag is not None and textmap.baggage is not None:
                context = textmap.baggage.extract(carrier, context, getter)
            return context
    return textmap.extract(carrier, context, getter)


def install_propagator(names: Sequence[str]) -> TextMapPropagator:
    """Build the propagator and make it the global one every surface uses; what its
    parts log about the carriers they read is bounded (``limelight._logbound``)."""
    propagator = build_propagator(names)
    bound_loggers(type(part).__module__ for part in getattr(propagator, "parts", ()))
    propagate.set_global_textmap(propagator)
    return propagator
