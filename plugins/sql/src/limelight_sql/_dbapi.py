"""DB-API 2 connections and cursors (sqlite3, psycopg 3, psycopg2, and other drivers).

:func:`instrument_connection` instruments psycopg 3 and psycopg2 connections
in place, through their cursor factories (see ``_native``). Any other
driver's connection gets a thin wrapper. Its cursors time ``execute``,
``executemany``, ``executescript`` and ``callproc`` where the driver's cursor
has them; every other attribute, read or written, is the driver's own, so
the wrapper is a drop-in. ``op`` is ``query`` when the statement returned
rows (the cursor's ``description`` is set afterwards) and ``exec`` otherwise.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterator
from typing import Any, Self, TypeVar, cast

from limelight.surface import TelemetryBinding

from ._instruments import (
    Bound,
    ameasure,
    batch_size,
    binding_for,
    measure,
    perf_counter,
    record_failure,
    report_failure,
    server_attributes,
    suppressed,
    system_of_driver,
)
from ._native import binding_of, instrument_native, is_native, is_stood_down

__all__ = [
    "AsyncConnection",
    "AsyncCursor",
    "Connection",
    "Cursor",
    "CursorResult",
    "instrument_connection",
]

C = TypeVar("C")

_OWN = frozenset({"__wrapped__", "_limelight", "_connection"})


def instrument_connection(
    connection: C, *, db_system: str | None = None, spans: bool | None = None
) -> C:
    """Measure every statement of a DB-API 2 connection.

    psycopg 3 (sync and async) and psycopg2 connections are instrumented in
    place and returned: the connection's cursor factories are replaced by
    measuring subclasses, so it stays the driver's own object (set
    ``cursor_factory`` before, not after). Any other driver's connection is
    wrapped: use the returned object in place of *connection*; it behaves
    like the driver's connection (attributes, ``with`` blocks, cursors,
    ``commit``), and the driver's own object is ``wrapper.__wrapped__`` (for
    APIs that insist on it, such as ``sqlite3.Connection.backup``).

    Instrumenting an instrumented connection (or wrapper) again returns it;
    a *db_system* or *spans* given then applies to the cursors it opens from
    then on.

    :param connection: an open DB-API 2 connection.
    :param db_system: the ``db_system`` label and ``db.system.name``; by
        default derived from the driver (``sqlite``, ``postgresql``, ...;
        ``other_sql`` for a driver limelight does not know).
    :param spans: create a CLIENT span per statement; ``None`` follows
        ``LIMELIGHT_SQL_SPANS`` (off by default).
    :raises ValueError: *db_system* is empty.
    """
    wrapper = connection if isinstance(connection, Connection | AsyncConnection) else None
    native = wrapper is None and is_native(connection)
    if wrapper is not None:
        current: Any = object.__getattribute__(wrapper, "_limelight")
    else:
        current = binding_of(connection) if native else None
    # a connection made while a driver was instrumented, since uninstrumented, is not
    instrumented = current is not None and not is_stood_down(current)
    if instrumented and db_system is None and spans is None:
        return connection
    raw: Any = wrapper.__wrapped__ if wrapper is not None else connection
    system = db_system if db_system is not None else system_of_driver(raw)
    binding = binding_for(system, spans, server_attributes(raw, system))
    if wrapper is not None:
        object.__setattr__(wrapper, "_limelight", binding)
        return connection
    if native:
        instrument_native(connection, binding)
        return connection
    if inspect.iscoroutinefunction(getattr(type(connection), "commit", None)):
        return cast(C, _async_connection_class(type(connection))(connection, binding))
    return cast(C, _connection_class(type(connection))(connection, binding))


class _Proxy:
    """Attribute access falls through to the wrapped driver object."""

    __slots__ = ("__weakref__", "__wrapped__", "_limelight")

    __wrapped__: Any
    _limelight: TelemetryBinding[Bound]

    def __init__(self, wrapped: Any, binding: TelemetryBinding[Bound]) -> None:
        object.__setattr__(self, "__wrapped__", wrapped)
        object.__setattr__(self, "_limelight", binding)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.__wrapped__, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self.__wrapped__, name)

    def __repr__(self) -> str:
        return f"<limelight_sql.{type(self).__name__} {self.__wrapped__!r}>"

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.__wrapped__)) | set(object.__dir__(self)))


class _CursorProxy(_Proxy):
    """A cursor wrapper that knows the connection wrapper it came from."""

    __slots__ = ("_connection",)

    def __init__(self, cursor: Any, binding: TelemetryBinding[Bound], connection: _Proxy) -> None:
        super().__init__(cursor, binding)
        object.__setattr__(self, "_connection", connection)

    @property
    def connection(self) -> Any:
        """The (wrapped) connection this cursor belongs to."""
        return self._connection


# -- sync ---------------------------------------------------------------------------------


class Cursor(_CursorProxy):
    """A DB-API 2 cursor whose statements are measured; everything else is the driver's.

    ``executemany``, ``executescript`` and ``callproc`` are there (measured)
    when the driver's cursor has them.
    """

    __slots__ = ()

    def _run(
        self, method: Callable[..., Any], statement: Any, args: Any, kwargs: Any, batch: Any
    ) -> Any:
        raw = self.__wrapped__
        result = measure(self._limelight.get(), raw, method, statement, args, kwargs, batch)
        return self if result is raw else result

    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``execute``, measured."""
        raw = self.__wrapped__
        bound = self._limelight.get()
        system = bound.system
        if system is None or suppressed():
            result = raw.execute(operation, *args, **kwargs)
        elif bound.tracer is not None:
            result = measure(bound, raw, raw.execute, operation, args, kwargs, None)
        else:  # metrics only: measure()'s steps inline, sparing a call on the commonest path
            start = perf_counter()
            try:
                result = raw.execute(operation, *args, **kwargs)
            except BaseException:
                record_failure(system, operation, perf_counter() - start)
                raise
            elapsed = perf_counter() - start
            try:
                system.ok(raw.description is not None, elapsed)
            except Exception as exc:
                report_failure("sql statement", exc)
        return self if result is raw else result

    def fetchone(self) -> Any:
        """The driver's ``fetchone``."""
        return self.__wrapped__.fetchone()

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``fetchmany``."""
        return self.__wrapped__.fetchmany(*args, **kwargs)

    def fetchall(self) -> Any:
        """The driver's ``fetchall``."""
        return self.__wrapped__.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.__wrapped__)

    def __next__(self) -> Any:
        return next(self.__wrapped__)

    def __enter__(self) -> Cursor:
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        exit_ = getattr(self.__wrapped__, "__exit__", None)
        if exit_ is not None:
            return exit_(*exc_info)
        self.__wrapped__.close()
        return None


