"""The drivers' ``connect`` seams, for the instrument contract.

Each install function replaces a driver's connect function (or classmethod)
through :class:`limelight.surface.Patches` by one that returns the connection
instrumented, so code that connects on its own (a pool, an ORM, a library)
is measured too:

- ``sqlite3``: ``sqlite3.connect`` (and ``sqlite3.dbapi2.connect``, which
  SQLAlchemy calls) connects with ``factory=`` a measuring subclass of the
  connection class asked for, so the connection is a ``sqlite3.Connection``
  (``isinstance`` holds, ``backup`` and pandas take it);
- ``aiosqlite``: ``aiosqlite.connect`` gives the async wrapper of
  ``instrument_connection`` once awaited (or entered with ``async with``);
  the sqlite3 connection under it is left to it;
- ``psycopg``: ``Connection.connect``, ``AsyncConnection.connect`` and the
  module's ``connect``, the connection instrumented in place;
- ``psycopg2``: ``psycopg2.connect``, with ``connection_factory=``
  :class:`~limelight_sql.Psycopg2Connection` unless another one is given
  (that one is instrumented in place after connecting).

A connect that fails raises what the driver raised; a failure to instrument
is reported once and the connection is returned as the driver made it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import Callable, Generator
from typing import Any

from limelight.surface import Patches, TelemetryBinding

from ._dbapi import instrument_connection
from ._instruments import Bound, binding_for, report_failure
from ._native import measured_sqlite_class, register, stand_down

__all__ = [
    "PendingConnection",
    "install_aiosqlite",
    "install_psycopg",
    "install_psycopg2",
    "install_sqlite3",
    "stand_down_made",
]

_MADE: dict[str, weakref.WeakSet[Any]] = {
    name: weakref.WeakSet() for name in ("sqlite3", "aiosqlite", "psycopg", "psycopg2")
}
"""The connections each driver's instrumentation made, for :func:`stand_down_made`."""


def _made(library: str, connection: Any) -> Any:
    """Remember that *library*'s instrumentation made *connection*; return it."""
    with contextlib.suppress(TypeError):  # not weakly referenceable: it keeps recording
        _MADE[library].add(connection)
    return connection


def stand_down_made(library: str) -> None:
    """Make the connections *library*'s instrumentation made record nothing any more."""
    made = _MADE[library]
    connections = list(made)
    made.clear()
    for connection in connections:
        try:
            stand_down(connection)
        except Exception as exc:
            report_failure("sql uninstrument", exc)


def _instrumented(library: str, connection: Any) -> Any:
    """``instrument_connection(connection)``, or *connection* itself when that fails."""
    try:
        return _made(library, instrument_connection(connection))
    except Exception as exc:
        report_failure("sql connect", exc)
        return connection


# -- sqlite3 ---------------------------------------------------------------------------------

_FACTORY_POSITION = 5
"""Where ``factory`` is among ``sqlite3.connect``'s positional parameters."""
_UNMEASURED = "_limelight_sql_unmeasured"
_unmeasured_classes: dict[type, type] = {}
_sqlite_binding: TelemetryBinding[Bound] | None = None
_sqlite_lock = threading.Lock()


def _unmeasured(factory: type) -> type:
    """A subclass of the sqlite3 connection class *factory* that ``instrument("sqlite3")``
    leaves alone (for the connection under an aiosqlite one, measured above it)."""
    cls = _unmeasured_classes.get(factory)
    if cls is None:
        with _sqlite_lock:
            cls = _unmeasured_classes.get(factory)
            if cls is None:
                namespace = {"__module__": factory.__module__, _UNMEASURED: True}
                cls = type(factory.__name__, (factory,), namespace)
                _unmeasured_classes[factory] = cls
    return cls


def _shared_sqlite_binding() -> TelemetryBinding[Bound]:
    global _sqlite_binding
    if _sqlite_binding is None:
        _sqlite_binding = binding_for("sqlite", None, {})
    return _sqlite_binding


