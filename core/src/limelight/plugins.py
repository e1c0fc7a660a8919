"""The plugins as the core discovered and registered them, for tools and tests.

:func:`discover` loads plugins the way a start would (entry points, the
allow/block lists, priority order) without starting anything;
:class:`PluginManager` is the typed facade the core calls hooks through, and
:class:`PluginInfo` / :class:`PluginFailure` are what ``limelight plugins``
prints. :func:`get_logger` is the logger a plugin writes its own lines with
(``get_logger("limelight.<plugin>")``): structlog's signature, the application's
``logging`` level and handlers. :func:`lazy_exports` keeps a plugin package
cheap to load: the core imports every installed plugin when telemetry starts,
and a package that imports all its modules up front makes every process pay
for surfaces it does not use.
"""

from __future__ import annotations

from ._lazy import lazy_exports
from ._log import get_logger
from ._plugins import PluginError, PluginFailure, PluginInfo, PluginManager, discover

__all__ = [
    "PluginError",
    "PluginFailure",
    "PluginInfo",
    "PluginManager",
    "discover",
    "get_logger",
    "lazy_exports",
]
