"""A package's public names imported from its modules on first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    modules: Mapping[str, Iterable[str]],
    *,
    distribution: str | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` that import each name from its module
    the first time it is asked for (PEP 562), for a package's ``__init__``::

        from typing import TYPE_CHECKING as _TYPE_CHECKING

        from limelight.plugins import lazy_exports as _lazy_exports

        if _TYPE_CHECKING:  # what type checkers and readers see
            from ._plugin import JobsPlugin, plugin
            from ._worker import instrument

        __getattr__, __dir__ = _lazy_exports(
            __name__,
            {"._plugin": ("JobsPlugin", "plugin"), "._worker": ("instrument",)},
            distribution="limelight-jobs",
        )

    The entry point ``limelight_jobs._plugin:plugin`` then imports the package
    and ``_plugin`` only; ``limelight_jobs.instrument`` imports ``_worker`` when
    first used, and the value is kept in the package so later lookups are
    plain attribute reads.

    :param package: the package's ``__name__``.
    :param modules: relative module name -> the names it provides.
    :param distribution: also provide ``__version__``, this distribution's
        version (``"0.0.0"`` when it is not installed), read on first use.
    """
    where = {name: module for module, names in modules.items() for name in names}
    if distribution is not None:
        where["__version__"] = ""

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module attribute PEP 562 names)
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if name == "__version__":
            from importlib.metadata import PackageNotFoundError, version

            try:
                value: Any = version(distribution or "")
            except PackageNotFoundError:  # running from a source tree
                value = "0.0.0"
        else:
            value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
