"""Added CPU per decoded change: limelight-cdc over the bare psycopg2 consumer loop.

No Python library counts logical replication changes per slot, so there is no
peer to measure next to it: the comparison is with the same consumer loop
uninstrumented. (For the slot monitor, postgres_exporter's pg_replication_slots
collector exports raw LSNs and the OpenTelemetry collector's PostgreSQL
receiver no per-slot metric; neither counts changes.)

One run, one process, against a private PostgreSQL server (initdb + pg_ctl
from the Debian binaries, wal_level=logical). A workload of transactions of 5
inserts, 3 updates and 2 deletes is written once into a slot; every round,
each variant consumes a fresh copy of that slot
(``pg_copy_logical_replication_slot``) with ``consume_stream`` until the last
commit, and the consumer process's CPU time (``time.process_time``) is
divided by the number of changes. The server's work is in other processes
and not counted. Rounds interleave the variants, so machine noise hits each
alike; the figure is the median over rounds, minus the bare loop's, with the
spread (the range of the per-round differences).

The decoding alone (``ChangeStream.observe`` on the captured payloads, no
server) is measured too, which is the part of the cost that is limelight's
own without the noise of the stream.

    nox -s "bench(cdc)"
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import limelight_cdc
import psycopg2
import psycopg2.extras
from _common import NullExporterPlugin
from limelight_cdc import ChangeStream
from limelight_cdc import plugin as cdc_plugin
from limelight_testsupport.postgres import PostgresServer, ensure_output_plugin

import limelight

TRANSACTIONS = int(os.environ.get("BENCH_TRANSACTIONS", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "11"))
CHANGES_PER_TXN = 10  # 5 inserts, 3 updates, 2 deletes
TARGET_US = 2.0

FORMATS: dict[str, tuple[str, dict[str, str], bool, Callable[[Any], bool]]] = {
    # name: output plugin, options, decode, "is this the commit message"
    "pgoutput": (
        "pgoutput",
        {"proto_version": "1", "publication_names": "bench"},
        False,
        lambda p: p[:1] == b"C",
    ),
    "wal2json format 2": (
        "wal2json",
        {"format-version": "2", "add-tables": "public.items"},
        False,
        lambda p: p == b'{"action":"C"}',
    ),
}


def _telemetry(spans: bool) -> limelight.Telemetry:
    return limelight.Telemetry(
        plugins=[cdc_plugin, NullExporterPlugin()],
        entry_points=False,
        install_globals=False,
        handle_signals=False,
        environ={"LIMELIGHT_CDC_SPANS": "true" if spans else "false"},
        service_name="bench-cdc",
        traces_sampler="always_on",
    ).start()


def _workload(conn: Any) -> None:
    with conn.cursor() as cur:
        for i in range(TRANSACTIONS):
            base = i * 5
            cur.execute(
                "BEGIN;"
                "INSERT INTO items SELECT g, 'x' FROM generate_series(%s, %s) g;"
                "UPDATE items SET v = 'y' WHERE id BETWEEN %s AND %s;"
                "DELETE FROM items WHERE id BETWEEN %s AND %s;"
                "COMMIT",
                (base, base + 4, base, base + 2, base + 3, base + 4),
            )


def _consume(dsn: str, admin: Any, source: str, fmt: str, copy: str) -> tuple[float, list[Any]]:
    """Consume a fresh copy of slot *source* to its end: (CPU seconds, payloads)."""
    _plugin, options, decode, is_commit = FORMATS[fmt]
    with admin.cursor() as cur:
        cur.execute("SELECT pg_copy_logical_replication_slot(%s, %s)", (source, copy))
    conn = psycopg2.connect(dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    payloads: list[Any] = []
    commits = 0

    def consume(msg: Any) -> None:
        nonlocal commits
        payload = msg.payload
        payloads.append(payload)
        if is_commit(payload):
            commits += 1
            if commits == TRANSACTIONS:
                raise psycopg2.extras.StopReplication

    try:
        cursor = conn.cursor()
        cursor.start_replication(slot_name=copy, options=options, decode=decode)
        start = time.process_time()
        with contextlib.suppress(psycopg2.extras.StopReplication):
            cursor.consume_stream(consume)
        cpu = time.process_time() - start
    finally:
        conn.close()
        with admin.cursor() as cur:
            for _ in range(100):
                try:
                    cur.execute("SELECT pg_drop_replication_slot(%s)", (copy,))
                    break
                except psycopg2.errors.ObjectInUse:
                    time.sleep(0.02)
    return cpu, payloads


def _decode_only(payloads: list[Any], fmt: str, n_changes: int) -> float:
    """CPU µs per change of ChangeStream.observe over captured payloads."""
    stream = ChangeStream("bench-decode", FORMATS[fmt][0])
    observe = stream.observe
    start = time.process_time()
    for payload in payloads:
        observe(payload)
    return (time.process_time() - start) / n_changes * 1e6


def main() -> int:
    if ensure_output_plugin("wal2json") is None:
        del FORMATS["wal2json format 2"]
    server = PostgresServer(output_plugins=["wal2json"]).start()
    try:
        return _run(server)
    finally:
        server.stop()


def _run(server: PostgresServer) -> int:
    dsn = server.dsn()
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE TABLE items (id int PRIMARY KEY, v text)")
        cur.execute("CREATE PUBLICATION bench FOR TABLE items")
        for fmt, (plugin_name, _o, _d, _c) in FORMATS.items():
            cur.execute(
                "SELECT pg_create_logical_replication_slot(%s, %s)", (_slot(fmt), plugin_name)
            )
    _workload(admin)
    n_changes = TRANSACTIONS * CHANGES_PER_TXN

    variants = ["bare psycopg2", "limelight-cdc (metrics)", "limelight-cdc (metrics + spans)"]
    telemetries = {"limelight-cdc (metrics)": False, "limelight-cdc (metrics + spans)": True}
    results: dict[tuple[str, str], list[float]] = {}
    decode: dict[str, list[float]] = {}
    payloads: dict[str, list[Any]] = {}
    copies = 0
    for round_ in range(ROUNDS + 1):  # the first round warms up and is not counted
        for fmt in FORMATS:
            for variant in variants:
                telemetry = None
                if variant in telemetries:
                    telemetry = _telemetry(telemetries[variant])
                    limelight_cdc.instrument("psycopg2")
                try:
                    copies += 1
                    cpu, seen = _consume(dsn, admin, _slot(fmt), fmt, f"copy_{copies}")
                finally:
                    limelight_cdc.uninstrument()
                    if telemetry is not None:
                        telemetry.stop()
                payloads[fmt] = seen
                if round_:
                    results.setdefault((fmt, variant), []).append(cpu / n_changes * 1e6)
            if round_:
                telemetry = _telemetry(False)
                try:
                    decode.setdefault(fmt, []).append(_decode_only(payloads[fmt], fmt, n_changes))
                finally:
                    telemetry.stop()
    admin.close()

    print(
        f"PostgreSQL {server.major} logical replication, {n_changes} changes in "
        f"{TRANSACTIONS} transactions x {ROUNDS} rounds, consumer CPU µs per change (median)"
    )
    print("no peer exists for per-change CDC metrics: each variant is compared with the bare loop")
    print(f"{'format':20} {'variant':34} {'CPU µs/change':>14} {'added µs':>9} {'spread':>16}")
    for fmt in FORMATS:
        bare = results[(fmt, variants[0])]
        base = statistics.median(bare)
        for variant in variants:
            costs = results[(fmt, variant)]
            cost = statistics.median(costs)
            if variant == variants[0]:
                print(f"{fmt:20} {variant:34} {cost:14.2f}")
                continue
            diffs = [c - b for c, b in zip(costs, bare, strict=True)]
            spread = f"{min(diffs):+.2f}..{max(diffs):+.2f}"
            print(f"{fmt:20} {variant:34} {cost:14.2f} {cost - base:+9.2f} {spread:>16}")
        ours = statistics.median(results[(fmt, variants[1])]) - base
        verdict = "within" if ours <= TARGET_US else "over"
        decoding = statistics.median(decode[fmt])
        print(
            f"{'':20} metrics add {ours:.2f} µs per change ({verdict} the {TARGET_US:g} µs "
            f"target); decoding and counting alone, without the stream: {decoding:.2f} µs"
        )
    return 0


def _slot(fmt: str) -> str:
    return "bench_" + "".join(c if c.isalnum() else "_" for c in fmt)


if __name__ == "__main__":
    raise SystemExit(main())
