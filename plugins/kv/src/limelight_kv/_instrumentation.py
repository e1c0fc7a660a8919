"""The instrument contract: every redis-py client made while instrumented.

``instrument("redis")`` wraps the ``__init__`` of ``redis.Redis`` and
``redis.asyncio.Redis`` through :class:`limelight.surface.Patches`, so each
client made afterwards is instrumented as :func:`~limelight_kv.instrument_redis`
would, with :func:`~limelight_kv.default_namespace`. ``uninstrument()`` puts
the very ``__init__`` functions back and undoes the instrumentation of the
clients it made. redis-py is imported only when it is instrumented, and only
if it is installed. The :class:`~limelight_kv.MemoryStore` records on its own.
"""

from __future__ import annotations

import warnings

from limelight.surface import Instrumentation, Instrumentor, Patches

__all__ = ["instrument", "instrumentation", "is_instrumented", "uninstrument"]


def _install(patches: Patches) -> None:
    from ._redis import install

    install(patches)


def _remove() -> None:
    from ._redis import remove

    remove()


instrumentation = Instrumentation("kv", [Instrumentor("redis", _install, remove=_remove)])
"""The plugin's instrumentors: redis-py (sync and asyncio clients)."""


def instrument(*libraries: str) -> tuple[str, ...]:
    """Instrument every client of *libraries* (``"redis"``) made from now on.

    With no name, every supported library that is installed; a library
    named but not installed raises :class:`ImportError`. Idempotent. Returns
    the libraries this call instrumented.

    A ``redis.Redis`` or ``redis.asyncio.Redis`` (or subclass) made afterwards
    records with the namespace ``redis`` (``redis/<n>`` for database *n*) and
    spans as ``LIMELIGHT_KV_SPANS`` says; :func:`~limelight_kv.instrument_redis`
    on it gives it a namespace of your choosing, which stays. Clients made
    before the call are not instrumented.
    """
    return instrumentation.instrument(*libraries)


def uninstrument(*libraries: str) -> tuple[str, ...]:
    """Put back what :func:`instrument` replaced (every library, with none given) and
    undo the instrumentation of the clients it made; return the libraries that were
    instrumented. Clients instrumented explicitly keep recording."""
    return instrumentation.uninstrument(*libraries)


def is_instrumented(library: object = None) -> bool:
    """Whether *library* (``"redis"``; any library, with none given) is instrumented.

    Given a client instead of a library name (what this function took before
    the instrument contract), it answers
    :func:`~limelight_kv.is_client_instrumented` with a
    :class:`DeprecationWarning`.
    """
    if library is None or isinstance(library, str):
        return instrumentation.is_instrumented(library)
    from ._redis import is_client_instrumented

    warnings.warn(
        "limelight_kv.is_instrumented(client) is deprecated; "
        "use limelight_kv.is_client_instrumented(client)",
        DeprecationWarning,
        stacklevel=2,
    )
    return is_client_instrumented(library)
