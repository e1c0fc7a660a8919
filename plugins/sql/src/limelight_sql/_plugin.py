"""The sql plugin: declares the SQL metrics and the variables it reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight.surface import LIMELIGHT_AUTO_INSTRUMENT
from limelight_hookspecs import (
    Config,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    TelemetryView,
    hookimpl,
    parse_bool,
)

__all__ = [
    "LIMELIGHT_SQL_SPANS",
    "SQL_BUCKETS",
    "SQL_OPS",
    "SQL_OP_DURATION",
    "SqlPlugin",
    "plugin",
]

SQL_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Bucket bounds of ``sql_op_duration_seconds`` (seconds).

A lookup by primary key takes microseconds in SQLite and well under a
millisecond in a nearby PostgreSQL, so the buckets start at 100 µs (the
Prometheus defaults start at 5 ms) and still reach 10 s for slow reports.
"""

SQL_OPS = MetricDeclaration(
    "sql_ops_total",
    MetricKind.COUNTER,
    "SQL statements executed, by database system, op (query: returns rows; exec: anything "
    "else) and result (ok, error).",
    unit="1",
    label_names=("db_system", "op", "result"),
)
SQL_OP_DURATION = MetricDeclaration(
    "sql_op_duration_seconds",
    MetricKind.HISTOGRAM,
    "Duration of SQL statements in seconds, by database system, op and result.",
    unit="s",
    label_names=("db_system", "op", "result"),
    buckets=SQL_BUCKETS,
)

LIMELIGHT_SQL_SPANS = EnvVar(
    "LIMELIGHT_SQL_SPANS",
    False,
    parse_bool,
    "Create a CLIENT span for every SQL statement (db.system.name, db.operation.name, "
    "db.query.summary, db.query.text with literals replaced by ?; never parameter values). "
    "Off by default. A "
    "connection or engine instrumented with spans=True or spans=False ignores this variable.",
    "true",
)


class SqlPlugin:
    """Declares ``sql_ops_total`` and ``sql_op_duration_seconds``.

    Instrumented connections (:func:`~limelight_sql.instrument_connection`)
    and engines (:func:`~limelight_sql.instrument_engine`) record into these
    metrics while this plugin is loaded; without it they pass every call
    straight through.
    """

    limelight_name = "sql"
    limelight_priority = 230

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return (SQL_OPS, SQL_OP_DURATION)

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (LIMELIGHT_SQL_SPANS,)

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        # limelight run (LIMELIGHT_AUTO_INSTRUMENT): each driver and SQLAlchemy when the application
        # imports it, never imported for nothing
        if telemetry.config.get(LIMELIGHT_AUTO_INSTRUMENT):
            from ._instrumentation import instrumentation

            instrumentation.instrument_on_import()


plugin = SqlPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
