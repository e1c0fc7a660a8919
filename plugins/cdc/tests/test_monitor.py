"""The slot monitor against a real server: retained WAL per slot, for any consumer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import limelight_cdc
import prometheus_client
import pytest
from conftest import Db, read_messages
from limelight_cdc import SlotMonitor, plugin
from limelight_testsupport import free_port

from limelight.testing import Harness

MB = 1 << 20


def _gauge(telemetry: Harness, name: str, **labels: str) -> float | None:
    """The value of the series with exactly these labels, ``None`` when it does not exist."""
    for point in telemetry.metric(name).points:
        if dict(point.labels) == labels:
            return point.value  # type: ignore[union-attr]
    return None


def _poll_until(monitor: SlotMonitor, probe: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert monitor.poll(), monitor.last_error
        if probe():
            return
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.1)


def _write_wal(db: Db, megabytes: int = 3) -> None:
    """About *megabytes* of WAL that a pgoutput consumer is not sent (logical messages)."""
    for _ in range(megabytes):
        db.sql("SELECT pg_logical_emit_message(false, 'limelight-test', repeat('x', %s))", MB)


@pytest.mark.limelight(plugins=[plugin])
class TestRetainedWal:
    """Retained and unconfirmed bytes follow what the consumer confirms, slot by slot."""

    def test_grows_without_feedback_and_falls_after_confirming(
        self, db: Db, telemetry: Harness
    ) -> None:
        slot, idle, table = db.name("grow"), db.name("idle"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int, v text)")
        db.sql(f"CREATE PUBLICATION {slot} FOR TABLE {table}")
        db.create_slot(slot, "pgoutput")
        db.create_slot(idle, "pgoutput")
        monitor = SlotMonitor(db.dsn, slots=[slot, idle])
        assert monitor.poll(), monitor.last_error
        start = _gauge(telemetry, "cdc_retained_wal_bytes", slot=slot)
        assert start is not None
        cursor = db.replication().cursor()
        cursor.start_replication(
            slot_name=slot,
            options={"proto_version": "1", "publication_names": slot},
            status_interval=3600,  # no automatic status updates: only what the test sends
        )
        db.sql(f"INSERT INTO {table} VALUES (1, 'x')")
        _write_wal(db)
        # the consumer reads but confirms nothing: the server keeps the WAL
        read_messages(cursor, lambda m: any(x.payload[:1] == b"C" for x in m))
        assert monitor.poll()
        grown = _gauge(telemetry, "cdc_retained_wal_bytes", slot=slot)
        unconfirmed = _gauge(telemetry, "cdc_unconfirmed_wal_bytes", slot=slot)
        assert grown is not None and unconfirmed is not None
        assert grown - start > 2 * MB
        assert unconfirmed > 2 * MB
        assert 1 == _gauge(telemetry, "cdc_slot_active", slot=slot)
        assert 0 == _gauge(telemetry, "cdc_slot_active", slot=idle)

        # it confirms: unconfirmed drops at once; restart_lsn follows at the next
        # running-transactions record the decoder sees (a checkpoint writes one)
        def confirmed() -> bool:
            cursor.send_feedback(flush_lsn=cursor.wal_end, force=True)
            db.sql("CHECKPOINT")
            cursor.read_message()
            now = _gauge(telemetry, "cdc_retained_wal_bytes", slot=slot)
            return now is not None and now < MB

        _poll_until(monitor, confirmed)
        after = _gauge(telemetry, "cdc_unconfirmed_wal_bytes", slot=slot)
        assert after is not None and after < MB
        # the other slot reports on its own: it holds everything written since it was made
        held = _gauge(telemetry, "cdc_retained_wal_bytes", slot=idle)
        assert held is not None and held > 2 * MB

    def test_a_dropped_slot_takes_its_series_along(self, db: Db, telemetry: Harness) -> None:
        keep, drop = db.name("keep"), db.name("drop")
        db.create_slot(keep, "test_decoding")
        db.create_slot(drop, "test_decoding")
        monitor = SlotMonitor(db.dsn)
        assert monitor.poll()
        for name in ("cdc_retained_wal_bytes", "cdc_unconfirmed_wal_bytes", "cdc_slot_active"):
            assert {keep, drop} <= {s["slot"] for s in telemetry.series(name)}
        assert {keep, drop} <= {s["slot"] for s in telemetry.series("cdc_slot_wal_status")}
        db.sql("SELECT pg_drop_replication_slot(%s)", drop)
        assert monitor.poll()
        for name in (
            "cdc_retained_wal_bytes",
            "cdc_unconfirmed_wal_bytes",
            "cdc_slot_active",
            "cdc_slot_wal_status",
        ):
            slots = {s["slot"] for s in telemetry.series(name)}
            assert keep in slots and drop not in slots, name
        exposition = prometheus_client.generate_latest(telemetry.store.registry).decode()
        assert f'slot="{keep}"' in exposition
        assert f'slot="{drop}"' not in exposition

    def test_wal_status_and_safe_wal_size(self, db: Db, telemetry: Harness) -> None:
        slot = db.name("status")
        db.create_slot(slot, "test_decoding")
        monitor = SlotMonitor(db.dsn, slots=[slot], driver="psycopg")
        assert monitor.poll(), monitor.last_error
        assert {"reserved": 1, "extended": 0, "unreserved": 0, "lost": 0} == {
            s: _gauge(telemetry, "cdc_slot_wal_status", slot=slot, status=s)
            for s in limelight_cdc.WAL_STATUSES
        }
        # unlimited max_slot_wal_keep_size: the server has no safe_wal_size to give
        assert _gauge(telemetry, "cdc_slot_safe_wal_size_bytes", slot=slot) is None
        db.sql("ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'")
        db.sql("SELECT pg_reload_conf()")
        try:
            _poll_until(
                monitor,
                lambda: _gauge(telemetry, "cdc_slot_safe_wal_size_bytes", slot=slot) is not None,
            )
            safe = _gauge(telemetry, "cdc_slot_safe_wal_size_bytes", slot=slot)
            assert safe is not None and 512 * MB < safe < 2048 * MB
        finally:
            db.sql("ALTER SYSTEM RESET max_slot_wal_keep_size")
            db.sql("SELECT pg_reload_conf()")

    def test_a_physical_slot_has_retained_but_no_unconfirmed_bytes(
        self, db: Db, telemetry: Harness
    ) -> None:
        slot = db.name("phys")
        db.sql("SELECT pg_create_physical_replication_slot(%s, true)", slot)
        monitor = SlotMonitor(db.dsn, slots=[slot])
        assert monitor.poll()
        assert _gauge(telemetry, "cdc_retained_wal_bytes", slot=slot) is not None
        assert _gauge(telemetry, "cdc_unconfirmed_wal_bytes", slot=slot) is None


@pytest.mark.limelight(plugins=[plugin])
class TestConnectionFailures:
    """A lost or refused connection is counted, logged without the password, and retried."""

    def test_a_terminated_monitor_connection_counts_and_reconnects(
        self, db: Db, telemetry: Harness
    ) -> None:
        slot = db.name("mon")
        db.create_slot(slot, "test_decoding")
        monitor = SlotMonitor(db.dsn, slots=[slot])
        assert monitor.poll()
        db.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'limelight-cdc-slot-monitor'"
        )
        assert not monitor.poll()
        assert 1 == telemetry.value("cdc_errors_total", slot="", kind="monitor")
        assert monitor.poll(), monitor.last_error
        assert 0 == monitor.failures
        assert 1 == telemetry.value("cdc_errors_total", slot="", kind="monitor")

    def test_the_password_is_never_logged(
        self, telemetry: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        secret = "s3cr3t-pa55word"
        dsn = f"host=127.0.0.1 port={free_port()} dbname=app user=cdc password={secret}"
        monitor = SlotMonitor(dsn, driver="psycopg2")
        with caplog.at_level(logging.DEBUG, logger="limelight.cdc"):
            assert not monitor.poll()
            assert not monitor.poll()
        records = [r for r in caplog.records if r.name == "limelight.cdc"]
        assert [logging.WARNING, logging.DEBUG] == [r.levelno for r in records]
        for record in records:
            assert secret not in record.getMessage()
            assert "host=127.0.0.1" in record.getMessage()
            assert "dbname=app" in record.getMessage()
        assert secret not in repr(monitor) and secret not in (monitor.last_error or "")
        assert 2 == telemetry.value("cdc_errors_total", slot="", kind="monitor")

    def test_a_uri_password_is_not_logged_either(self, caplog: pytest.LogCaptureFixture) -> None:
        secret = "uri-pa55word"
        monitor = SlotMonitor(f"postgresql://cdc:{secret}@127.0.0.1:{free_port()}/app")
        with caplog.at_level(logging.WARNING, logger="limelight.cdc"):
            assert not monitor.poll()
        assert caplog.records
        assert all(secret not in r.getMessage() for r in caplog.records)

    def test_the_thread_retries_with_backoff_and_stops(self, telemetry: Harness) -> None:
        monitor = SlotMonitor(
            f"host=127.0.0.1 port={free_port()} dbname=app", interval=0.05, max_backoff=0.2
        )
        with monitor:
            assert telemetry.wait_until(lambda: monitor.failures >= 3, timeout=10)
        stopped = monitor.failures
        time.sleep(0.4)
        assert stopped == monitor.failures  # stopped means stopped
        errors = telemetry.value("cdc_errors_total", slot="", kind="monitor")
        assert errors == monitor.failures


@pytest.mark.limelight(plugins=[plugin])
def test_the_thread_polls_at_its_interval(db: Db, telemetry: Harness) -> None:
    slot = db.name("thread")
    db.create_slot(slot, "test_decoding")
    with SlotMonitor(db.dsn, interval=0.1, slots=[slot]):
        assert telemetry.wait_until(
            lambda: _gauge(telemetry, "cdc_slot_active", slot=slot) is not None
        )
        db.sql("SELECT pg_drop_replication_slot(%s)", slot)
        assert telemetry.wait_until(lambda: _gauge(telemetry, "cdc_slot_active", slot=slot) is None)


def test_without_telemetry_the_monitor_records_nothing(db: Db) -> None:
    slot = db.name("quiet")
    db.create_slot(slot, "test_decoding")
    monitor = SlotMonitor(db.dsn)
    assert monitor.poll()  # the query runs; there is nowhere to record it


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="interval"):
        SlotMonitor("", interval=0)
    with pytest.raises(ValueError, match="unknown driver"):
        SlotMonitor("", driver="asyncpg")
