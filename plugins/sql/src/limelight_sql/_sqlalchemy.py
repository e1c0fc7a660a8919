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
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, TypeVar

from opentelemetry.util.types import AttributeValue

from ._instruments import (
    DIALECT_SYSTEMS,
    address_attributes,
    batch_size,
    binding_for,
    end_span,
    perf_counter,
    record_failure,
    report_failure,
)

__all__ = ["instrument_engine", "uninstrument_engine"]

E = TypeVar("E")

_KEY = "_limelight_sql"
_listeners: weakref.WeakKeyDictionary[Any, tuple[Any, Any, Any]] = weakref.WeakKeyDictionary()
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
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import ExecuteStyle

    executemany_style = ExecuteStyle.EXECUTEMANY
    sync = _sync_engine(engine)
    system = db_system or _system(sync)
    binding = binding_for(system, spans, _attributes(sync, system))
    get = binding.get

    def before(
        conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if context is None:
            return
        bound = get()
        if bound.system is None:
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

    with _lock:
        _remove(sync)
        event.listen(sync, "before_cursor_execute", before)
        event.listen(sync, "after_cursor_execute", after)
        event.listen(sync, "handle_error", on_error)
        _listeners[sync] = (before, after, on_error)
    return engine


def _remove(sync: Any) -> None:
    from sqlalchemy import event

    listeners = _listeners.pop(sync, None)
    if listeners is None:
        return
    before, after, on_error = listeners
    event.remove(sync, "before_cursor_execute", before)
    event.remove(sync, "after_cursor_execute", after)
    event.remove(sync, "handle_error", on_error)


def uninstrument_engine(engine: Any) -> None:
    """Remove the listeners :func:`instrument_engine` registered on *engine*."""
    sync = _sync_engine(engine)
    with _lock:
        _remove(sync)
