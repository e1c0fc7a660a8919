"""psycopg 3 and psycopg2 connections, instrumented through the drivers' own extension points.

Both drivers create cursors through a factory the connection holds
(``cursor_factory``, and psycopg's ``server_cursor_factory``). Instrumenting
one of their connections replaces that factory by a subclass of it whose
``execute``, ``executemany`` and ``callproc`` are measured, so the
connection stays the driver's own object: ``isinstance`` holds, and the
driver's C functions and type-registration helpers accept it.

psycopg2 also lets a subclass of its connection be the connection itself
(``connect(..., connection_factory=...)``): :class:`Psycopg2Connection`
measures the cursors of every factory, including one passed to ``cursor()``.
sqlite3 does the same (``connect(..., factory=...)``): the instrument
contract connects through :func:`measured_sqlite_class`, a subclass of the
connection class whose cursors are measured, so the connection stays a
``sqlite3.Connection``.

A connection an instrumented SQLAlchemy engine uses is measured by the
engine: :func:`silence` makes its cursors record nothing from then on (and
:func:`unsilence` undoes it), so no statement is counted twice.
"""

from __future__ import annotations

import inspect
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from limelight.surface import TelemetryBinding

from ._instruments import (
    Bound,
    ameasure,
    batch_size,
    measure,
    perf_counter,
    record_failure,
    report_failure,
    suppressed,
)

__all__ = [
    "MeasuredSqlite",
    "binding_of",
    "instrument_native",
    "is_native",
    "is_stood_down",
    "measured_cursor_class",
    "measured_sqlite_class",
    "register",
    "silence",
    "stand_down",
    "unsilence",
]

