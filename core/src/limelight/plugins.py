"""The plugins as the core discovered and registered them, for tools and tests.

:func:`discover` loads plugins the way a start would (entry points, the
allow/block lists, priority order) without starting anything;
:class:`PluginManager` is the typed facade the core calls hooks through, and
:class:`PluginInfo` / :class:`PluginFailure` are what ``limelight plugins``
prints.
"""

from __future__ import annotations

from ._plugins import PluginError, PluginFailure, PluginInfo, PluginManager, discover

__all__ = ["PluginError", "PluginFailure", "PluginInfo", "PluginManager", "discover"]
