"""The instrumented psycopg2 consumer against a real server with wal_level=logical."""

from __future__ import annotations

import time
from typing import Any

import limelight_cdc
import psycopg2
import psycopg2.extras
import pytest
from conftest import Db, consume, read_messages
from limelight_cdc import plugin

from limelight.testing import Harness

N_INSERTS, M_UPDATES, K_DELETES = 7, 4, 3


def _workload(db: Db, table: str, other: str) -> None:
    """N inserts, M updates, K deletes in three transactions, then one truncate of two tables."""
    db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
    db.sql(f"CREATE TABLE {other} (id int PRIMARY KEY)")
    db.sql(f"INSERT INTO {table} SELECT i, 'v' || i FROM generate_series(1, {N_INSERTS}) i")
    db.sql(f"UPDATE {table} SET v = 'changed' WHERE id <= {M_UPDATES}")
    db.sql(f"DELETE FROM {table} WHERE id > {N_INSERTS - K_DELETES}")
    db.sql(f"TRUNCATE {table}, {other}")


def _changes(telemetry: Harness, slot: str) -> dict[str, float]:
    return {
        op: telemetry.value("cdc_changes_total", default=0, slot=slot, op=op)
        for op in limelight_cdc.OPS
    }


def _errors(telemetry: Harness, slot: str, kind: str) -> float:
    return telemetry.value("cdc_errors_total", default=0, slot=slot, kind=kind)


EXPECTED = {"insert": N_INSERTS, "update": M_UPDATES, "delete": K_DELETES, "truncate": 2}


