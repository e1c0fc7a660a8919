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

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
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
    from ._plugin import (
        LIMELIGHT_SQL_SPANS,
        SQL_BUCKETS,
        SQL_OP_DURATION,
        SQL_OPS,
        SqlPlugin,
        plugin,
    )
    from ._psycopg2 import Psycopg2Connection
    from ._sqlalchemy import instrument_engine, uninstrument_engine
    from ._text import Described, describe

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


# Psycopg2Connection imports psycopg2, an optional dependency, when first asked for
__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._dbapi": (
            "AsyncConnection",
            "AsyncCursor",
            "Connection",
            "Cursor",
            "CursorResult",
            "instrument_connection",
        ),
        "._instrumentation": ("instrument", "is_instrumented", "uninstrument"),
        "._instruments": ("DIALECT_SYSTEMS", "DRIVER_SYSTEMS"),
        "._plugin": (
            "LIMELIGHT_SQL_SPANS",
            "SQL_BUCKETS",
            "SQL_OP_DURATION",
            "SQL_OPS",
            "SqlPlugin",
            "plugin",
        ),
        "._psycopg2": ("Psycopg2Connection",),
        "._sqlalchemy": ("instrument_engine", "uninstrument_engine"),
        "._text": ("Described", "describe"),
    },
)
