"""Entry points read once: one scan of the installed distributions serves every lookup.

``importlib.metadata.entry_points()`` reads and parses the entry points of every
installed distribution each time it is called, whatever group is asked for
(tens of milliseconds in an environment of a hundred distributions). limelight
looks entry points up in a few groups when telemetry starts (its plugins,
propagators, samplers): :func:`entry_points` reads each distribution's
``entry_points.txt`` once, made again only when ``sys.path`` changes, and parses
only the files that name the group asked for, once per group.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.metadata
import os
import pathlib
import re
import sys
import threading
from collections.abc import Callable, Sequence

__all__ = ["entry_points", "name_and_version", "version"]

_lock = threading.Lock()


class _Scan:
    """The distributions of one ``sys.path`` that declare entry points, with the
    text of their ``entry_points.txt``; the groups looked up so far."""

    def __init__(self, path: tuple[str, ...]) -> None:
        self.path = path
        self.files: list[tuple[importlib.metadata.Distribution, str]] = []
        self.groups: dict[str, tuple[importlib.metadata.EntryPoint, ...]] = {}
        self.by_name: dict[str, Callable[[], importlib.metadata.Distribution]] = {}
        found = _directories(path)
        if found is None:
            self._scan_distributions()
            return
        for key, where in found:
            # the first of a name on the path wins, as importlib.metadata.entry_points() has it
            if key in self.by_name:
                continue
            self.by_name[key] = functools.partial(_path_distribution, where)
            text = _read(os.path.join(where, "entry_points.txt"))
            if text:
                self.files.append((_path_distribution(where), text))

    def _scan_distributions(self) -> None:
        """The same, through every finder's ``find_distributions``."""
        for dist in importlib.metadata.distributions():
            key = _normalized_name(dist)
            if key in self.by_name:
                continue
            self.by_name[key] = functools.partial(_identity, dist)
            text = dist.read_text("entry_points.txt")
            if text:
                self.files.append((dist, text))

    def group(self, group: str) -> tuple[importlib.metadata.EntryPoint, ...]:
        found = self.groups.get(group)
        if found is None:
            found = tuple(
                ep
                for dist, text in self.files
                if group in text  # most files never name it: those are never parsed
                for ep in dist.entry_points.select(group=group)
            )
            self.groups[group] = found
        return found


_scanned: _Scan | None = None

_NORMALIZE = re.compile(r"[-_.]+")


def _identity(dist: importlib.metadata.Distribution) -> importlib.metadata.Distribution:
    return dist


def _path_distribution(where: str) -> importlib.metadata.Distribution:
    return importlib.metadata.PathDistribution(pathlib.Path(where))


def _read(file: str) -> str | None:
    """The text of *file*, ``None`` where ``Distribution.read_text`` gives none."""
    try:
        with open(file, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


def _directories(path: Sequence[str]) -> list[tuple[str, str]] | None:
    """``(normalized name, metadata directory)`` of every distribution on *path*, in the
    order ``importlib.metadata.distributions()`` finds them, read with one directory
    listing per entry; ``None`` when that order is not only the standard path finder's
    over plain directories (another finder of distributions on ``sys.meta_path``, a
    zip or an egg on the path): the caller asks ``importlib.metadata`` then."""
    finders = [f for f in sys.meta_path if hasattr(f, "find_distributions")]
    if finders != [importlib.machinery.PathFinder]:
        return None
    out: list[tuple[str, str]] = []
    for root in path:
        directory = root or "."
        if not os.path.isdir(directory):
            if os.path.exists(directory):
                return None  # a zip: importlib.metadata reads it
            continue
        if os.path.basename(root).lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(directory)
        except OSError:
            continue
        # importlib.metadata's Lookup: the entries of one name together, names in the
        # order the listing first gives them
        by_name: dict[str, list[str]] = {}
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                name = low.rpartition(".")[0].partition("-")[0]
                key = _NORMALIZE.sub("_", name)
                by_name.setdefault(key, []).append(os.path.join(root, child))
        out.extend((key, where) for key, group in by_name.items() for where in group)
    return out


def _normalized_name(dist: importlib.metadata.Distribution) -> str:
    name = getattr(dist, "_normalized_name", None)  # what importlib.metadata compares
    if isinstance(name, str):
        return name
    return str(dist.metadata["Name"] or "").lower().replace("-", "_")  # pragma: no cover


def _scan() -> _Scan:
    global _scanned
    path = tuple(sys.path)
    scanned = _scanned
    if scanned is None or scanned.path != path:
        with _lock:
            scanned = _scanned
            if scanned is None or scanned.path != path:
                scanned = _scanned = _Scan(path)
    return scanned


def entry_points(group: str, name: str | None = None) -> tuple[importlib.metadata.EntryPoint, ...]:
    """The entry points of *group* (called *name*, when given), in the order
    ``importlib.metadata.entry_points(group=...)`` gives them."""
    scanned = _scan()
    with _lock:
        found = scanned.group(group)
    return tuple(ep for ep in found if name is None or ep.name == name)


def version(distribution: str) -> str:
    """``importlib.metadata.version(distribution)``, from the scan :func:`entry_points`
    made (no search of ``sys.path`` for it, no full parse of its metadata).

    :raises importlib.metadata.PackageNotFoundError: when it is not installed.
    """
    make = _scan().by_name.get(_NORMALIZE.sub("_", distribution).lower())
    found = name_and_version(make())[1] if make is not None else None
    if found is None:  # not on a path entry importlib's path finder reads: ask it
        return importlib.metadata.version(distribution)
    return found


def name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """``dist.metadata["Name"]`` and ``dist.version``, read from the metadata's
    header lines (the full parse reads the whole file, description included,
    through the email parser); the full parse when a header is not found there."""
    name = version = None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if text:
        for line in text.partition("\n\n")[0].splitlines():
            field, sep, value = line.partition(":")
            if not sep or field[:1].isspace():
                continue
            field = field.lower()
            if field == "name" and name is None:
                name = value.strip()
            elif field == "version" and version is None:
                version = value.strip()
    if not name or not version:
        metadata = dist.metadata
        name = metadata["Name"] if metadata is not None else None
        version = dist.version
    return name, version
