"""Low-cardinality names for what a child process or a pool task runs."""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["callable_name"]


def callable_name(fn: Any) -> str:
    """``module.qualname`` of a function, class or method (``shop.jobs.resize``), as
    ``@limelight.instrument`` names functions; a ``functools.partial`` is named after
    the function it wraps, any other callable object after its class."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(qualname, str):
        cls = type(fn)
        fn, qualname = cls, cls.__qualname__
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and module else qualname