class _CursorExecuteMany(Cursor):
    __slots__ = ()

    def executemany(self, operation: Any, seq_of_parameters: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``executemany``, measured as one operation."""
        return self._run(
            self.__wrapped__.executemany,
            operation,
            (seq_of_parameters, *args),
            kwargs,
            batch_size(seq_of_parameters),
        )


class _CursorExecuteScript(Cursor):
    __slots__ = ()

    def executescript(self, script: Any) -> Any:
        """sqlite3's ``executescript``, measured as one operation."""
        return self._run(self.__wrapped__.executescript, script, (), {}, None)


class _CursorCallProc(Cursor):
    __slots__ = ()

    def callproc(self, procname: str, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``callproc``, measured."""
        return self._run(self.__wrapped__.callproc, procname, args, kwargs, None)


class Connection(_Proxy):
    """A DB-API 2 connection whose cursors measure every statement.

    The shortcuts ``execute``, ``executemany`` and ``executescript`` (through
    a measuring cursor) are there when the driver's connection has them.
    """

    __slots__ = ()

    def cursor(self, *args: Any, **kwargs: Any) -> Cursor:
        """A measuring cursor over the driver's ``cursor(...)``."""
        raw = self.__wrapped__.cursor(*args, **kwargs)
        cls = _CURSORS.get(type(raw)) or _cursor_class(type(raw))
        return cls(raw, self._limelight, self)

    def __enter__(self) -> Connection:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)


class _ConnectionExecute(Connection):
    __slots__ = ()

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """``execute`` on a new cursor (sqlite3's shortcut)."""
        return self.cursor().execute(*args, **kwargs)


class _ConnectionExecuteMany(Connection):
    __slots__ = ()

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        """``executemany`` on a new cursor (sqlite3's shortcut)."""
        return self.cursor().executemany(*args, **kwargs)


class _ConnectionExecuteScript(Connection):
    __slots__ = ()

    def executescript(self, script: Any) -> Any:
        """``executescript`` on a new cursor (sqlite3's shortcut)."""
        return self.cursor().executescript(script)


# -- async --------------------------------------------------------------------------------


class _AsyncWith:
    """``async with`` on an async wrapper enters the driver's object and yields the wrapper."""

    __slots__ = ()

    __wrapped__: Any

    async def __aenter__(self) -> Self:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)


