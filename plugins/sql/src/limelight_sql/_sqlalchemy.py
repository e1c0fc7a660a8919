"""SQLAlchemy engines, sync and async, through SQLAlchemy's event system.

Three listeners on the engine: ``before_cursor_execute`` notes the start
(and starts the span), ``after_cursor_execute`` records ``ok``,
``handle_error`` records ``error``. They see every statement the engine
sends to the driver, Core and ORM alike; an ``AsyncEngine`` is instrumented
through its ``sync_engine``. One ``executemany`` is one statement; so is each
page of an "insertmanyvalues" INSERT (SQLAlchemy turns an ORM flush of many
new rows into multi-row INSERTs of ``insertmanyvalues_page_size`` rows, or
into one INSERT per row where the dialect cannot return their keys in
order).

A fourth listener, on the engine's pool ``connect`` event (ahead of the
dialect's own), hands each DB-API connection the engine opens over to the engine: a
connection instrumented at the driver too (``instrument("sqlite3")``,
``instrument_connection`` in a ``creator``) stops recording on its own, so
every statement is counted once, by the engine.

:func:`install` is the instrument contract's step for ``"sqlalchemy"``:
``Engine.__init__`` is wrapped so every engine made afterwards (an
``AsyncEngine``'s ``sync_engine`` included) is instrumented as
:func:`instrument_engine` would; :func:`remove` takes those listeners off.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry.util.types import AttributeValue

from limelight.surface import Patches

from ._instruments import (
    DIALECT_SYSTEMS,
    address_attributes,
    batch_size,
    binding_for,
    end_span,
    perf_counter,
    record_failure,
    report_failure,
    suppressed,
)
from ._native import silence, unsilence

__all__ = ["install", "instrument_engine", "remove", "uninstrument_engine"]

E = TypeVar("E")

_KEY = "_limelight_sql"
_EVENTS = ("before_cursor_execute", "after_cursor_execute", "handle_error")
_POOL_EVENTS = ("connect",)


class _Listeners:
    """What :func:`instrument_engine` registered on one engine (*auto*: through the
    instrument contract, :func:`install`, not an explicit call)."""

    __slots__ = ("auto", "connect", "statements")

    def __init__(
        self, statements: tuple[Callable[..., None], ...], connect: Callable[..., None], auto: bool
    ) -> None:
        self.statements = statements
        self.connect = connect
        self.auto = auto


_listeners: weakref.WeakKeyDictionary[Any, _Listeners] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _sync_engine(engine: Any) -> Any:
    from sqlalchemy.engine import Engine

    sync = getattr(engine, "sync_engine", engine)
    if not isinstance(sync, Engine):
        raise TypeError(
            f"expected a SQLAlchemy Engine or AsyncEngine, got {type(engine).__qualname__}"
        )
    return sync


def _system(engine: Any) -> str:
    dialect = engine.dialect
    if getattr(dialect, "is_mariadb", False):
        return "mariadb"
    name = str(dialect.name)
    return DIALECT_SYSTEMS.get(name, name or "other_sql")


def _attributes(engine: Any, db_system: str) -> dict[str, AttributeValue]:
    url = engine.url
    database = url.database if engine.dialect.name != "sqlite" else None  # sqlite: a file
    return address_attributes(db_system, url.host, url.port, database)


def instrument_engine(engine: E, *, db_system: str | None = None, spans: bool | None = None) -> E:
    """Measure every statement a SQLAlchemy ``Engine`` or ``AsyncEngine`` executes.

    Registers event listeners on the engine (nothing is patched) and returns
    the engine. Instrumenting again replaces the previous listeners.

    :param engine: a SQLAlchemy ``Engine`` or ``AsyncEngine``.
    :param db_system: the ``db_system`` label; by default from the dialect
        (``sqlite``, ``postgresql``, ``mysql``, ``mariadb``,
        ``microsoft.sql_server``, ``oracle.db``, or the dialect's name).
    :param spans: create a CLIENT span per statement; ``None`` follows
        ``LIMELIGHT_SQL_SPANS`` (off by default).
    :raises TypeError: *engine* is not a SQLAlchemy engine.
    """
    _instrument(_sync_engine(engine), db_system, spans, auto=False)
    return engine


def _instrument(sync: Any, db_system: str | None, spans: bool | None, *, auto: bool) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import ExecuteStyle

    executemany_style = ExecuteStyle.EXECUTEMANY
    system = db_system or _system(sync)
    binding = binding_for(system, spans, _attributes(sync, system))
    get = binding.get

    def before(
        conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if context is None:
            return
        bound = get()
        if bound.system is None or suppressed():
            return
        span = None
        if bound.tracer is not None:
            # a batch of insertmanyvalues is one statement of many rows, not a batch of statements
            many = executemany and getattr(context, "execute_style", None) is executemany_style
            span = bound.try_start_span(statement, batch_size(parameters) if many else None)
        setattr(context, _KEY, (bound, perf_counter(), span))

    def after(
        conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
    ) -> None:
        state = getattr(context, _KEY, None) if context is not None else None
        if state is None:
            return
        delattr(context, _KEY)
        bound, start, span = state
        try:
            bound.system.ok(cursor.description is not None, perf_counter() - start)
        except Exception as exc:
            report_failure("sqlalchemy statement", exc)
        if span is not None:
            end_span(span, None)

    def on_error(exception_context: Any) -> None:
        context = exception_context.execution_context
        state = getattr(context, _KEY, None) if context is not None else None
        if state is None:
            return
        delattr(context, _KEY)
        bound, start, span = state
        record_failure(bound.system, exception_context.statement, perf_counter() - start)
        if span is not None:
            end_span(span, exception_context.original_exception)

    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        try:
            silence(connection_record.driver_connection, sync)
        except Exception as exc:
            report_failure("sqlalchemy connect", exc)

    statements: tuple[Callable[..., None], ...] = (before, after, on_error)
    with _lock:
        replaced = _remove(sync)
        for name, fn in zip(_EVENTS, statements, strict=True):
            event.listen(sync, name, fn)
        connect = replaced.connect if replaced is not None else on_connect
        if replaced is None:  # ahead of the dialect's own connect listeners
            for name in _POOL_EVENTS:
                event.listen(sync, name, connect, insert=True)
        _listeners[sync] = _Listeners(statements, connect, auto)


def _remove(sync: Any, *, connect: bool = False) -> _Listeners | None:
    """Take the statement listeners off *sync* (and, with *connect*, the pool listener,
    giving the connections it silenced their own recording back)."""
    from sqlalchemy import event

    listeners = _listeners.pop(sync, None)
    if listeners is None:
        return None
    for name, fn in zip(_EVENTS, listeners.statements, strict=True):
        event.remove(sync, name, fn)
    if connect:
        for name in _POOL_EVENTS:
            try:
                event.remove(sync, name, listeners.connect)
            except Exception as exc:  # a pool SQLAlchemy recreated without it
                report_failure("sqlalchemy remove", exc)
        unsilence(sync)
    return listeners


def uninstrument_engine(engine: Any) -> None:
    """Remove the listeners :func:`instrument_engine` registered on *engine*."""
    sync = _sync_engine(engine)
    with _lock:
        _remove(sync, connect=True)


# -- every engine made while instrumented (the instrument contract) ------------------------


def _auto_instrument(engine: Any) -> None:
    """Instrument an engine just made, unless something did already; never raises."""
    try:
        if engine not in _listeners:
            _instrument(engine, None, None, auto=True)
    except Exception as exc:  # the engine works as it would without limelight
        report_failure("sqlalchemy instrument", exc)


def _wrapped_init(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _auto_instrument(self)

    return init


def install(patches: Patches) -> None:
    """Instrument every SQLAlchemy ``Engine`` made from now on (``create_engine``,
    ``create_async_engine``), wrapping ``Engine.__init__`` through *patches*.

    An engine is instrumented as :func:`instrument_engine` would, with its
    dialect's ``db_system`` and spans as ``LIMELIGHT_SQL_SPANS`` says; an
    explicit :func:`instrument_engine` afterwards replaces that. Engines made
    through ``execution_options`` share their parent's listeners.
    """
    from sqlalchemy.engine import Engine

    patches.wrap(Engine, "__init__", _wrapped_init(Engine.__init__))


def remove() -> None:
    """Take the listeners off the engines :func:`install` instrumented (engines since
    instrumented explicitly keep theirs)."""
    with _lock:
        for sync, listeners in list(_listeners.items()):
            if listeners.auto:
                _remove(sync, connect=True)
