"""Resolving ``OTEL_PROPAGATORS`` names into the global propagator."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, get_current
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import CarrierT, Setter, TextMapPropagator, default_setter

from ._log import get_logger
from ._logbound import bound_loggers
from ._metadata import entry_points
from ._sdk.context import BAGGAGE_KEY
from ._sdk.imports import propagate
from ._state import STATE
from ._w3c import W3CTraceContextPropagator

__all__ = ["build_propagator", "inject_span", "install_propagator", "known_propagators"]

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
        for part in textmap.parts:
            if type(part) is W3CTraceContextPropagator:
                part.inject_span_context(carrier, span.get_span_context(), context, setter)
            elif _BAGGAGE_KEY is None or context.get(_BAGGAGE_KEY):  # no baggage: no header
                part.inject(carrier, context, setter)
        return
    textmap.inject(carrier, _set_span_in_context(span, context), setter)


def install_propagator(names: Sequence[str]) -> TextMapPropagator:
    """Build the propagator and make it the global one every surface uses; what its
    parts log about the carriers they read is bounded (``limelight._logbound``)."""
    propagator = build_propagator(names)
    bound_loggers(type(part).__module__ for part in getattr(propagator, "parts", ()))
    propagate.set_global_textmap(propagator)
    return propagator