class AsyncCursor(_AsyncWith, _CursorProxy):
    """An async cursor whose statements are measured (``executemany`` when the driver has it)."""

    __slots__ = ()

    async def _run(
        self, method: Callable[..., Any], statement: Any, args: Any, kwargs: Any, batch: Any
    ) -> Any:
        raw = self.__wrapped__
        result = await ameasure(self._limelight.get(), raw, method, statement, args, kwargs, batch)
        return self if result is raw else result

    async def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``execute``, measured."""
        return await self._run(self.__wrapped__.execute, operation, args, kwargs, None)

    def __aiter__(self) -> AsyncIterator[Any]:
        return cast(AsyncIterator[Any], self.__wrapped__.__aiter__())


class _AsyncCursorExecuteMany(AsyncCursor):
    __slots__ = ()

    async def executemany(
        self, operation: Any, seq_of_parameters: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """The driver's ``executemany``, measured as one operation."""
        return await self._run(
            self.__wrapped__.executemany,
            operation,
            (seq_of_parameters, *args),
            kwargs,
            batch_size(seq_of_parameters),
        )


async def _close(cursor: AsyncCursor) -> None:
    closed = cursor.close()
    if inspect.isawaitable(closed):
        await closed


class CursorResult:
    """A measuring cursor still being opened: what an async connection's ``cursor()``
    returns when the driver's is awaitable (aiosqlite, aiomysql), and what its
    ``execute()``/``executemany()`` shortcuts return.

    ``await``-ed, it is the cursor; ``async with`` opens it and closes it on
    exit, as the drivers' own results do.
    """

    __slots__ = ("_coro", "_cursor")

    def __init__(self, coro: Coroutine[Any, Any, AsyncCursor]) -> None:
        self._coro = coro
        self._cursor: AsyncCursor | None = None

    def __await__(self) -> Generator[Any, None, AsyncCursor]:
        return self._coro.__await__()

    async def __aenter__(self) -> AsyncCursor:
        self._cursor = await self._coro
        return self._cursor

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._cursor is not None:
            await _close(self._cursor)


