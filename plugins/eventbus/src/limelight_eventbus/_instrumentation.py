"""The instrument contract: blinker signals and pyee emitters, for the whole process.

``instrument("blinker")`` patches ``blinker.Signal`` and ``instrument("pyee")``
``pyee.EventEmitter`` (and the ``_emit_run`` of ``AsyncIOEventEmitter`` and
``ExecutorEventEmitter``) through :class:`limelight.surface.Patches`, so every
signal and emitter is recorded, those made before the call included.
``uninstrument()`` puts the very functions back, and takes the receivers it
counted out of the gauge. A library is imported only when it is instrumented,
and only if it is installed.
"""

from __future__ import annotations

from limelight.surface import Instrumentation, Instrumentor, Patches

__all__ = ["instrument", "instrumentation", "is_instrumented", "uninstrument"]


def _install_blinker(patches: Patches) -> None:
    from ._blinker import install

    install(patches)


def _remove_blinker() -> None:
    from ._blinker import remove

    remove()


def _install_pyee(patches: Patches) -> None:
    from ._pyee import install

    install(patches)


def _remove_pyee() -> None:
    from ._pyee import remove

    remove()


instrumentation = Instrumentation(
    "eventbus",
    [
        Instrumentor("blinker", _install_blinker, remove=_remove_blinker),
        Instrumentor("pyee", _install_pyee, remove=_remove_pyee),
    ],
)
"""The plugin's instrumentors: blinker and pyee."""


def instrument(*libraries: str) -> tuple[str, ...]:
    """Instrument *libraries* (``"blinker"``, ``"pyee"``) for the whole process.

    With no name, every supported library that is installed; a library named
    but not installed raises :class:`ImportError`. Idempotent. Returns the
    libraries this call instrumented.

    Every signal or emitter is recorded from then on, those made before
    included. Receivers connected before the call are counted from the bus's
    first use after it (a send or emit, a connect, a disconnect), and at once
    for the signals of blinker's default namespace (``blinker.signal(name)``).
    """
    return instrumentation.instrument(*libraries)


def uninstrument(*libraries: str) -> tuple[str, ...]:
    """Put back what :func:`instrument` replaced (every library, with none given) and
    take the receivers counted for it out of ``eventbus_subscribers_active``; return
    the libraries that were instrumented."""
    return instrumentation.uninstrument(*libraries)


def is_instrumented(library: str | None = None) -> bool:
    """Whether *library* (``"blinker"``, ``"pyee"``; any, with none given) is instrumented."""
    return instrumentation.is_instrumented(library)
