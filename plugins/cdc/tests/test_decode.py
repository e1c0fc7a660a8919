"""Decoding enough of each output plugin's messages to tell the operation, and no more.

The pgoutput bytes are as a PostgreSQL 15 server sends them (protocol 1 and the
streaming form of protocol 2); malformed ones are those bytes cut or altered.
"""

from __future__ import annotations

import struct

import limelight_cdc
import pytest
from limelight_cdc import ChangeStream, plugin
from limelight_cdc._decode import detect

from limelight.testing import Harness

BEGIN = b"B" + struct.pack(">QqI", 0x1517C90, 0x305_08B6_1F69BB, 727)
COMMIT = b"C\x00" + struct.pack(">QQq", 0x1517C90, 0x1517CC0, 0x305_08B6_1F69BB)
RELATION = b"R\x00\x00@\x00public\x00t\x00d\x00\x02\x01id\x00\x00\x00\x00\x17\xff\xff\xff\xff\x00"
INSERT = b"I\x00\x00@\x00N\x00\x02t\x00\x00\x00\x011t\x00\x00\x00\x01a"
UPDATE = b"U\x00\x00@\x00N\x00\x02t\x00\x00\x00\x011t\x00\x00\x00\x01c"
UPDATE_OLD = b"U\x00\x00@\x00O\x00\x01t\x00\x00\x00\x011N\x00\x01t\x00\x00\x00\x012"
DELETE = b"D\x00\x00@\x00K\x00\x02t\x00\x00\x00\x012n"
TRUNCATE_2 = b"T\x00\x00\x00\x02\x00\x00\x00@\x00\x00\x00@\x07"
MESSAGE = b"M\x01\x00\x00\x00\x00\x01Q\x8d\x98pfx\x00\x00\x00\x00\x05hello"
STREAM_START = b"S\x00\x00\x03\x00\x01"
STREAM_STOP = b"E"
STREAM_COMMIT = b"c\x00\x00\x03\x00\x00" + bytes(24)
XID = b"\x00\x00\x03\x00"


def _counts(telemetry: Harness, slot: str) -> dict[str, float]:
    return {
        op: telemetry.value("cdc_changes_total", default=0, slot=slot, op=op)
        for op in limelight_cdc.OPS
    }


def _decode_errors(telemetry: Harness, slot: str) -> float:
    return telemetry.value("cdc_errors_total", default=0, slot=slot, kind="decode")


@pytest.mark.limelight(plugins=[plugin])
class TestPgoutput:
    """Message types, their layout, and the streamed form with a transaction id."""

    def test_changes_and_boundaries(self, telemetry: Harness) -> None:
        stream = ChangeStream("s", "pgoutput")
        for payload in (BEGIN, RELATION, INSERT, INSERT, UPDATE, UPDATE_OLD, DELETE):
            stream.observe(payload)
        stream.observe(TRUNCATE_2)
        stream.observe(MESSAGE)
        stream.observe(COMMIT)
        assert {"insert": 2, "update": 2, "delete": 1, "truncate": 2} == _counts(telemetry, "s")
        assert 0 == _decode_errors(telemetry, "s")

    def test_streamed_changes_carry_a_transaction_id(self, telemetry: Harness) -> None:
        stream = ChangeStream("s", "pgoutput")
        stream.observe(STREAM_START)
        stream.observe(INSERT[:1] + XID + INSERT[1:])
        stream.observe(DELETE[:1] + XID + DELETE[1:])
        stream.observe(TRUNCATE_2[:1] + XID + TRUNCATE_2[1:])
        stream.observe(STREAM_STOP)
        stream.observe(STREAM_COMMIT)
        assert {"insert": 1, "update": 0, "delete": 1, "truncate": 2} == _counts(telemetry, "s")
        assert 0 == _decode_errors(telemetry, "s")

    @pytest.mark.parametrize(
        "payload",
        [
            b"",
            b"Z\x00\x00\x00\x01",  # no such message type
            INSERT[:6],  # cut short
            INSERT[:5] + b"K" + INSERT[6:],  # an insert has only a new tuple
            DELETE[:5] + b"N" + DELETE[6:],  # a delete has no new tuple
            UPDATE[:5] + b"X" + UPDATE[6:],
            TRUNCATE_2[:-1],  # fewer relation ids than it says
            BEGIN[:-1],
            COMMIT + b"\x00",
            STREAM_START + b"\x00",
        ],
    )
    def test_a_malformed_message_is_a_decode_error(
        self, telemetry: Harness, payload: bytes
    ) -> None:
        stream = ChangeStream("s", "pgoutput")
        stream.observe(payload)
        assert 1 == _decode_errors(telemetry, "s")
        assert 0 == sum(_counts(telemetry, "s").values())


