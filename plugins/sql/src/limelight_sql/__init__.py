"""limelight-sql: rate, errors and latency of SQL statements.

Metrics by default (``sql_ops_total``, ``sql_op_duration_seconds`` by
db_system, op=query/exec and result=ok/error), CLIENT spans on request::

    import sqlite3
    from limelight_sql import instrument_connection, instrument_engine

    conn = instrument_connection(sqlite3.connect("app.db"))
    engine = instrument_engine(sqlalchemy.create_engine(url))

See ``docs/plugins/sql.md``.
"""

from __future__ import annotations

from ._dbapi import AsyncConnection, AsyncCursor, Connection, Cursor, instrument_connection
from ._instruments import DIALECT_SYSTEMS, DRIVER_SYSTEMS
from ._plugin import LIMELIGHT_SQL_SPANS, SQL_BUCKETS, SQL_OP_DURATION, SQL_OPS, SqlPlugin, plugin
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
    "Described",
    "SqlPlugin",
    "describe",
    "instrument_connection",
    "instrument_engine",
    "plugin",
    "uninstrument_engine",
]
