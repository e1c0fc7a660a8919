"""The instrument contract: the tracing interceptor added to every new Temporal client."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from limelight.surface import Instrumentation, Instrumentor, Patches

__all__ = ["instrument", "instrumentation", "is_instrumented", "shared_interceptor", "uninstrument"]

_lock = threading.Lock()
_shared: list[Any] = []


def shared_interceptor() -> Any:
    """The :class:`~limelight_temporal.TracingInterceptor` added to clients (one per process).

    :raises TracingSetupError: the global propagator cannot carry a context in a
        Temporal header (so the client is not created half-traced).
    """
    with _lock:
        if not _shared:
            from ._tracing import TracingInterceptor

            _shared.append(TracingInterceptor())
        return _shared[0]


def _install(patches: Patches) -> None:
    from temporalio.client import Client

    from ._tracing import TracingInterceptor

    original = Client.__init__

    def init(self: Client, *args: Any, interceptors: Sequence[Any] = (), **kwargs: Any) -> None:
        chosen = list(interceptors)
        if not any(isinstance(i, TracingInterceptor) for i in chosen):
            chosen.append(shared_interceptor())
        original(self, *args, interceptors=chosen, **kwargs)

    init.__wrapped__ = original  # type: ignore[attr-defined]
    patches.wrap(Client, "__init__", init)


instrumentation = Instrumentation("temporal", [Instrumentor("temporalio", _install)])
"""The temporal surface's one instrumentor (``temporalio``)."""


def instrument(*libraries: str) -> tuple[str, ...]:
    """Add the tracing interceptor to every Temporal client created from now on (those
    given one already keep theirs); return the libraries instrumented by this call."""
    return instrumentation.instrument(*libraries)


def uninstrument(*libraries: str) -> tuple[str, ...]:
    """Restore ``temporalio.client.Client`` exactly (clients made meanwhile stay traced)."""
    return instrumentation.uninstrument(*libraries)


def is_instrumented(library: str | None = None) -> bool:
    """Whether new clients get the tracing interceptor."""
    return instrumentation.is_instrumented(library)
