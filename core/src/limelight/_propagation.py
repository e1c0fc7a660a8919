"""Resolving ``OTEL_PROPAGATORS`` names into the global propagator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib.metadata import entry_points

import structlog
from opentelemetry import propagate
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator

from ._w3c import W3CTraceContextPropagator

__all__ = ["build_propagator", "install_propagator", "known_propagators"]

_log = structlog.get_logger("limelight")

_GROUP = "opentelemetry_propagator"

PROPAGATOR_OVERRIDES: dict[str, Callable[[], TextMapPropagator]] = {
    # W3C Trace Context Level 2, conformant where OpenTelemetry's is not (see _w3c).
    "tracecontext": W3CTraceContextPropagator,
}
"""Propagators limelight provides itself, by name; they win over the
``opentelemetry_propagator`` entry point of the same name."""


@lru_cache(maxsize=1)
def _entry_point_names() -> frozenset[str]:
    try:
        return frozenset(ep.name for ep in entry_points(group=_GROUP))
    except Exception:  # pragma: no cover - broken metadata
        return frozenset()


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


def build_propagator(names: Sequence[str]) -> TextMapPropagator:
    """A composite of the named propagators (empty for no propagation)."""
    found = [p for p in (_load(n) for n in names) if p is not None]
    return CompositePropagator(found)


def install_propagator(names: Sequence[str]) -> TextMapPropagator:
    """Build the propagator and make it the global one every surface uses."""
    propagator = build_propagator(names)
    propagate.set_global_textmap(propagator)
    return propagator
