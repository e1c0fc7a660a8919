"""Post-import hooks: run a function once a module has been imported, never importing it.

:func:`when_imported` calls its callback at once when the module is already
imported, and otherwise right after the module's code has run, the first time
the application imports it (``import fastapi``, ``from django.core import
...``, ``importlib.import_module("redis")``), on the importing thread. A
module the application never imports is never imported, and costs nothing but
a dictionary entry.

The mechanism is one finder at the front of :data:`sys.meta_path`. For a name
nobody waits for it returns ``None`` after one dictionary lookup, so the
import system goes on as if it were not there. For a watched name it asks the
finders after it for the module's spec, exactly as the import system would,
and sets ``exec_module`` on that spec's loader object (its type, and so
``module.__loader__`` and ``module.__spec__``, unchanged), so the callbacks
run once the module's code has run; the attribute is removed again at once.
A module whose code raises runs no callback and stays watched, so a later
import that succeeds still runs them.

A callback runs with the module fully executed, inside the import system's
lock for that module: it may import other modules (submodules of the package
included), and another thread importing the same module waits for it. Its
exceptions are caught and logged; the import itself always proceeds as it
would without limelight. A module imported while limelight installs an
instrumentation on the same thread (:func:`deferred`: the instrumentation's
own modules may be half-imported then) runs its callbacks once that
installation is done.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from ._log import get_logger

__all__ = ["cancel", "deferred", "watched", "when_imported"]

_log = get_logger("limelight")

Callback = Callable[[ModuleType], object]

_lock = threading.Lock()
_waiting: dict[str, list[Callback]] = {}
"""Module name -> callbacks to run once it is imported."""
_resolving = threading.local()
"""The names this thread is looking up in the other finders (so the finder skips them)."""
_deferral = threading.local()
"""Per thread: how deep in :func:`deferred` it is, and the callbacks held meanwhile."""


class _PostImportFinder:
    """The finder limelight puts first in :data:`sys.meta_path`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in _waiting:  # every other import: one lookup
            return None
        busy: set[str] | None = getattr(_resolving, "names", None)
        if busy is None:
            busy = _resolving.names = set()
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = _find_elsewhere(self, fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is not None and spec.loader is not None:
            _hook_loader(spec.loader, fullname)
        return spec

    def invalidate_caches(self) -> None:
        """Nothing cached here."""


def _find_elsewhere(
    finder: _PostImportFinder,
    fullname: str,
    path: Sequence[str] | None,
    target: ModuleType | None,
) -> ModuleSpec | None:
    """The spec the finders after *finder* give for *fullname*, as the import system asks."""
    for other in list(sys.meta_path):
        if other is finder:
            continue
        find_spec = getattr(other, "find_spec", None)
        if find_spec is None:
            continue
        spec: ModuleSpec | None = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _hook_loader(loader: Any, fullname: str) -> None:
    """Run the callbacks of *fullname* once *loader* has executed the module."""
    if isinstance(loader, type) or not hasattr(loader, "exec_module"):
        return  # a class used as its own loader (built-in, frozen): shared, left alone
    if "exec_module" in getattr(loader, "__dict__", {}):
        return  # already hooked (a spec found twice)
    original = loader.exec_module

    def exec_module(module: ModuleType) -> None:
        with contextlib.suppress(AttributeError):  # removed by someone else
            del loader.exec_module
        original(module)  # the module's own code; what it raises, the importer gets
        _run(fullname, module)

    try:
        loader.exec_module = exec_module
    except (AttributeError, TypeError):  # a loader with slots: no hook, nothing broken
        _log.debug("cannot watch the import of a module", module=fullname)


def _run(name: str, module: ModuleType) -> None:
    with _lock:
        callbacks = _waiting.pop(name, [])
    if getattr(_deferral, "depth", 0):
        _deferral.held.extend((name, module, c) for c in callbacks)
        return
    for callback in callbacks:
        _call(name, module, callback)


def _call(name: str, module: ModuleType, callback: Callback) -> None:
    try:
        callback(module)
    except Exception:
        _log.exception("a post-import hook failed", module=name)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold the callbacks of modules this thread imports until the outermost
    ``with`` ends (then they run, in import order)."""
    depth: int = getattr(_deferral, "depth", 0)
    if not depth:
        _deferral.held = []
    _deferral.depth = depth + 1
    try:
        yield
    finally:
        _deferral.depth = depth
        if not depth:
            held, _deferral.held = _deferral.held, []
            for name, module, callback in held:
                _call(name, module, callback)


_finder = _PostImportFinder()


def _install_finder() -> None:
    if not any(f is _finder for f in sys.meta_path):
        sys.meta_path.insert(0, _finder)


def when_imported(name: str, callback: Callback) -> bool:
    """Call ``callback(module)`` once the module called *name* is imported.

    :param name: the module's full name (``"fastapi"``, ``"concurrent.futures"``).
    :param callback: called with the module; at once when it is already imported
        (then this returns true), otherwise on the thread that first imports it.
    :returns: whether the callback ran now.
    """
    module = sys.modules.get(name)
    if module is None:
        with _lock:
            module = sys.modules.get(name)
            if module is None:
                _install_finder()
                _waiting.setdefault(name, []).append(callback)
                return False
    callback(module)
    return True


def cancel(name: str, callback: Callback) -> bool:
    """Forget *callback* for *name*; true when it was still waiting."""
    with _lock:
        callbacks = _waiting.get(name)
        if not callbacks or callback not in callbacks:
            return False
        callbacks.remove(callback)
        if not callbacks:
            del _waiting[name]
        return True


def watched() -> tuple[str, ...]:
    """The module names some callback is waiting for."""
    with _lock:
        return tuple(sorted(_waiting))
