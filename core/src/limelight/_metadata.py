"""Entry points read once: one scan of the installed distributions serves every lookup.

``importlib.metadata.entry_points()`` reads the metadata of every installed
distribution each time it is called, whatever group is asked for (tens of
milliseconds in an environment of a hundred distributions). limelight looks
entry points up in several groups when telemetry starts (its plugins,
propagators, samplers); :func:`entry_points` answers them all from one scan,
made again only when ``sys.path`` changes.
"""

from __future__ import annotations

import importlib.metadata
import sys
import threading
from typing import Any, cast

__all__ = ["entry_points"]

_lock = threading.Lock()
# importlib.metadata.entry_points() with no selection: EntryPoints on Python 3.12,
# SelectableGroups (also with select()) on 3.11
_scanned: tuple[tuple[str, ...], Any] | None = None


def _all() -> importlib.metadata.EntryPoints:
    global _scanned
    path = tuple(sys.path)
    scanned = _scanned
    if scanned is None or scanned[0] != path:
        with _lock:
            scanned = _scanned
            if scanned is None or scanned[0] != path:
                scanned = _scanned = (path, importlib.metadata.entry_points())
    return cast(importlib.metadata.EntryPoints, scanned[1])


def entry_points(group: str, name: str | None = None) -> tuple[importlib.metadata.EntryPoint, ...]:
    """The entry points of *group* (called *name*, when given), in the order
    ``importlib.metadata.entry_points(group=...)`` gives them."""
    found = _all().select(group=group)
    return tuple(ep for ep in found if name is None or ep.name == name)