_ATTRIBUTE = "_limelight_sql"
_BINDINGS: weakref.WeakKeyDictionary[Any, TelemetryBinding[Bound]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class _Passthrough:
    """The binding of a cursor whose connection was never instrumented: nothing is recorded."""

    __slots__ = ("_bound",)

    def __init__(self) -> None:
        self._bound = Bound(None, None, {})

    def get(self) -> Bound:
        return self._bound


_PASSTHROUGH: Any = _Passthrough()


def binding_of(connection: object) -> TelemetryBinding[Bound] | None:
    """The binding *connection* was instrumented with, ``None`` when it was not."""
    binding = getattr(connection, _ATTRIBUTE, None)
    if binding is not None:
        return binding  # type: ignore[no-any-return]
    try:
        return _BINDINGS.get(connection)
    except TypeError:  # neither hashable nor weakly referenceable
        return None


def register(connection: object, binding: TelemetryBinding[Bound]) -> None:
    """Remember *binding* for the cursors *connection* opens from now on."""
    try:
        setattr(connection, _ATTRIBUTE, binding)
    except AttributeError:  # a C object without a __dict__ (psycopg2's connection)
        with _LOCK:
            _BINDINGS[connection] = binding


# -- measured cursors -----------------------------------------------------------------------


class _Measured:
    """Finds the connection's binding once, when the cursor is made.

    The driver's methods are bound into each measuring class when it is made
    (``_driver_execute``, ...), so a measured call costs no ``super()`` lookup.
    """

    __slots__ = ()

    _limelight: Any
    _driver_init: Callable[..., None]
    connection: Any
    description: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._driver_init(*args, **kwargs)
        binding = binding_of(self.connection)
        self._limelight = binding if binding is not None else _PASSTHROUGH


class _Execute(_Measured):
    __slots__ = ()

    _driver_execute: Callable[..., Any]

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``execute``, measured."""
        bound = self._limelight.get()
        system = bound.system
        if system is None or suppressed():
            return self._driver_execute(query, *args, **kwargs)
        if bound.tracer is not None:
            return measure(bound, self, self._driver_execute, query, args, kwargs, None)
        # metrics only: measure()'s steps inline, sparing a call on the commonest path
        start = perf_counter()
        try:
            result = self._driver_execute(query, *args, **kwargs)
        except BaseException:
            record_failure(system, query, perf_counter() - start)
            raise
        elapsed = perf_counter() - start
        try:
            system.ok(self.description is not None, elapsed)
        except Exception as exc:
            report_failure("sql statement", exc)
        return result


class _ExecuteMany(_Measured):
    __slots__ = ()

    _driver_executemany: Callable[..., Any]

    def executemany(self, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``executemany``, measured as one operation."""
        method = self._driver_executemany
        batch = batch_size(params_seq)
        return measure(
            self._limelight.get(), self, method, query, (params_seq, *args), kwargs, batch
        )


class _ExecuteScript(_Measured):
    __slots__ = ()

    _driver_executescript: Callable[..., Any]

    def executescript(self, script: Any) -> Any:
        """sqlite3's ``executescript``, measured as one operation."""
        return measure(
            self._limelight.get(), self, self._driver_executescript, script, (), {}, None
        )


class _CallProc(_Measured):
    __slots__ = ()

    _driver_callproc: Callable[..., Any]

    def callproc(self, procname: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``callproc``, measured."""
        return measure(
            self._limelight.get(), self, self._driver_callproc, procname, args, kwargs, None
        )


class _AsyncExecute(_Measured):
    __slots__ = ()

    _driver_execute: Callable[..., Any]

    async def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``execute``, measured."""
        return await ameasure(
            self._limelight.get(), self, self._driver_execute, query, args, kwargs, None
        )


class _AsyncExecuteMany(_Measured):
    __slots__ = ()

    _driver_executemany: Callable[..., Any]

    async def executemany(self, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``executemany``, measured as one operation."""
        method = self._driver_executemany
        batch = batch_size(params_seq)
        return await ameasure(
            self._limelight.get(), self, method, query, (params_seq, *args), kwargs, batch
        )


_SYNC: tuple[tuple[str, type], ...] = (
    ("execute", _Execute),
    ("executemany", _ExecuteMany),
    ("executescript", _ExecuteScript),
    ("callproc", _CallProc),
)
_ASYNC: tuple[tuple[str, type], ...] = (
    ("execute", _AsyncExecute),
    ("executemany", _AsyncExecuteMany),
)
_CLASSES: dict[type, type] = {}


def measured_cursor_class(base: type) -> type:
    """The subclass of the cursor class *base* whose statements are measured (made once).

    Only the methods *base* has are measured, so feature checks on its cursors
    give the driver's answers.
    """
    if issubclass(base, _Measured):
        return base
    cls = _CLASSES.get(base)
    if cls is not None:
        return cls
    with _LOCK:
        cls = _CLASSES.get(base)
        if cls is None:
            coroutine = inspect.iscoroutinefunction(getattr(base, "execute", None))
            methods = _ASYNC if coroutine else _SYNC
            present = [(n, m) for n, m in methods if callable(getattr(base, n, None))]
            name = f"Measured{base.__name__[:1].upper()}{base.__name__[1:]}"
            namespace: dict[str, Any] = {
                "__slots__": ("_limelight",),
                "__module__": "limelight_sql",
                "__qualname__": name,
                "_driver_init": base.__init__,
                **{f"_driver_{n}": getattr(base, n) for n, _ in present},
            }
            bases = tuple(m for _, m in present) or (_Measured,)
            cls = type(name, (*bases, base), namespace)
            _CLASSES[base] = cls
    return cls


# -- connections ----------------------------------------------------------------------------


def _psycopg_connection_types() -> tuple[type, ...]:
    module = sys.modules.get("psycopg")
    if module is None:
        return ()
    return (module.Connection, module.AsyncConnection)


def _psycopg2_connection_type() -> type | None:
    module = sys.modules.get("psycopg2.extensions")
    return module.connection if module is not None else None


class MeasuredSqlite:
    """What the sqlite3 connection classes of :func:`measured_sqlite_class` add to the
    driver's: cursors of a measuring subclass, and the ``execute`` shortcuts through one."""

    __slots__ = ()

    _limelight_db_system = "sqlite"
    _limelight_cursor: type
    """The measuring subclass of ``sqlite3.Cursor``, the default cursor class."""
    _limelight_plain_cursor: type

    def cursor(self, factory: Any = None) -> Any:
        """The driver's ``cursor(factory)``, of a measuring subclass of *factory*."""
        if factory is None or factory is self._limelight_plain_cursor:
            cls = self._limelight_cursor
        else:
            cls = measured_cursor_class(factory)
        return super().cursor(cls)  # type: ignore[misc]

    def execute(self, sql: Any, parameters: Any = (), /) -> Any:
        """``execute`` on a new cursor, as sqlite3's shortcut."""
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: Any, parameters: Any, /) -> Any:
        """``executemany`` on a new cursor, as sqlite3's shortcut."""
        return self.cursor().executemany(sql, parameters)

    def executescript(self, script: Any, /) -> Any:
        """``executescript`` on a new cursor, as sqlite3's shortcut."""
        return self.cursor().executescript(script)


_SQLITE_CLASSES: dict[type, type] = {}


def measured_sqlite_class(factory: type) -> type:
    """The subclass of the sqlite3 connection class *factory* whose cursors are measured
    (made once per class)."""
    if issubclass(factory, MeasuredSqlite):
        return factory
    cls = _SQLITE_CLASSES.get(factory)
    if cls is not None:
        return cls
    import sqlite3

    cursor = measured_cursor_class(sqlite3.Cursor)  # takes the lock itself
    with _LOCK:
        cls = _SQLITE_CLASSES.get(factory)
        if cls is None:
            name = f"Measured{factory.__name__[:1].upper()}{factory.__name__[1:]}"
            namespace: dict[str, Any] = {
                "__module__": "limelight_sql",
                "__qualname__": name,
                "_limelight_cursor": cursor,
                "_limelight_plain_cursor": sqlite3.Cursor,
            }
            cls = type(name, (MeasuredSqlite, factory), namespace)
            _SQLITE_CLASSES[factory] = cls
    return cls


def is_native(connection: object) -> bool:
    """Whether *connection* is instrumented in place: a psycopg 3 or psycopg2 connection,
    or a sqlite3 connection of a :func:`measured_sqlite_class`."""
    if isinstance(connection, MeasuredSqlite):
        return True
    psycopg2_connection = _psycopg2_connection_type()
    if psycopg2_connection is not None and isinstance(connection, psycopg2_connection):
        return True
    types = _psycopg_connection_types()
    return bool(types) and isinstance(connection, types)


def _default_cursor_class(connection: Any) -> type:
    """The class of the cursors psycopg2's ``connection.cursor()`` makes."""
    try:
        probe = connection.cursor()  # client-side: no round trip
    except Exception:  # closed
        import psycopg2.extensions

        factory: type = connection.cursor_factory or psycopg2.extensions.cursor
        return factory
    probe.close()
    return type(probe)


def instrument_native(connection: Any, binding: TelemetryBinding[Bound]) -> None:
    """Measure the cursors *connection* (psycopg 3, psycopg2, or a measured sqlite3
    connection) opens from now on."""
    register(connection, binding)
    if isinstance(connection, MeasuredSqlite):  # its cursors are measured already
        return
    psycopg2_connection = _psycopg2_connection_type()
    psycopg2 = psycopg2_connection is not None and isinstance(connection, psycopg2_connection)
    if psycopg2:
        from ._psycopg2 import Psycopg2Connection

        if not isinstance(connection, Psycopg2Connection):  # that one measures every cursor
            connection.cursor_factory = measured_cursor_class(_default_cursor_class(connection))
        return
    connection.cursor_factory = measured_cursor_class(connection.cursor_factory)
    server_cursor_factory = getattr(connection, "server_cursor_factory", None)
    if server_cursor_factory is not None:  # psycopg 3.1 and later
        connection.server_cursor_factory = measured_cursor_class(server_cursor_factory)


# -- connections an instrumented engine measures ----------------------------------------------


class _Silenced:
    """The binding of a connection measured by an engine: its cursors record nothing.

    It remembers the binding it replaced and the engine that asked for it
    (weakly), for :func:`unsilence`.
    """

    __slots__ = ("__weakref__", "owner", "previous")

    def __init__(self, previous: Any, owner: object) -> None:
        self.previous = previous
        self.owner = weakref.ref(owner)

    def get(self) -> Bound:
        return _PASSTHROUGH_BOUND


_PASSTHROUGH_BOUND = Bound(None, None, {})
_SILENCED: weakref.WeakKeyDictionary[Any, _Silenced] = weakref.WeakKeyDictionary()


def _binding_holder(connection: Any) -> tuple[Callable[[], Any], Callable[[Any], None]] | None:
    """How to read and replace the binding of *connection*: a native one's, or that of a
    wrapper from ``instrument_connection`` (it has the binding in ``_limelight``)."""
    from ._dbapi import _Proxy

    if isinstance(connection, _Proxy):
        return (
            lambda: object.__getattribute__(connection, "_limelight"),
            lambda value: object.__setattr__(connection, "_limelight", value),
        )
    if binding_of(connection) is not None:
        return (lambda: binding_of(connection), lambda value: register(connection, value))
    return None


def silence(connection: Any, owner: object) -> None:
    """Make the cursors *connection* opens from now on record nothing (*owner*, an
    engine, records its statements), unless it is not instrumented or already silent."""
    holder = _binding_holder(connection)
    if holder is None:
        return
    read, write = holder
    current = read()
    if isinstance(current, _Silenced):
        return
    silenced = _Silenced(current, owner)
    write(silenced)
    with _LOCK:
        _SILENCED[connection] = silenced


def unsilence(owner: object) -> None:
    """Give back their own binding to the connections :func:`silence` silenced for *owner*."""
    with _LOCK:
        found = [(c, s) for c, s in _SILENCED.items() if s.owner() is owner]
        for connection, _silenced in found:
            del _SILENCED[connection]
    for connection, silenced in found:
        holder = _binding_holder(connection)
        if holder is not None and holder[0]() is silenced:
            holder[1](silenced.previous)


def stand_down(connection: Any) -> None:
    """Make the cursors *connection* opens from now on record nothing: it was made
    while its driver was instrumented, and the driver no longer is."""
    holder = _binding_holder(connection)
    if holder is None:
        return
    read, write = holder
    current = read()
    if isinstance(current, _Silenced):
        current.previous = _PASSTHROUGH
    else:
        write(_PASSTHROUGH)


def is_stood_down(binding: object) -> bool:
    """Whether *binding* is the one :func:`stand_down` gives (records nothing)."""
    return binding is _PASSTHROUGH
