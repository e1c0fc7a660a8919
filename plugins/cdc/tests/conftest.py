"""Fixtures: one private PostgreSQL with wal_level=logical for the session, slots cleaned up."""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest
from limelight_testsupport import unavailable
from limelight_testsupport.postgres import PostgresServer, ensure_output_plugin, find_bindir

_names = itertools.count()


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    """The suite's own PostgreSQL (never the shared one on 5432), with wal2json allowed."""
    bindir = find_bindir()
    if bindir is None:
        unavailable("no PostgreSQL server binaries under /usr/lib/postgresql/<major>/bin")
    assert bindir is not None
    if ensure_output_plugin("wal2json", bindir) is None:
        unavailable(f"wal2json (Debian postgresql-{bindir.parent.name}-wal2json) is missing")
    with PostgresServer(bindir=bindir, output_plugins=["wal2json"]) as server:
        yield server


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    """Every test starts and ends with psycopg2 as it was."""
    import limelight_cdc

    limelight_cdc.uninstrument()
    yield
    limelight_cdc.uninstrument()


class Db:
    """Plain and replication connections to the private server, and names unique per test."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.dsn = server.dsn()
        self.conn = psycopg2.connect(self.dsn)
        self.conn.autocommit = True
        self._replication: list[Any] = []
        self.prefix = f"t{os.getpid()}_{next(_names)}"

    def name(self, what: str) -> str:
        return f"{self.prefix}_{what}"

    def sql(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(statement, args or None)
            return list(cur.fetchall()) if cur.description else []

    def replication(self) -> Any:
        """A new LogicalReplicationConnection (closed after the test)."""
        conn = psycopg2.connect(
            self.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection
        )
        self._replication.append(conn)
        return conn

    def create_slot(self, name: str, plugin: str) -> None:
        self.sql("SELECT pg_create_logical_replication_slot(%s, %s)", name, plugin)

    def walsender_pids(self, slot: str) -> list[int]:
        return [
            r[0]
            for r in self.sql(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s "
                "AND active_pid IS NOT NULL",
                slot,
            )
        ]

    def wait_confirmed(self, cursor: Any, slot: str, lsn: int, timeout: float = 5.0) -> None:
        """Send feedback confirming *lsn* until the server shows it for *slot*."""
        deadline = time.monotonic() + timeout
        while True:
            cursor.send_feedback(flush_lsn=lsn, force=True)
            rows = self.sql(
                "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots "
                "WHERE slot_name = %s",
                slot,
            )
            if rows and rows[0][0] is not None and int(rows[0][0]) >= lsn:
                return
            assert time.monotonic() < deadline, "the feedback did not reach the server"
            cursor.read_message()
            time.sleep(0.02)

    def close(self) -> None:
        for conn in self._replication:
            with contextlib.suppress(Exception):
                conn.close()
        # an inactive slot of this test keeps WAL: drop them all
        for (slot,) in self.sql(
            "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE %s",
            self.prefix + "\\_%",
        ):
            deadline = time.monotonic() + 5
            while True:
                try:
                    self.sql("SELECT pg_drop_replication_slot(%s)", slot)
                    break
                except psycopg2.errors.ObjectInUse:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        self.conn.close()


@pytest.fixture
def db(pg: PostgresServer) -> Iterator[Db]:
    value = Db(pg)
    try:
        yield value
    finally:
        value.close()


def read_messages(
    cursor: Any, until: Callable[[list[Any]], bool], timeout: float = 10.0
) -> list[Any]:
    """``read_message`` until *until(messages)* holds; fails after *timeout* seconds."""
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    while not until(messages):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"only {len(messages)} messages after {timeout} s: {messages[-3:]!r}")
        msg = cursor.read_message()
        if msg is None:
            select.select([cursor], [], [], min(remaining, 0.2))
        else:
            messages.append(msg)
    return messages


def consume(
    db: Db, cursor: Any, slot: str, until: Callable[[list[Any]], bool], timeout: float = 10.0
) -> list[Any]:
    """``consume_stream`` until *until(messages)* holds (the callback then raises
    StopReplication); the walsender is terminated after *timeout* seconds."""
    messages: list[Any] = []

    def on_message(msg: Any) -> None:
        messages.append((msg.payload, msg.data_start))
        if until(messages):
            raise psycopg2.extras.StopReplication

    def terminate() -> None:
        for pid in db.walsender_pids(slot):
            db.sql("SELECT pg_terminate_backend(%s)", pid)

    watchdog = threading.Timer(timeout, terminate)
    watchdog.start()
    try:
        cursor.consume_stream(on_message)
    except psycopg2.extras.StopReplication:
        pass
    finally:
        watchdog.cancel()
    return messages
