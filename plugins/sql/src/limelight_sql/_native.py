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
)

__all__ = ["binding_of", "instrument_native", "is_native", "measured_cursor_class", "register"]

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
        if system is None:
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


def is_native(connection: object) -> bool:
    """Whether *connection* is a psycopg 3 or psycopg2 connection."""
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
    """Measure the cursors *connection* (psycopg 3 or psycopg2) opens from now on."""
    register(connection, binding)
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
