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
import time
from collections.abc import Callable, Sequence
from typing import Any

from limelight_sql import instrument_connection, instrument_engine
from limelight_sql import plugin as sql_plugin
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import StaticPool

import limelight
from limelight_hookspecs import TelemetryView, hookimpl

OPS = int(os.environ.get("BENCH_OPS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "21"))
ROWS = 1000
TARGET_US = 5.0
# both span pipelines get a queue large enough that no span is dropped (dropping is cheaper)
BSP_QUEUE = 1 << 17
BSP = {"OTEL_BSP_MAX_QUEUE_SIZE": str(BSP_QUEUE), "OTEL_BSP_SCHEDULE_DELAY": "200"}


class NullExporter(SpanExporter):
    """Accepts spans and drops them: the cost measured is making them, not shipping them."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class NullExporterPlugin:
    limelight_name = "bench.null_exporter"
    limelight_priority = 190

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        return (NullExporter(),)


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


def _cpu_per_op(op: Callable[[int], Any], n: int) -> float:
    start = time.process_time()
    for i in range(n):
        op(i)
    return (time.process_time() - start) / n * 1e6


def main() -> int:
    telemetry = limelight.Telemetry(
        plugins=[sql_plugin, NullExporterPlugin()],
        entry_points=False,
        install_globals=False,
        handle_signals=False,
        environ=dict(BSP),
        service_name="bench-sql",
        traces_sampler="always_on",
    ).start()
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(NullExporter(), max_queue_size=BSP_QUEUE, schedule_delay_millis=200)
    )

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
                    cost = _cpu_per_op(lambda i, c=cursor, o=op: o(c, i), OPS)
                    results.setdefault((op_name, name), []).append(cost)
            for name, conn in engine_conns.items():
                cost = _cpu_per_op(
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
        ratio = theirs / ours if ours > 0 else float("inf")
        target = ""
        if bare == "bare sqlite3":
            verdict = "within" if ours <= TARGET_US else "over"
            target = f" ({verdict} the {TARGET_US:g} µs target)"
        print(
            f"{'':33} limelight metrics adds {ours:.2f} µs{target}; "
            f"OpenTelemetry adds {theirs:.2f} µs ({ratio:.1f}x ours)"
        )
        if NOOP in names:
            dispatch = statistics.median(results[(op_name, NOOP)]) - base
            print(f"{'':33} of which SQLAlchemy's event dispatch alone costs {dispatch:.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