class AsyncConnection(_AsyncWith, _Proxy):
    """An async connection whose cursors measure every statement (``execute`` and
    ``executemany`` when it has them)."""

    __slots__ = ()

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """A measuring cursor over the driver's ``cursor(...)``: an :class:`AsyncCursor`,
        or a :class:`CursorResult` to await when the driver's ``cursor()`` is awaitable."""
        raw = self.__wrapped__.cursor(*args, **kwargs)
        if inspect.isawaitable(raw):
            return CursorResult(self._opened(raw))
        return self._measuring(raw)

    def _measuring(self, raw: Any) -> AsyncCursor:
        cls = _ASYNC_CURSORS.get(type(raw)) or _async_cursor_class(type(raw))
        return cls(raw, self._limelight, self)

    async def _opened(self, pending: Awaitable[Any]) -> AsyncCursor:
        return self._measuring(await pending)

    async def _on_new_cursor(self, method: str, args: Any, kwargs: Any) -> AsyncCursor:
        """``method`` on a new cursor, which is returned (closed if the statement fails)."""
        cursor = self.cursor()
        if isinstance(cursor, CursorResult):
            cursor = await cursor
        try:
            await getattr(cursor, method)(*args, **kwargs)
        except BaseException:
            await _close(cursor)
            raise
        return cast(AsyncCursor, cursor)


class _AsyncConnectionExecute(AsyncConnection):
    __slots__ = ()

    def execute(self, *args: Any, **kwargs: Any) -> CursorResult:
        """``execute`` on a new cursor: ``await`` it for the cursor, or ``async with`` it."""
        return CursorResult(self._on_new_cursor("execute", args, kwargs))


class _AsyncConnectionExecuteMany(AsyncConnection):
    __slots__ = ()

    def executemany(self, *args: Any, **kwargs: Any) -> CursorResult:
        """``executemany`` on a new cursor, as :meth:`execute`."""
        return CursorResult(self._on_new_cursor("executemany", args, kwargs))


# -- one wrapper class per set of driver methods ------------------------------------------

P = TypeVar("P", bound=_Proxy)
_CLASSES_LOCK = threading.Lock()


def _wrapper_class(
    made: dict[type, type[P]],
    base: type[P],
    optional: tuple[tuple[str, type[P]], ...],
    driver: type,
) -> type[P]:
    """*base* with the optional methods whose names the *driver*'s class has (made once).

    *made* holds the classes made so far by driver class, for the caller to
    look up first: a cursor is made per statement by ``conn.execute(...)``.
    """
    cls = made.get(driver)
    if cls is None:
        with _CLASSES_LOCK:
            cls = made.get(driver)
            if cls is None:
                parts = tuple(part for name, part in optional if hasattr(driver, name))
                cls = cast(type[P], type(base.__name__, parts or (base,), {"__slots__": ()}))
                made[driver] = cls
    return cls


_CURSOR_METHODS: tuple[tuple[str, type[Cursor]], ...] = (
    ("executemany", _CursorExecuteMany),
    ("executescript", _CursorExecuteScript),
    ("callproc", _CursorCallProc),
)
_CONNECTION_METHODS: tuple[tuple[str, type[Connection]], ...] = (
    ("execute", _ConnectionExecute),
    ("executemany", _ConnectionExecuteMany),
    ("executescript", _ConnectionExecuteScript),
)


_CURSORS: dict[type, type[Cursor]] = {}
_CONNECTIONS: dict[type, type[Connection]] = {}
_ASYNC_CURSORS: dict[type, type[AsyncCursor]] = {}
_ASYNC_CONNECTIONS: dict[type, type[AsyncConnection]] = {}


def _cursor_class(driver: type) -> type[Cursor]:
    return _wrapper_class(_CURSORS, Cursor, _CURSOR_METHODS, driver)


def _connection_class(driver: type) -> type[Connection]:
    return _wrapper_class(_CONNECTIONS, Connection, _CONNECTION_METHODS, driver)


def _async_cursor_class(driver: type) -> type[AsyncCursor]:
    optional = (("executemany", _AsyncCursorExecuteMany),)
    return _wrapper_class(_ASYNC_CURSORS, AsyncCursor, optional, driver)


def _async_connection_class(driver: type) -> type[AsyncConnection]:
    optional = (
        ("execute", _AsyncConnectionExecute),
        ("executemany", _AsyncConnectionExecuteMany),
    )
    return _wrapper_class(_ASYNC_CONNECTIONS, AsyncConnection, optional, driver)
