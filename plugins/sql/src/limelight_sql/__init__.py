"""limelight-sql: rate, errors and latency of SQL statements.

Metrics by default (``sql_ops_total``, ``sql_op_duration_seconds`` by
db_system, op=query/exec and result=ok/error), CLIENT spans on request::

    import sqlite3
    from limelight_sql import instrument_connection, instrument_engine

    conn = instrument_connection(sqlite3.connect("app.db"))
    pg = instrument_connection(psycopg.connect(dsn))  # the same psycopg connection
    engine = instrument_engine(sqlalchemy.create_engine(url))

``Psycopg2Connection`` (imported on first use; it needs psycopg2) is a
``connection_factory`` for psycopg2 that measures every cursor.

Or every connection and engine made from then on, through the instrument
contract every limelight surface follows::

    import limelight_sql

    limelight_sql.instrument()     # sqlite3, aiosqlite, psycopg, psycopg2, SQLAlchemy
    limelight_sql.uninstrument()   # the libraries exactly as they were

See ``docs/plugins/sql.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._dbapi import (
    AsyncConnection,
    AsyncCursor,
    Connection,
    Cursor,
    CursorResult,
    instrument_connection,
)
from ._instrumentation import instrument, is_instrumented, uninstrument
from ._instruments import DIALECT_SYSTEMS, DRIVER_SYSTEMS
from ._plugin import LIMELIGHT_SQL_SPANS, SQL_BUCKETS, SQL_OP_DURATION, SQL_OPS, SqlPlugin, plugin
from ._sqlalchemy import instrument_engine, uninstrument_engine
from ._text import Described, describe

if _TYPE_CHECKING:
    from ._psycopg2 import Psycopg2Connection

__all__ = [
    "DIALECT_SYSTEMS",
    "DRIVER_SYSTEMS",
    "LIMELIGHT_SQL_SPANS",
    "SQL_BUCKETS",
    "SQL_OPS",
    "SQL_OP_DURATION",
    "AsyncConnection",
    "AsyncCursor",
    "Connection",
    "Cursor",
    "CursorResult",
    "Described",
    "Psycopg2Connection",
    "SqlPlugin",
    "describe",
    "instrument",
    "instrument_connection",
    "instrument_engine",
    "is_instrumented",
    "plugin",
    "uninstrument",
    "uninstrument_engine",
]


def __getattr__(name: str) -> _Any:
    if name == "Psycopg2Connection":  # imports psycopg2, an optional dependency
        from ._psycopg2 import Psycopg2Connection

        return Psycopg2Connection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "Psycopg2Connection"])
