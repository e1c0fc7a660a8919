"""The surface's one contract: ``instrument()``, ``uninstrument()``, ``is_instrumented()``."""

from __future__ import annotations

from limelight.surface import Instrumentation, Instrumentor, Patches

__all__ = ["INSTRUMENTATION", "instrument", "is_instrumented", "uninstrument"]


def _subprocess(patches: Patches) -> None:
    from . import _subprocess

    _subprocess.install(patches)


def _remove_subprocess() -> None:
    from . import _subprocess

    _subprocess.remove()


def _multiprocessing(patches: Patches) -> None:
    from . import _multiprocessing, _pools

    _multiprocessing.install(patches)
    _pools.install_pool(patches)


def _remove_multiprocessing() -> None:
    from . import _multiprocessing

    _multiprocessing.remove()


def _executor(patches: Patches) -> None:
    from . import _pools

    _pools.install_executor(patches)


INSTRUMENTATION = Instrumentation(
    "process",
    [
        Instrumentor("subprocess", _subprocess, remove=_remove_subprocess),
        Instrumentor("multiprocessing", _multiprocessing, remove=_remove_multiprocessing),
        # ProcessPoolExecutor's own module: concurrent.futures is imported by much that never
        # makes a process pool (it loads concurrent.futures.process on first use of the name)
        Instrumentor("concurrent.futures.process", _executor, name="concurrent.futures"),
    ],
)
"""subprocess (``Popen``, so ``run``, ``call``, ``check_output`` and asyncio's
subprocesses), multiprocessing (``Process``, ``Pool``), concurrent.futures
(``ProcessPoolExecutor``)."""


def instrument(*libraries: str) -> tuple[str, ...]:
    """Instrument *libraries* (every one, with none given); return those instrumented now.

    Idempotent. The names are ``subprocess``, ``multiprocessing`` and
    ``concurrent.futures``; an unknown name raises :class:`ValueError`.
    """
    return INSTRUMENTATION.instrument(*libraries)


def uninstrument(*libraries: str) -> tuple[str, ...]:
    """Restore *libraries* (every one, with none given) exactly; return those that were
    instrumented."""
    return INSTRUMENTATION.uninstrument(*libraries)


def is_instrumented(library: str | None = None) -> bool:
    """Whether *library* (any of them, with none given) is instrumented."""
    return INSTRUMENTATION.is_instrumented(library)
