"""Telling the operation of a logical decoding message: pgoutput, wal2json, test_decoding.

Only what it takes to count changes by operation and to see transaction
boundaries is read; the message itself is never changed or copied for the
consumer. Each decoder counts into a :class:`~limelight_cdc._instruments.SlotInstruments`
and raises :class:`DecodeError` for a message it does not understand.

- **pgoutput** (binary, protocol versions 1 to 4): the message type byte
  (``B C I U D T R Y O M`` and, for streaming and two-phase commit,
  ``S E c A b P K r p``), checked against the message layout: a tuple marker
  after the relation id, a truncate's relation count against its length.
  Inside a streamed block (``S`` ... ``E``) changes carry a transaction id
  first, which is taken into account.
- **wal2json**, format 1 (one JSON object per transaction, ``"kind"`` per
  change, also with ``write-in-chunks`` and ``pretty-print``) and format 2
  (one object per action, ``{"action":"I", ...}``).
- **test_decoding**: ``BEGIN``, ``COMMIT``, ``table <name>: INSERT: ...`` and
  the other lines it writes.

A truncate counts one change per truncated table, in every format.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._instruments import SlotInstruments

__all__ = [
    "FORMATS",
    "DecodeError",
    "Decoder",
    "Transactions",
    "decoder_for",
    "detect",
    "options_format",
    "pgoutput",
    "test_decoding",
    "wal2json",
]

FORMATS: tuple[str, ...] = ("pgoutput", "wal2json", "test_decoding")
"""The output plugins whose messages are decoded."""


class DecodeError(ValueError):
    """A message the decoder does not understand."""


class Transactions(Protocol):
    """What a decoder tells about transaction boundaries (and keeps per stream)."""

    in_stream: bool
    changes: int

    def begin(self) -> None: ...

    def commit(self) -> None: ...


class Decoder(Protocol):
    def __call__(self, payload: bytes, inst: SlotInstruments, txn: Transactions, /) -> None: ...


# -- pgoutput -----------------------------------------------------------------------------

_I, _U, _D, _T = 0x49, 0x55, 0x44, 0x54
_B, _C, _R, _Y, _O, _M = 0x42, 0x43, 0x52, 0x59, 0x4F, 0x4D
_S, _E, _c, _A = 0x53, 0x45, 0x63, 0x41
_N, _K = 0x4E, 0x4B
_CHANGE_TAGS = frozenset((_I, _U, _D))
_NEW = (_N,)
_OLD_OR_NEW = (_K, _O, _N)
_OLD = (_K, _O)
_OTHER_TAGS = frozenset(
    # relation, type, origin, logical message; two-phase commit (protocol 3):
    # begin prepare, prepare, commit prepared, rollback prepared, stream prepare
    (_R, _Y, _O, _M, ord("b"), ord("P"), ord("K"), ord("r"), ord("p"))
)


def pgoutput(payload: bytes, inst: SlotInstruments, txn: Transactions, /) -> None:
    """Count one pgoutput message."""
    size = len(payload)
    if not size:
        raise DecodeError("empty message")
    tag = payload[0]
    if tag in _CHANGE_TAGS:
        at = 9 if txn.in_stream else 5  # after the (xid and) relation id
        if size < at + 3:
            raise DecodeError("change message too short")
        marker = payload[at]
        if tag == _I:
            if marker != _N:
                raise DecodeError("insert without a new tuple")
            inst.insert()
        elif tag == _U:
            if marker not in _OLD_OR_NEW:
                raise DecodeError("update without a tuple")
            inst.update()
        else:
            if marker not in _OLD:
                raise DecodeError("delete without an old tuple or key")
            inst.delete()
        txn.changes += 1
    elif tag == _B:
        if size != 21:
            raise DecodeError("begin message of the wrong length")
        txn.begin()
    elif tag == _C:
        if size != 26:
            raise DecodeError("commit message of the wrong length")
        txn.commit()
    elif tag == _T:
        at = 5 if txn.in_stream else 1
        if size < at + 5:
            raise DecodeError("truncate message too short")
        count = int.from_bytes(payload[at : at + 4], "big")
        if size != at + 5 + 4 * count or not count:
            raise DecodeError("truncate message of the wrong length")
        inst.truncate(count)
        txn.changes += count
    elif tag in _OTHER_TAGS:
        return
    elif tag == _S:  # stream start: xid, first-segment flag
        if size != 6:
            raise DecodeError("stream start of the wrong length")
        txn.in_stream = True
    elif tag == _E:
        txn.in_stream = False
    elif tag == _c:  # stream commit
        if size != 30:
            raise DecodeError("stream commit of the wrong length")
        txn.in_stream = False
        txn.commit()
    elif tag == _A:  # stream abort (protocol 4 adds a position and a timestamp)
        if size not in {9, 25}:
            raise DecodeError("stream abort of the wrong length")
        txn.in_stream = False
    else:
        raise DecodeError(f"unknown pgoutput message type {tag:#04x}")


# -- wal2json -----------------------------------------------------------------------------

_KIND = re.compile(rb'"kind":\s*"([a-z]*)"')
_V2_PREFIX = b'{"action":"'
_BRACE_OPEN, _BRACE_CLOSE, _BRACKET_OPEN, _BRACKET_CLOSE, _COMMA = 0x7B, 0x7D, 0x5B, 0x5D, 0x2C
_QUOTE = 0x22


def wal2json(payload: bytes, inst: SlotInstruments, txn: Transactions, /) -> None:
    """Count one wal2json message, format 2 (an action) or format 1 (a transaction or chunk)."""
    if payload.startswith(_V2_PREFIX):
        if len(payload) < 14 or payload[12] != _QUOTE or payload[-1] != _BRACE_CLOSE:
            raise DecodeError("malformed wal2json action")
        action = payload[11]
        if action == _I:
            inst.insert()
        elif action == _U:
            inst.update()
        elif action == _D:
            inst.delete()
        elif action == _B:
            txn.begin()
            return
        elif action == _C:
            txn.commit()
            return
        elif action == _T:
            inst.truncate()
        elif action == _M:
            return
        else:
            raise DecodeError(f"unknown wal2json action {chr(action)!r}")
        txn.changes += 1
        return
    body = payload.strip()
    if not body:
        raise DecodeError("empty wal2json message")
    first, last = body[0], body[-1]
    if first == _BRACE_OPEN:
        if body.startswith(b'{"kind"'):  # one change of a chunked transaction
            _count_kinds(body, inst, txn)
        elif last == _BRACE_CLOSE:  # a whole transaction
            txn.begin()
            _count_kinds(body, inst, txn)
            txn.commit()
        elif last == _BRACKET_OPEN:  # the opening chunk: '{"xid":1,"change":['
            txn.begin()
        else:
            raise DecodeError("truncated wal2json transaction")
    elif first == _COMMA:  # a further change of a chunked transaction: ',{"kind":...}'
        _count_kinds(body, inst, txn)
    elif first == _BRACKET_CLOSE:  # the closing chunk: ']}'
        txn.commit()
    else:
        raise DecodeError("not a wal2json message")


def _count_kinds(body: bytes, inst: SlotInstruments, txn: Transactions) -> None:
    for kind in _KIND.findall(body):
        if kind == b"insert":
            inst.insert()
        elif kind == b"update":
            inst.update()
        elif kind == b"delete":
            inst.delete()
        elif kind == b"truncate":
            inst.truncate()
        elif kind == b"message":
            continue
        else:
            raise DecodeError(f"unknown wal2json change kind {kind!r}")
        txn.changes += 1


# -- test_decoding ------------------------------------------------------------------------

_TD_OPS = {b"INSERT": 0, b"UPDATE": 1, b"DELETE": 2, b"TRUNCATE": 3}
_IDENT = rb'(?:"(?:[^"]|"")*"|[^".:,\s]+)'
_QUALIFIED = _IDENT + rb"(?:\." + _IDENT + rb")?"
_TD_TABLE = re.compile(
    rb"table (" + _QUALIFIED + rb"(?:, " + _QUALIFIED + rb")*): (INSERT|UPDATE|DELETE|TRUNCATE):"
)
_TD_NAME = re.compile(_QUALIFIED)
_TD_OTHER = (
    b"message:",
    b"opening a streamed block",
    b"closing a streamed block",
    b"aborting streamed",
    b"preparing streamed",
    b"streaming ",
    b"PREPARE TRANSACTION",
    b"ROLLBACK PREPARED",
)


def test_decoding(payload: bytes, inst: SlotInstruments, txn: Transactions, /) -> None:
    """Count one test_decoding line."""
    if payload.startswith(b"table "):
        end = payload.find(b": ", 6)
        op = -1
        names = b""
        if end > 0:
            stop = payload.find(b":", end + 2)
            op = _TD_OPS.get(payload[end + 2 : stop], -1) if stop > 0 else -1
            names = payload[6:end]
        if op < 0 or _QUOTE in names:  # a quoted name may hold ": " or ", "
            found = _TD_TABLE.match(payload)
            if found is None:
                raise DecodeError("unrecognised test_decoding change")
            names, op = found.group(1), _TD_OPS[found.group(2)]
        if op == 0:
            inst.insert()
        elif op == 1:
            inst.update()
        elif op == 2:
            inst.delete()
        else:
            count = len(_TD_NAME.findall(names)) if _QUOTE in names else names.count(b", ") + 1
            inst.truncate(count)
            txn.changes += count
            return
        txn.changes += 1
    elif payload.startswith(b"BEGIN"):
        txn.begin()
    elif payload.startswith((b"COMMIT", b"committing streamed")):
        txn.commit()
    elif not payload.startswith(_TD_OTHER):
        raise DecodeError("unrecognised test_decoding line")


# -- detection ----------------------------------------------------------------------------

_DECODERS: dict[str, Decoder] = {
    "pgoutput": pgoutput,
    "wal2json": wal2json,
    "test_decoding": test_decoding,
}


def decoder_for(format: str) -> Decoder:
    """The decoder of *format* (one of :data:`FORMATS`).

    :raises ValueError: an unknown format.
    """
    try:
        return _DECODERS[format]
    except KeyError:
        raise ValueError(
            f"unknown logical decoding format {format!r} (known: {', '.join(FORMATS)})"
        ) from None


_TD_FIRST = (b"BEGIN", b"COMMIT", b"table ", b"message:", b"opening a streamed block")


def detect(payload: bytes) -> str | None:
    """The format a stream's first message is in, or ``None`` when it does not tell."""
    if not payload:
        return None
    first = payload[0]
    if first == _B and len(payload) == 21:  # pgoutput begin: 'B', LSN, timestamp, xid
        return "pgoutput"
    stripped = payload.lstrip()
    if stripped[:1] == b"{":
        return "wal2json"
    if payload.startswith(_TD_FIRST):
        return "test_decoding"
    if first in (_R, _Y, _O, _M, _S, _I, _U, _D, _T, ord("b")) and b"\x00" in payload[:16]:
        return "pgoutput"
    return None


def options_format(options: dict[str, str]) -> str | None:
    """The format that ``START_REPLICATION`` options imply, if they say: pgoutput takes
    ``proto_version``/``publication_names``, wal2json ``format-version``."""
    if "proto_version" in options or "publication_names" in options:
        return "pgoutput"
    if "format-version" in options or "write-in-chunks" in options:
        return "wal2json"
    return None
