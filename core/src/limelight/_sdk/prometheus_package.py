"""prometheus_client's package, its exposition loaded on first use.

Not a private name: ``prometheus_client/__init__.py`` imports every submodule
(the exposition among them, with ``http.server``, ``wsgiref`` and
``socketserver``: about two thirds of the package's import time) and binds
their public names. The metric store needs the metrics, the registry, the value
cells and the collectors only; a process that exports over OTLP never serves
the text format. When this module is imported before anything imported
prometheus_client, the package is put in ``sys.modules`` without running its
``__init__``, holding the submodules the store uses and the names they define
that the package exports; the first other name asked of it (``start_http_server``,
``generate_latest``, ``__all__``, a ``from prometheus_client import *``) runs the
package's own ``__init__`` in it, once, and every name is then where
prometheus_client puts it, the same objects. A package already imported is left
as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

__all__ = ["DEFERRED", "SUBMODULES"]

SUBMODULES: tuple[str, ...] = (
    "samples",
    "utils",
    "validation",
    "values",
    "metrics_core",
    "registry",
    "metrics",
    "gc_collector",
    "platform_collector",
    "process_collector",
)
"""The submodules imported at once (the store's and the runtime metrics')."""

_EXPORTED: dict[str, tuple[str, ...]] = {
    "metrics": (
        "Counter",
        "Enum",
        "Gauge",
        "Histogram",
        "Info",
        "Summary",
        "disable_created_metrics",
        "enable_created_metrics",
    ),
    "metrics_core": ("Metric",),
    "registry": ("REGISTRY", "CollectorRegistry"),
    "gc_collector": ("GC_COLLECTOR", "GCCollector"),
    "platform_collector": ("PLATFORM_COLLECTOR", "PlatformCollector"),
    "process_collector": ("PROCESS_COLLECTOR", "ProcessCollector"),
}
"""Names the package's ``__init__`` takes from those submodules."""

_PACKAGE = "prometheus_client"
_lock = threading.RLock()
_running = threading.local()


def _complete(package: ModuleType) -> None:
    """Run the package's own ``__init__`` in *package* (once)."""
    with _lock:
        if package.__dict__.get("__getattr__") is not _getattr:
            return
        _running.active = True
        try:
            spec = package.__spec__
            loader = spec.loader if spec is not None else None
            if loader is None:
                raise ImportError(f"{_PACKAGE} has no loader to complete it with")
            loader.exec_module(package)
        finally:
            _running.active = False
        if package.__dict__.get("__getattr__") is _getattr:
            del package.__dict__["__getattr__"]


def _getattr(name: str) -> Any:
    package = sys.modules.get(_PACKAGE)
    if package is None or getattr(_running, "active", False) or name.startswith("__path"):
        # the import system probing while the __init__ runs: the names it defines next
        raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}")
    _complete(package)
    try:
        return package.__dict__[name]
    except KeyError:
        raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}") from None


def _defer() -> bool:
    """Put the package in ``sys.modules`` with its exposition deferred; false when it
    was imported already (or cannot be found, or a submodule failed: then the
    package is imported as usual, or its import fails as it would)."""
    with _lock:
        if _PACKAGE in sys.modules:
            return False
        spec = importlib.util.find_spec(_PACKAGE)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return False
        package = importlib.util.module_from_spec(spec)
        package.__dict__["__getattr__"] = _getattr
        sys.modules[_PACKAGE] = package
        try:
            for submodule in SUBMODULES:
                module = importlib.import_module(f"{_PACKAGE}.{submodule}")
                for name in _EXPORTED.get(submodule, ()):
                    setattr(package, name, getattr(module, name))
        except Exception:
            # a release laid out otherwise: the package's own import, as without limelight
            for name in [n for n in sys.modules if n == _PACKAGE or n.startswith(_PACKAGE + ".")]:
                del sys.modules[name]
            return False
        return True


DEFERRED: bool = _defer()
"""Whether this process's prometheus_client was imported with its exposition deferred."""
