"""The pluggy markers for the ``limelight`` project."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "limelight"
"""The pluggy project name every limelight hook belongs to."""

ENTRY_POINT_GROUP = "limelight.plugins"
"""The entry-point group the core scans for plugins."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a function as a limelight hook specification."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a function as an implementation of a limelight hook."""

DEFAULT_PRIORITY = 500
"""Priority of a plugin that does not declare ``limelight_priority``.

Plugins are registered sorted by ``(priority, name)``. The ranges used by
limelight's own plugins are: ``0-99`` core built-ins, ``100-199`` exporters,
``200-299`` surfaces. Third-party plugins default to ``500``.
"""