def install_sqlite3(patches: Patches) -> None:
    """Connect every ``sqlite3.connect`` through a measuring connection class."""
    import sqlite3
    import sqlite3.dbapi2

    original = sqlite3.connect

    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> Any:
        positional = len(args) > _FACTORY_POSITION
        factory = args[_FACTORY_POSITION] if positional else kwargs.get("factory")
        if factory is None:
            factory = sqlite3.Connection
        if getattr(factory, _UNMEASURED, False):
            return original(*args, **kwargs)
        try:
            measured = measured_sqlite_class(factory)
        except Exception as exc:  # a factory limelight cannot subclass
            report_failure("sqlite3 connect", exc)
            return original(*args, **kwargs)
        if positional:
            args = (*args[:_FACTORY_POSITION], measured, *args[_FACTORY_POSITION + 1 :])
        else:
            kwargs["factory"] = measured
        connection = original(*args, **kwargs)
        try:
            register(connection, _shared_sqlite_binding())
            _made("sqlite3", connection)
        except Exception as exc:
            report_failure("sqlite3 connect", exc)
        return connection

    patches.wrap(sqlite3, "connect", connect)
    if sqlite3.dbapi2.connect is original:
        patches.wrap(sqlite3.dbapi2, "connect", connect)


# -- aiosqlite -------------------------------------------------------------------------------


class PendingConnection:
    """What ``aiosqlite.connect`` returns while aiosqlite is instrumented.

    Like aiosqlite's own result, it is awaited (``await aiosqlite.connect(...)``)
    or entered (``async with aiosqlite.connect(...) as db``), and either gives
    the connection, instrumented; attributes set before that (``daemon``) are
    aiosqlite's.
    """

    __slots__ = ("_connecting",)

    def __init__(self, connecting: Any) -> None:
        object.__setattr__(self, "_connecting", connecting)

    async def _open(self) -> Any:
        return _instrumented("aiosqlite", await self._connecting)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._open().__await__()

    async def __aenter__(self) -> Any:
        return await self._open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self._connecting.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connecting, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connecting, name, value)


def install_aiosqlite(patches: Patches) -> None:
    """Make every ``aiosqlite.connect`` give an instrumented connection."""
    import sqlite3

    import aiosqlite
    import aiosqlite.core

    original: Callable[..., Any] = aiosqlite.connect

    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> Any:
        try:
            kwargs["factory"] = _unmeasured(kwargs.get("factory") or sqlite3.Connection)
        except Exception as exc:
            report_failure("aiosqlite connect", exc)
        return PendingConnection(original(*args, **kwargs))

    patches.wrap(aiosqlite, "connect", connect)
    if aiosqlite.core.connect is original:
        patches.wrap(aiosqlite.core, "connect", connect)


# -- psycopg ---------------------------------------------------------------------------------


def install_psycopg(patches: Patches) -> None:
    """Instrument every connection ``psycopg`` makes, sync and async, in place."""
    import psycopg

    sync_connect = vars(psycopg.Connection)["connect"].__func__
    async_connect = vars(psycopg.AsyncConnection)["connect"].__func__

    @functools.wraps(sync_connect)
    def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        return _instrumented("psycopg", sync_connect(cls, *args, **kwargs))

    @functools.wraps(async_connect)
    async def aconnect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        return _instrumented("psycopg", await async_connect(cls, *args, **kwargs))

    module_connect = psycopg.connect
    patches.wrap(psycopg.Connection, "connect", classmethod(connect))
    patches.wrap(psycopg.AsyncConnection, "connect", classmethod(aconnect))
    if getattr(module_connect, "__func__", None) is sync_connect:
        patches.wrap(psycopg, "connect", psycopg.Connection.connect)


# -- psycopg2 --------------------------------------------------------------------------------


def install_psycopg2(patches: Patches) -> None:
    """Instrument every connection ``psycopg2.connect`` makes."""
    import psycopg2

    from ._psycopg2 import Psycopg2Connection

    original = psycopg2.connect

    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> Any:
        positional = len(args) > 1
        given = args[1] if positional else kwargs.get("connection_factory")
        if given is not None:
            return _instrumented("psycopg2", original(*args, **kwargs))
        if positional:
            args = (args[0], Psycopg2Connection, *args[2:])
        else:
            kwargs["connection_factory"] = Psycopg2Connection
        return _made("psycopg2", original(*args, **kwargs))

    patches.wrap(psycopg2, "connect", connect)
