"""Values built from the running telemetry: :class:`TelemetryBinding`.

Kept apart from :mod:`limelight._telemetry` so that code binding its
instruments (``@limelight.instrument``, the surfaces) can be imported without
the OpenTelemetry SDK: the running telemetry is looked up only when a binding
is first used after a start or stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from ._state import STATE

if TYPE_CHECKING:
    from ._telemetry import Telemetry

__all__ = ["TelemetryBinding"]

T = TypeVar("T")

_current: Callable[[], Telemetry] | None = None
"""``limelight.current``, looked up once: a rebuild never runs an import statement (code
run under an import hook, Temporal's workflow sandbox for one, would get a second
copy of the runtime)."""


def _find_current() -> Callable[[], Telemetry]:
    global _current
    from ._telemetry import current

    _current = current
    return current


class TelemetryBinding(Generic[T]):
    """A value built from the running telemetry, rebuilt only when it changes.

    Surfaces create their instruments (bound metric children, tracer) once
    through a binding instead of on every request::

        _instruments = TelemetryBinding(lambda t: MyInstruments(t))

        def handle(request):
            inst = _instruments.get()   # one integer comparison when nothing changed

    :param build: called with :func:`limelight.current` after every start or stop.
    """

    __slots__ = ("_build", "_generation", "_value")

    def __init__(self, build: Callable[[Telemetry], T]) -> None:
        self._build = build
        self._generation = -1
        self._value: T | None = None

    def get(self) -> T:
        """The value for the running telemetry."""
        if self._generation != STATE.generation:
            return self._rebuild()
        return self._value  # type: ignore[return-value]

    def _rebuild(self) -> T:
        with STATE.lock:
            generation = STATE.generation
            value = self._build((_current or _find_current())())
            self._value, self._generation = value, generation
        return value
