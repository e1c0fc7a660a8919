"""The instrument contract: ``logging`` and structlog.

``instrument("logging")`` wraps ``logging.Logger.handle`` through
:class:`limelight.surface.Patches`: every record a logger handles gets the
trace fields and is counted. ``instrument("structlog")`` puts
:func:`~limelight_logs.add_trace_context` before the renderer of structlog's
chain and wraps ``structlog.configure``, ``configure_once`` and
``reset_defaults`` so a later configuration keeps it. ``uninstrument()`` puts
the very functions back and takes the processor out of the chain. structlog
is imported only when it is instrumented, and only if it is installed.
"""

from __future__ import annotations

from collections.abc import Iterable

from limelight.surface import Instrumentation, Instrumentor, Patches

__all__ = [
    "instrument",
    "instrument_at_start",
    "instrumentation",
    "is_instrumented",
    "uninstrument",
]


def _install_logging(patches: Patches) -> None:
    from ._stdlib import install

    install(patches)


def _remove_logging() -> None:
    from ._stdlib import remove

    remove()


def _install_structlog(patches: Patches) -> None:
    from ._structlog import install

    install(patches)


def _remove_structlog() -> None:
    from ._structlog import remove

    remove()


instrumentation = Instrumentation(
    "logs",
    [
        Instrumentor("logging", _install_logging, remove=_remove_logging),
        Instrumentor("structlog", _install_structlog, remove=_remove_structlog),
    ],
)
"""The plugin's instrumentors: the standard library's ``logging`` and structlog."""


def instrument(*libraries: str) -> tuple[str, ...]:
    """Add the trace fields to, and count, every log line of *libraries*
    (``"logging"``, ``"structlog"``); with no name, of both, where installed.

    Idempotent; a library named but not installed raises :class:`ImportError`.
    Returns the libraries this call instrumented. Whatever configured logging
    before (``dictConfig``, ``basicConfig``, a framework) or configures it
    afterwards keeps working as it did: records and events only gain fields.
    """
    return instrumentation.instrument(*libraries)


def uninstrument(*libraries: str) -> tuple[str, ...]:
    """Put back what :func:`instrument` replaced (every library, with none given);
    return the libraries that were instrumented."""
    return instrumentation.uninstrument(*libraries)


def is_instrumented(library: str | None = None) -> bool:
    """Whether *library* (any of them, with none given) is instrumented."""
    return instrumentation.is_instrumented(library)


def instrument_at_start(wanted: Iterable[str]) -> None:
    """Instrument the libraries among *wanted*, each when the application imports it (at
    once when it has: logging always); a failure is reported once and the others are
    still instrumented. A library the application never imports is never imported."""
    names = tuple(wanted)
    if names:
        instrumentation.instrument_on_import(*names)
