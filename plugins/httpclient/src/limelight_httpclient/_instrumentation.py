"""The instrument contract: httpx and requests, each patched at its transport seam.

``instrument()`` replaces ``httpx.HTTPTransport.handle_request`` and
``httpx.AsyncHTTPTransport.handle_async_request`` (library ``"httpx"``) and
``requests.adapters.HTTPAdapter.send`` (library ``"requests"``) through
:class:`limelight.surface.Patches`; ``uninstrument()`` puts the very functions
back. A library is imported only when it is instrumented, and only if it is
installed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

from limelight.surface import Instrumentation, Instrumentor, Patches, report_failure

__all__ = [
    "instrument",
    "instrument_installed",
    "instrument_libraries",
    "instrumentation",
    "is_instrumented",
    "uninstrument",
]


def _install_httpx(patches: Patches) -> None:
    from ._httpx import install

    install(patches)


def _install_requests(patches: Patches) -> None:
    from ._requests import install

    install(patches)


instrumentation = Instrumentation(
    "httpclient",
    [Instrumentor("httpx", _install_httpx), Instrumentor("requests", _install_requests)],
)
"""The plugin's instrumentors, one per client library."""


def instrument(*libraries: str) -> tuple[str, ...]:
    """Record every request of every client of *libraries* (``"httpx"``, ``"requests"``).

    With no name, every one of them that is installed (one that fails to
    instrument is reported once, the other still instrumented); a library
    named but not installed raises :class:`ImportError`. Idempotent. Returns
    the libraries this call instrumented.

    ``"httpx"`` patches the send method of ``httpx.HTTPTransport`` and
    ``httpx.AsyncHTTPTransport``, the transport of every client not given a
    custom one; ``"requests"`` patches ``requests.adapters.HTTPAdapter.send``,
    every session's default adapter. Clients created before the call are
    covered too.
    """
    return instrumentation.instrument(*libraries)


def uninstrument(*libraries: str) -> tuple[str, ...]:
    """Put back what :func:`instrument` replaced in *libraries* (every one, with none
    given); return those that were instrumented."""
    return instrumentation.uninstrument(*libraries)


def is_instrumented(library: str | None = None) -> bool:
    """Whether *library* (any of them, with none given) is instrumented."""
    return instrumentation.is_instrumented(library)


def instrument_installed(names: Iterable[str]) -> list[str]:
    """Instrument every installed library among *names*; return those done now.

    What the plugin does when telemetry starts: a library that is not
    installed is skipped, one that fails to instrument is reported once and
    the others are still instrumented.
    """
    done: list[str] = []
    for name in names:
        instrumentor = instrumentation.instrumentors[name]
        if instrumentor.is_instrumented() or not instrumentor.available():
            continue
        try:
            done.extend(instrumentation.instrument(name))
        except Exception as exc:
            report_failure("httpclient", f"instrument {name}", exc)
    return done


def instrument_libraries(names: Sequence[str]) -> list[str]:
    """Deprecated: use :func:`instrument` (``instrument(*names)``).

    Instruments every installed library among *names* (a missing one is
    skipped, a failing one reported) and returns those done now.
    """
    warnings.warn(
        "limelight_httpclient.instrument_libraries(names) is deprecated; "
        "use limelight_httpclient.instrument(*names)",
        DeprecationWarning,
        stacklevel=2,
    )
    return instrument_installed(names)