@pytest.mark.limelight(plugins=[plugin])
class TestWal2json:
    """Format 1 (whole, in chunks, pretty-printed) and format 2."""

    def test_format_1_whole_transaction(self, telemetry: Harness) -> None:
        stream = ChangeStream("w", "wal2json")
        stream.observe(
            b'{"xid":1,"change":[{"kind":"insert","columnvalues":[1,"{\\"kind\\":\\"delete\\"}"]},'
            b'{"kind":"update"},{"kind":"delete"},{"kind":"message","content":"x"}]}'
        )
        # a column value that looks like a change is escaped inside its string
        assert {"insert": 1, "update": 1, "delete": 1, "truncate": 0} == _counts(telemetry, "w")

    def test_format_1_pretty_printed_and_chunked(self, telemetry: Harness) -> None:
        stream = ChangeStream("w", "wal2json")
        stream.observe(b'{\n\t"change": [\n\t\t{\n\t\t\t"kind": "insert"\n\t\t}\n\t]\n}\n')
        for chunk in (b'{"xid":7,"change":[', b'{"kind":"delete"}', b',{"kind":"delete"}', b"]}"):
            stream.observe(chunk)
        assert {"insert": 1, "update": 0, "delete": 2, "truncate": 0} == _counts(telemetry, "w")
        assert 0 == _decode_errors(telemetry, "w")

    def test_format_2_actions(self, telemetry: Harness) -> None:
        stream = ChangeStream("w", "wal2json")
        for action in "BIIUDTTMC":
            stream.observe(f'{{"action":"{action}","schema":"public","table":"t"}}'.encode())
        assert {"insert": 2, "update": 1, "delete": 1, "truncate": 2} == _counts(telemetry, "w")

    @pytest.mark.parametrize(
        "payload",
        [
            b'{"action":"X"}',
            b'{"action":"I","schema":"public"',  # cut short
            b'{"change":[{"kind":"upsert"}]}',
            b'{"change":[{"kind":"insert"',
            b"not json",
        ],
    )
    def test_a_malformed_message_is_a_decode_error(
        self, telemetry: Harness, payload: bytes
    ) -> None:
        ChangeStream("w", "wal2json").observe(payload)
        assert 1 == _decode_errors(telemetry, "w")


@pytest.mark.limelight(plugins=[plugin])
class TestTestDecoding:
    """test_decoding lines, quoted table names included."""

    def test_lines(self, telemetry: Harness) -> None:
        stream = ChangeStream("t", "test_decoding")
        for line in (
            "BEGIN 727",
            "table public.t: INSERT: id[integer]:1 v[text]:'a: b, c'",
            'table public."odd: name, here": INSERT: id[integer]:2',
            "table public.t: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:1",
            "table public.t: DELETE: id[integer]:2",
            'table public.a, public."b, c", x.y: TRUNCATE: (no-flags)',
            "message: transactional: 1 prefix: p, sz: 1 content:x",
            "COMMIT 727",
        ):
            stream.observe(line)
        assert {"insert": 2, "update": 1, "delete": 1, "truncate": 3} == _counts(telemetry, "t")
        assert 0 == _decode_errors(telemetry, "t")

    def test_an_unknown_line_is_a_decode_error(self, telemetry: Harness) -> None:
        stream = ChangeStream("t", "test_decoding")
        stream.observe("table public.t: UPSERT: id[integer]:1")
        stream.observe("something else")
        assert 2 == _decode_errors(telemetry, "t")


class TestDetect:
    """The first message tells the format when no option did."""

    @pytest.mark.parametrize(
        ("payload", "format"),
        [
            (BEGIN, "pgoutput"),
            (RELATION, "pgoutput"),
            (b'{"action":"B"}', "wal2json"),
            (b'{"xid":1,"change":[]}', "wal2json"),
            (b"BEGIN 727", "test_decoding"),
            (b"BEGIN", "test_decoding"),
            (b"table public.t: INSERT: id[integer]:1", "test_decoding"),
            (b"garbage", None),
            (b"", None),
        ],
    )
    def test_detect(self, payload: bytes, format: str | None) -> None:
        assert format == detect(payload)

    @pytest.mark.limelight(plugins=[plugin])
    def test_undetectable_messages_count_until_one_tells(self, telemetry: Harness) -> None:
        stream = ChangeStream("d")
        stream.observe(b"garbage")
        stream.observe(b"BEGIN 1")
        stream.observe(b"table public.t: INSERT: id[integer]:1")
        assert "test_decoding" == stream.format
        assert 1 == _decode_errors(telemetry, "d")
        assert 1 == _counts(telemetry, "d")["insert"]

    def test_unknown_format(self) -> None:
        with pytest.raises(ValueError, match="unknown logical decoding format"):
            ChangeStream("x", "protobuf")


@pytest.mark.limelight(plugins=[plugin])
def test_a_payload_of_another_type_is_a_decode_error(telemetry: Harness) -> None:
    ChangeStream("o", "pgoutput").observe(12)  # type: ignore[arg-type]
    assert 1 == _decode_errors(telemetry, "o")
