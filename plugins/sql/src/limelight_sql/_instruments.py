"""Instruments shared by every SQL surface: bound metric children per database system.

Built once per telemetry start (:class:`limelight.surface.TelemetryBinding`); the hot
path of a statement is two clock reads, one ``description`` check and two
bound calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sized
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from limelight import Telemetry
from limelight.semconv import (
    DB_NAMESPACE,
    DB_OPERATION_BATCH_SIZE,
    DB_OPERATION_NAME,
    DB_QUERY_SUMMARY,
    DB_QUERY_TEXT,
    DB_RESPONSE_STATUS_CODE,
    DB_SYSTEM_NAME,
    ERROR_TYPE,
    SERVER_ADDRESS,
    SERVER_PORT,
)
from limelight.surface import (
    SUPPRESS_INSTRUMENTATION_KEY,
    TelemetryBinding,
    current_context,
    error_type,
)
from limelight.surface import report_failure as _report_failure

from ._plugin import LIMELIGHT_SQL_SPANS, SQL_OP_DURATION, SQL_OPS
from ._text import MAX_TEXT, describe

__all__ = [
    "DIALECT_SYSTEMS",
    "DRIVER_SYSTEMS",
    "Bound",
    "System",
    "address_attributes",
    "ameasure",
    "batch_size",
    "binding_for",
    "error_attributes",
    "measure",
    "perf_counter",
    "record_failure",
    "report_failure",
    "server_attributes",
    "statement_text",
    "system_of_driver",
]

perf_counter = time.perf_counter


def report_failure(where: str, exc: BaseException) -> None:
    """Log, once per place, that recording failed; the statement itself is unaffected."""
    _report_failure("sql", where, exc)


class System:
    """The metric children of one database system for one telemetry start.

    ``active`` is false when telemetry is not running (or disabled) or the
    sql plugin is not loaded: instrumented connections then pass through.
    """

    __slots__ = (
        "_exec_err",
        "_exec_err_time",
        "_exec_ok",
        "_exec_ok_time",
        "_query_err",
        "_query_err_time",
        "_query_ok",
        "_query_ok_time",
        "active",
        "name",
        "spans",
        "tracer",
    )

    def __init__(self, name: str, telemetry: Telemetry) -> None:
        self.name = name
        store = telemetry.store
        self.active = telemetry.enabled and SQL_OPS.name in store and SQL_OP_DURATION.name in store
        self.spans = bool(self.active and telemetry.config.get(LIMELIGHT_SQL_SPANS))
        self.tracer: trace.Tracer = telemetry.tracer("limelight_sql")
        if not self.active:
            return
        ops = store.get(SQL_OPS.name)
        duration = store.get(SQL_OP_DURATION.name)
        self._query_ok = ops.labels(name, "query", "ok").inc
        self._query_ok_time = duration.labels(name, "query", "ok").observe
        self._query_err = ops.labels(name, "query", "error").inc
        self._query_err_time = duration.labels(name, "query", "error").observe
        self._exec_ok = ops.labels(name, "exec", "ok").inc
        self._exec_ok_time = duration.labels(name, "exec", "ok").observe
        self._exec_err = ops.labels(name, "exec", "error").inc
        self._exec_err_time = duration.labels(name, "exec", "error").observe

    def ok(self, rows: bool, elapsed: float) -> None:
        """Record a statement that completed; *rows*: it returned rows (``op=query``)."""
        if rows:
            self._query_ok()
            self._query_ok_time(elapsed)
        else:
            self._exec_ok()
            self._exec_ok_time(elapsed)

    def error(self, rows: bool, elapsed: float) -> None:
        """Record a statement that failed."""
        if rows:
            self._query_err()
            self._query_err_time(elapsed)
        else:
            self._exec_err()
            self._exec_err_time(elapsed)

    def failed(self, statement: object, elapsed: float) -> None:
        """Record a failed statement, guessing query/exec from its text."""
        text = statement_text(statement)
        self.error(describe(text, self.name).returns_rows if text is not None else False, elapsed)


_SYSTEMS: dict[str, TelemetryBinding[System]] = {}
_SYSTEMS_LOCK = threading.Lock()


def _system_binding(name: str) -> TelemetryBinding[System]:
    binding = _SYSTEMS.get(name)
    if binding is None:
        with _SYSTEMS_LOCK:
            binding = _SYSTEMS.get(name)
            if binding is None:
                binding = TelemetryBinding(lambda t: System(name, t))
                _SYSTEMS[name] = binding
    return binding


def statement_text(statement: object, context: object = None) -> str | None:
    """The text of a statement given as ``str``, ``bytes`` or a psycopg ``Composable``."""
    if isinstance(statement, str):
        return statement
    if isinstance(statement, bytes | bytearray | memoryview):
        return bytes(statement).decode("utf-8", "replace")
    as_string = getattr(statement, "as_string", None)
    if as_string is not None:
        try:
            return str(as_string(context))
        except Exception:
            return None
    return None


def error_attributes(exc: BaseException) -> dict[str, AttributeValue]:
    """``error.type`` and ``db.response.status_code`` of a failed statement.

    The status code is the SQLSTATE for PostgreSQL drivers (``sqlstate`` in
    psycopg, ``pgcode`` in psycopg2, ``sqlstate`` in asyncpg) and the result
    code for SQLite; ``error.type`` is that code, or the exception's fully
    qualified class name when there is none. The message is never recorded:
    servers echo values in it (a unique violation names the duplicated key).
    """
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
    source = original if isinstance(original, BaseException) else exc
    code: object = None
    for name in ("sqlstate", "pgcode", "sqlite_errorcode"):
        code = getattr(source, name, None)
        if code:
            break
    if not code:
        cause = source.__cause__
        code = getattr(cause, "sqlstate", None) if cause is not None else None
    attributes: dict[str, AttributeValue] = {}
    if code:
        attributes[DB_RESPONSE_STATUS_CODE] = str(code)
        attributes[ERROR_TYPE] = str(code)
    else:
        attributes[ERROR_TYPE] = error_type(source)
    return attributes


class Bound:
    """What one instrumented connection or engine uses for one telemetry start.

    :param system: the metric children, ``None`` when nothing is recorded.
    :param tracer: set when this connection creates spans.
    :param attributes: span attributes common to every statement.
    """

    __slots__ = ("_spans", "attributes", "system", "tracer")

    def __init__(
        self,
        system: System | None,
        tracer: trace.Tracer | None,
        attributes: Mapping[str, AttributeValue],
    ) -> None:
        self.system = system
        self.tracer = tracer
        self.attributes = dict(attributes)
        self._spans: dict[str, tuple[str, dict[str, AttributeValue]]] = {}

    def start_span(
        self, statement: object, batch: int | None = None, context: object = None
    ) -> trace.Span:
        """Start the CLIENT span of one statement (the tracer must be set).

        :param batch: the number of parameter sets of an ``executemany``.
        """
        system, tracer = self.system, self.tracer
        assert system is not None
        assert tracer is not None
        text = statement_text(statement, context)
        key = text if text is not None else ""
        cached = self._spans.get(key)
        if cached is None:
            attributes = dict(self.attributes)
            name = system.name
            if text is not None:
                described = describe(text, system.name)
                attributes[DB_QUERY_TEXT] = described.text
                if described.summary:
                    attributes[DB_QUERY_SUMMARY] = described.summary
                    name = described.summary
                if described.operation:
                    attributes[DB_OPERATION_NAME] = described.operation
            cached = (name, attributes)
            if len(self._spans) < 1024 and len(key) <= MAX_TEXT:
                self._spans[key] = cached
        name, attributes = cached
        if batch is not None and batch != 1:
            attributes = {**attributes, DB_OPERATION_BATCH_SIZE: batch}
            summary = attributes.get(DB_QUERY_SUMMARY)
            if summary:
                name = f"BATCH {summary}"
                attributes[DB_QUERY_SUMMARY] = name
            operation = attributes.get(DB_OPERATION_NAME)
            if operation:
                attributes[DB_OPERATION_NAME] = f"BATCH {operation}"
        return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    def try_start_span(
        self, statement: object, batch: int | None = None, context: object = None
    ) -> trace.Span | None:
        """:meth:`start_span`, or ``None`` (logged once) when making the span failed."""
        try:
            return self.start_span(statement, batch, context)
        except Exception as exc:
            report_failure("sql span", exc)
            return None

    @staticmethod
    def end_span(span: trace.Span, exc: BaseException | None) -> None:
        """End *span*, marking it failed when *exc* is set."""
        if exc is not None:
            span.set_attributes(error_attributes(exc))
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def record_failure(system: System, statement: object, elapsed: float) -> None:
    """:meth:`System.failed`, never raising."""
    try:
        system.failed(statement, elapsed)
    except Exception as exc:
        report_failure("sql failed statement", exc)


def end_span(span: trace.Span, exc: BaseException | None) -> None:
    """:meth:`Bound.end_span`, never raising."""
    try:
        Bound.end_span(span, exc)
    except Exception as failure:
        report_failure("sql span", failure)


_SUPPRESS = SUPPRESS_INSTRUMENTATION_KEY


def suppressed() -> bool:
    """Whether the current context asks instrumentation to record nothing."""
    return bool(current_context().get(_SUPPRESS))


def measure(
    bound: Bound,
    cursor: Any,
    method: Callable[..., Any],
    statement: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    batch: int | None,
) -> Any:
    """``method(statement, *args, **kwargs)``, counted, timed and (when asked for) traced.

    The measuring path of every DB-API cursor, the driver subclasses and the
    wrappers alike. *bound* is the cursor's binding's value; *cursor* is the
    driver's cursor: its ``description`` tells ``op`` afterwards, and it
    renders a psycopg ``Composable`` statement. The driver's result or
    exception is passed on unchanged. Nothing is recorded in a context that
    suppresses instrumentation (telemetry's own queries: an exporter's, the
    cdc slot monitor's).
    """
    system = bound.system
    if system is None or suppressed():
        return method(statement, *args, **kwargs)
    span = bound.try_start_span(statement, batch, cursor) if bound.tracer is not None else None
    start = perf_counter()
    try:
        result = method(statement, *args, **kwargs)
    except BaseException as exc:
        _failed(system, statement, perf_counter() - start, span, exc)
        raise
    _succeeded(system, cursor, perf_counter() - start, span)
    return result


async def ameasure(
    bound: Bound,
    cursor: Any,
    method: Callable[..., Any],
    statement: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    batch: int | None,
) -> Any:
    """:func:`measure` of a coroutine method (an async driver's ``execute``)."""
    system = bound.system
    if system is None or suppressed():
        return await method(statement, *args, **kwargs)
    span = bound.try_start_span(statement, batch, cursor) if bound.tracer is not None else None
    start = perf_counter()
    try:
        result = await method(statement, *args, **kwargs)
    except BaseException as exc:
        _failed(system, statement, perf_counter() - start, span, exc)
        raise
    _succeeded(system, cursor, perf_counter() - start, span)
    return result


def _failed(
    system: System, statement: Any, elapsed: float, span: trace.Span | None, exc: BaseException
) -> None:
    """A statement raised after *elapsed* seconds: counted, and its span ended with *exc*."""
    record_failure(system, statement, elapsed)
    if span is not None:
        end_span(span, exc)


def _succeeded(system: System, cursor: Any, elapsed: float, span: trace.Span | None) -> None:
    """A statement returned after *elapsed* seconds: counted by ``op``, its span ended."""
    try:
        system.ok(cursor.description is not None, elapsed)
    except Exception as exc:
        report_failure("sql statement", exc)
    if span is not None:
        end_span(span, None)


def batch_size(parameters: object) -> int | None:
    """The number of parameter sets of an ``executemany``, when they can be counted."""
    return len(parameters) if isinstance(parameters, Sized) else None


def binding_for(
    db_system: str, spans: bool | None, attributes: Mapping[str, AttributeValue]
) -> TelemetryBinding[Bound]:
    """A binding for one connection or engine of *db_system*.

    :param spans: ``None`` follows ``LIMELIGHT_SQL_SPANS``; true or false wins over it.
    :param attributes: span attributes (server address, database name).
    """
    if not isinstance(db_system, str) or not db_system.strip():
        raise ValueError(f"db_system must be a non-empty string, got {db_system!r}")
    shared = _system_binding(db_system)
    attrs = {DB_SYSTEM_NAME: db_system, **attributes}

    def build(telemetry: Telemetry) -> Bound:
        try:
            system = shared.get()
        except Exception as exc:  # never let instrumentation break the connection
            report_failure("sql binding", exc)
            return Bound(None, None, attrs)
        if not system.active:
            return Bound(None, None, attrs)
        want_spans = system.spans if spans is None else spans
        return Bound(system, system.tracer if want_spans else None, attrs)

    return TelemetryBinding(build)


DRIVER_SYSTEMS: dict[str, str] = {
    "sqlite3": "sqlite",
    "pysqlite2": "sqlite",
    "aiosqlite": "sqlite",
    "psycopg": "postgresql",
    "psycopg2": "postgresql",
    "psycopg2cffi": "postgresql",
    "pg8000": "postgresql",
    "asyncpg": "postgresql",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "mysql": "mysql",
    "aiomysql": "mysql",
    "mariadb": "mariadb",
    "oracledb": "oracle.db",
    "cx_Oracle": "oracle.db",
    "pymssql": "microsoft.sql_server",
    "duckdb": "duckdb",
    "clickhouse_driver": "clickhouse",
    "trino": "trino",
}
"""``db.system.name`` (and the ``db_system`` label) by the top-level module of a driver."""

DIALECT_SYSTEMS: dict[str, str] = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mariadb",
    "mssql": "microsoft.sql_server",
    "oracle": "oracle.db",
}
"""``db.system.name`` by SQLAlchemy dialect name."""


def system_of_driver(connection: object) -> str:
    """The ``db.system.name`` of a DB-API connection, from its driver's module."""
    known = getattr(type(connection), "_limelight_db_system", None)
    if isinstance(known, str):  # a connection class of limelight's own (measured sqlite3)
        return known
    module = type(connection).__module__.split(".", 1)[0]
    return DRIVER_SYSTEMS.get(module, "other_sql")


_DEFAULT_PORTS: dict[str, int] = {
    "postgresql": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "microsoft.sql_server": 1433,
    "oracle.db": 1521,
}
"""The port of each database system that ``server.port`` leaves out."""


def address_attributes(
    db_system: str, host: object, port: object, database: object
) -> dict[str, AttributeValue]:
    """``server.address``, ``server.port`` (unless the system's default) and ``db.namespace``."""
    attributes: dict[str, AttributeValue] = {}
    if host:
        attributes[SERVER_ADDRESS] = str(host)
        digits = str(port) if port else ""
        if digits.isdigit() and int(digits) != _DEFAULT_PORTS.get(db_system):
            attributes[SERVER_PORT] = int(digits)
    if database:
        attributes[DB_NAMESPACE] = str(database)
    return attributes


def server_attributes(connection: object, db_system: str) -> dict[str, AttributeValue]:
    """:func:`address_attributes` of a DB-API connection, when the driver tells them.

    psycopg and psycopg2 expose them as ``connection.info``; the values are
    the ones given at connect time, read once.
    """
    info: Any = getattr(connection, "info", None)
    if info is None:
        return {}
    try:
        host = getattr(info, "host", None)
        port = getattr(info, "port", None)
        dbname = getattr(info, "dbname", None)
    except Exception:
        return {}
    return address_attributes(db_system, host, port, dbname)
