"""Added CPU per SQL statement: limelight-sql versus opentelemetry-instrumentation-sqlite3.

One run, one process, SQLite in memory. Each variant has its own connection to
its own in-memory database holding the same table; rounds are interleaved so
machine noise hits every variant alike. The figure is CPU time per statement
(``time.process_time``), minus the bare connection's, as the median of the
rounds. The lookup by primary key is ``execute`` + ``fetchone``.

    nox -s "bench(sql)"
"""

from __future__ import annotations

import os
import sqlite3
import statistics
from collections.abc import Callable
from typing import Any

from _common import comparison, cpu_per_op, otel_provider, start_limelight
from limelight_sql import instrument_connection, instrument_engine
from limelight_sql import plugin as sql_plugin
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import StaticPool

OPS = int(os.environ.get("BENCH_OPS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "21"))
ROWS = 1000
TARGET_US = 5.0


def _database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    conn.executemany(
        "INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(ROWS)]
    )
    conn.commit()
    return conn


NOOP = "SQLAlchemy with two no-op event listeners"


def _noop(*args: Any) -> None:
    return None


def main() -> int:
    telemetry = start_limelight(sql_plugin, "bench-sql")
    provider = otel_provider()

    connections: dict[str, Any] = {
        "bare sqlite3": _database(),
        "limelight-sql (metrics)": instrument_connection(_database(), spans=False),
        "limelight-sql (metrics + span)": instrument_connection(_database(), spans=True),
        "opentelemetry-instrumentation-sqlite3 (span)": SQLite3Instrumentor.instrument_connection(
            _database(), tracer_provider=provider
        ),
    }
    cursors = {name: conn.cursor() for name, conn in connections.items()}
    select = "SELECT name, price FROM items WHERE id = ?"
    update = "UPDATE items SET price = ? WHERE id = ?"
    ops: dict[str, Callable[[Any, int], Any]] = {
        "SELECT by primary key": lambda c, i: c.execute(select, (i % ROWS,)).fetchone(),
        "UPDATE by primary key": lambda c, i: c.execute(update, (i * 0.5, i % ROWS)),
    }

    def engine(instrumented: str) -> Any:
        eng = create_engine("sqlite://", poolclass=StaticPool, creator=_database)
        if instrumented == "noop":
            event.listen(eng, "before_cursor_execute", _noop)
            event.listen(eng, "after_cursor_execute", _noop)
        elif instrumented == "limelight":
            instrument_engine(eng, spans=False)
        elif instrumented == "otel":
            SQLAlchemyInstrumentor().instrument(engine=eng, tracer_provider=provider)
        return eng

    engines = {
        "bare SQLAlchemy": engine(""),
        NOOP: engine("noop"),
        "limelight-sql engine (metrics)": engine("limelight"),
        "opentelemetry-instrumentation-sqlalchemy (span)": engine("otel"),
    }
    engine_conns = {name: eng.connect() for name, eng in engines.items()}
    query = text("SELECT name, price FROM items WHERE id = :id")

    try:
        for cursor in cursors.values():
            for op in ops.values():
                for i in range(500):
                    op(cursor, i)
        for conn in engine_conns.values():
            for i in range(500):
                conn.execute(query, {"id": i % ROWS}).fetchone()
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(ROUNDS):
            for op_name, op in ops.items():
                for name, cursor in cursors.items():
                    cost = cpu_per_op(lambda i, c=cursor, o=op: o(c, i), OPS)
                    results.setdefault((op_name, name), []).append(cost)
            for name, conn in engine_conns.items():
                cost = cpu_per_op(
                    lambda i, c=conn: c.execute(query, {"id": i % ROWS}).fetchone(), OPS // 5
                )
                results.setdefault(("SQLAlchemy SELECT by primary key", name), []).append(cost)
    finally:
        for conn in engine_conns.values():
            conn.close()
        telemetry.stop()
        provider.shutdown()

    print(f"SQLite in memory, {OPS} statements x {ROUNDS} rounds, CPU µs per statement (median)")
    print(f"{'statement':33} {'variant':48} {'CPU µs/op':>10} {'added µs':>9}")
    groups = [
        (
            op_name,
            list(cursors),
            "bare sqlite3",
            "limelight-sql (metrics)",
            "opentelemetry-instrumentation-sqlite3 (span)",
        )
        for op_name in ops
    ]
    groups.append(
        (
            "SQLAlchemy SELECT by primary key",
            list(engine_conns),
            "bare SQLAlchemy",
            "limelight-sql engine (metrics)",
            "opentelemetry-instrumentation-sqlalchemy (span)",
        )
    )
    for op_name, names, bare, ours_name, theirs_name in groups:
        base = statistics.median(results[(op_name, bare)])
        for name in names:
            cost = statistics.median(results[(op_name, name)])
            extra = "" if name == bare else f"{cost - base:+9.2f}"
            print(f"{op_name:33} {name:48} {cost:10.2f} {extra:>9}")
        ours = statistics.median(results[(op_name, ours_name)]) - base
        theirs = statistics.median(results[(op_name, theirs_name)]) - base
        target = TARGET_US if bare == "bare sqlite3" else None
        print(f"{'':33} {comparison(ours, theirs, target)}")
        if NOOP in names:
            dispatch = statistics.median(results[(op_name, NOOP)]) - base
            print(f"{'':33} of which SQLAlchemy's event dispatch alone costs {dispatch:.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