@pytest.mark.limelight(plugins=[plugin])
class TestPgoutput:
    """pgoutput (binary, proto_version 1) through consume_stream: every change counted exactly."""

    def test_inserts_updates_deletes_and_a_truncate(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument("psycopg2")
        slot, table, other = db.name("pgo"), db.name("items"), db.name("other")
        db.sql(f"CREATE PUBLICATION {slot} FOR ALL TABLES")
        db.create_slot(slot, "pgoutput")
        _workload(db, table, other)
        cursor = db.replication().cursor()
        cursor.start_replication(
            slot_name=slot, options={"proto_version": "1", "publication_names": slot}
        )
        # 6 transactions: 2 CREATE TABLE (no pgoutput message), then 4 with changes
        received = consume(db, cursor, slot, lambda m: sum(p[:1] == b"C" for p, _ in m) == 4)
        assert EXPECTED == _changes(telemetry, slot)
        assert 0 == _errors(telemetry, slot, "decode")
        assert 0 == _errors(telemetry, slot, "stream")
        # the application's callback saw exactly what the server sent: same bytes, same order
        bare = db.replication().cursor()
        db.sql(f"SELECT pg_copy_logical_replication_slot('{slot}', '{slot}_copy')")
        limelight_cdc.uninstrument()
        bare.start_replication(
            slot_name=f"{slot}_copy", options={"proto_version": "1", "publication_names": slot}
        )
        again = consume(db, bare, f"{slot}_copy", lambda m: sum(p[:1] == b"C" for p, _ in m) == 4)
        assert [p for p, _ in again] == [p for p, _ in received]
        assert EXPECTED == _changes(telemetry, slot)  # the uninstrumented run counted nothing

    def test_read_message_counts_too(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument()
        slot, table = db.name("pgr"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        db.sql(f"CREATE PUBLICATION {slot} FOR TABLE {table}")
        db.create_slot(slot, "pgoutput")
        db.sql(f"INSERT INTO {table} SELECT generate_series(1, 5)")
        db.sql(f"DELETE FROM {table} WHERE id = 1")
        cursor = db.replication().cursor()
        cursor.start_replication(
            slot_name=slot, options={"proto_version": "2", "publication_names": slot}
        )
        read_messages(cursor, lambda m: sum(x.payload[:1] == b"C" for x in m) == 2)
        assert {"insert": 5, "update": 0, "delete": 1, "truncate": 0} == _changes(telemetry, slot)


@pytest.mark.limelight(plugins=[plugin])
class TestWal2json:
    """wal2json, format 1 (a transaction per message) and format 2 (an action per message)."""

    def test_format_1_counts_each_change(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument()
        slot, table, other = db.name("w1"), db.name("items"), db.name("other")
        db.create_slot(slot, "wal2json")
        _workload(db, table, other)
        cursor = db.replication().cursor()
        cursor.start_replication(
            slot_name=slot, decode=True, options={"add-tables": f"public.{table}"}
        )
        # format 1 sends a (possibly empty) object per transaction: 6 transactions
        messages = read_messages(cursor, lambda m: len(m) == 6)
        assert all(isinstance(m.payload, str) for m in messages)
        # wal2json's format 1 carries no truncate (its transaction comes as an empty change list)
        assert {**EXPECTED, "truncate": 0} == _changes(telemetry, slot)
        assert 0 == _errors(telemetry, slot, "decode")

    def test_format_1_in_chunks(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument()
        slot, table = db.name("w1c"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        db.create_slot(slot, "wal2json")
        db.sql(f"INSERT INTO {table} SELECT generate_series(1, 3)")
        cursor = db.replication().cursor()
        cursor.start_replication(slot_name=slot, options={"write-in-chunks": "1"})
        read_messages(cursor, lambda m: any(x.payload.startswith(b"]") for x in m))
        assert 3 == _changes(telemetry, slot)["insert"]
        assert 0 == _errors(telemetry, slot, "decode")

    def test_format_2_counts_a_truncate(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument()
        slot, table, other = db.name("w2"), db.name("items"), db.name("other")
        db.create_slot(slot, "wal2json")
        _workload(db, table, other)
        cursor = db.replication().cursor()
        cursor.start_replication(slot_name=slot, options={"format-version": "2"})
        read_messages(cursor, lambda m: sum(x.payload == b'{"action":"C"}' for x in m) == 6)
        assert EXPECTED == _changes(telemetry, slot)
        assert 0 == _errors(telemetry, slot, "decode")


@pytest.mark.limelight(plugins=[plugin])
class TestTestDecoding:
    """test_decoding's text lines, told apart without any option saying the format."""

    def test_lines_are_counted(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument()
        slot, table, other = db.name("td"), db.name("items"), db.name("other")
        db.create_slot(slot, "test_decoding")
        _workload(db, table, other)
        cursor = db.replication().cursor()
        cursor.start_replication(slot_name=slot, decode=True)
        read_messages(cursor, lambda m: sum(x.payload.startswith("COMMIT") for x in m) == 6)
        assert EXPECTED == _changes(telemetry, slot)
        assert "test_decoding" == limelight_cdc.stream_of(cursor).format  # type: ignore[union-attr]


@pytest.mark.limelight(plugins=[plugin])
class TestFailures:
    """Every failing path counts in cdc_errors_total; the consumer's behaviour is unchanged."""

    def test_terminated_walsender_counts_and_reconnecting_works(
        self, db: Db, telemetry: Harness
    ) -> None:
        limelight_cdc.instrument()
        slot, table = db.name("term"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        db.sql(f"CREATE PUBLICATION {slot} FOR TABLE {table}")
        db.create_slot(slot, "pgoutput")
        options = {"proto_version": "1", "publication_names": slot}
        db.sql(f"INSERT INTO {table} SELECT generate_series(1, 3)")
        conn = db.replication()
        cursor = conn.cursor()
        cursor.start_replication(slot_name=slot, options=options)
        seen = read_messages(cursor, lambda m: any(x.payload[:1] == b"C" for x in m))
        db.wait_confirmed(cursor, slot, seen[-1].data_start)
        db.sql("SELECT pg_terminate_backend(%s)", db.walsender_pids(slot)[0])
        with pytest.raises(psycopg2.Error):
            consume(db, cursor, slot, lambda m: False, timeout=10)
        assert 1 == _errors(telemetry, slot, "stream")
        # the application reconnects and goes on where it confirmed
        cursor = db.replication().cursor()
        deadline = time.monotonic() + 5
        while True:  # the terminated walsender may still hold the slot for a moment
            try:
                cursor.start_replication(slot_name=slot, options=options)
                break
            except psycopg2.errors.ObjectInUse:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        db.sql(f"INSERT INTO {table} SELECT generate_series(4, 5)")
        consume(db, cursor, slot, lambda m: any(p[:1] == b"C" for p, _ in m))
        assert 5 == _changes(telemetry, slot)["insert"]
        assert 1 == _errors(telemetry, slot, "stream")

    def test_messages_the_decoder_does_not_understand(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument()
        slot, table = db.name("bad"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        db.create_slot(slot, "test_decoding")
        db.sql(f"INSERT INTO {table} VALUES (1)")
        cursor = db.replication().cursor()
        cursor.start_replication(slot_name=slot)
        limelight_cdc.decode_as(cursor, "pgoutput")  # text lines are corrupt pgoutput
        received = consume(db, cursor, slot, lambda m: len(m) == 3)
        # every message reached the application unchanged
        assert [b"BEGIN", b"table", b"COMMIT"] == [p.split(b" ", 1)[0] for p, _ in received]
        assert 3 == _errors(telemetry, slot, "decode")
        assert 0 == sum(_changes(telemetry, slot).values())
        assert 0 == _errors(telemetry, slot, "stream")

    def test_the_callbacks_own_exception_is_not_a_stream_error(
        self, db: Db, telemetry: Harness
    ) -> None:
        limelight_cdc.instrument()
        slot, table = db.name("own"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        db.create_slot(slot, "test_decoding")
        db.sql(f"INSERT INTO {table} VALUES (1)")
        cursor = db.replication().cursor()
        cursor.start_replication(slot_name=slot)

        def consumer(msg: Any) -> None:
            raise KeyError("the application's")

        with pytest.raises(KeyError, match="the application's"):
            cursor.consume_stream(consumer)
        assert 0 == _errors(telemetry, slot, "stream")

    def test_feedback_time_is_recorded_and_arguments_pass_through(
        self, db: Db, telemetry: Harness
    ) -> None:
        limelight_cdc.instrument()
        slot, table = db.name("fb"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        db.create_slot(slot, "test_decoding")
        db.sql(f"INSERT INTO {table} VALUES (1)")
        cursor = db.replication().cursor()
        cursor.start_replication(slot_name=slot)
        seen = read_messages(cursor, lambda m: any(x.payload.startswith(b"COMMIT") for x in m))
        before = time.time()
        cursor.send_feedback(flush_lsn=seen[-1].data_start, force=True)
        stamp = telemetry.value("cdc_last_feedback_timestamp_seconds", slot=slot)
        assert before <= stamp <= time.time()
        db.wait_confirmed(cursor, slot, seen[-1].data_start)


class TestTelemetryOff:
    """Without the plugin (or with the SDK disabled) nothing is recorded and nothing changes."""

    @pytest.mark.limelight(plugins=[plugin], env={"OTEL_SDK_DISABLED": "true"})
    def test_sdk_disabled(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument()
        slot, table = db.name("off"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        db.create_slot(slot, "test_decoding")
        db.sql(f"INSERT INTO {table} VALUES (1)")
        cursor = db.replication().cursor()
        cursor.start_replication(slot_name=slot)
        received = consume(db, cursor, slot, lambda m: len(m) == 3)
        assert 3 == len(received)
        assert "cdc_changes_total" not in telemetry.store


@pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_CDC_SPANS": "true"})
class TestSpans:
    """With LIMELIGHT_CDC_SPANS=true, one root CONSUMER span per decoded transaction."""

    def test_one_span_per_transaction(self, db: Db, telemetry: Harness) -> None:
        limelight_cdc.instrument()
        slot, table = db.name("sp"), db.name("items")
        db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        db.sql(f"CREATE PUBLICATION {slot} FOR TABLE {table}")
        db.create_slot(slot, "pgoutput")
        db.sql(f"INSERT INTO {table} SELECT generate_series(1, 3)")
        db.sql(f"DELETE FROM {table} WHERE id = 2")
        cursor = db.replication().cursor()
        cursor.start_replication(
            slot_name=slot, options={"proto_version": "1", "publication_names": slot}
        )
        tracer = telemetry.telemetry.tracer("test")
        with tracer.start_as_current_span("outer"):  # transaction spans never join it
            consume(db, cursor, slot, lambda m: sum(p[:1] == b"C" for p, _ in m) == 2)
        spans = telemetry.find_spans(f"cdc {slot}", kind="consumer")
        assert [3, 1] == [s.attributes["limelight.cdc.changes"] for s in spans]  # type: ignore[index]
        for span in spans:
            assert span.parent is None
            assert () == tuple(span.links)
            assert "postgresql" == span.attributes["db.system.name"]  # type: ignore[index]
            assert slot == span.attributes["limelight.cdc.slot"]  # type: ignore[index]


@pytest.mark.limelight(plugins=[plugin])
def test_spans_are_off_by_default(db: Db, telemetry: Harness) -> None:
    limelight_cdc.instrument()
    slot, table = db.name("nosp"), db.name("items")
    db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    db.create_slot(slot, "test_decoding")
    db.sql(f"INSERT INTO {table} VALUES (1)")
    cursor = db.replication().cursor()
    cursor.start_replication(slot_name=slot)
    consume(db, cursor, slot, lambda m: len(m) == 3)
    assert 1 == telemetry.value("cdc_changes_total", slot=slot, op="insert")
    assert [] == telemetry.spans()
