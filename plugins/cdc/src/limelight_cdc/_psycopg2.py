"""psycopg2's logical replication consumer, instrumented.

``psycopg2.extras.ReplicationCursor`` (the cursor of a
``LogicalReplicationConnection``) gets four methods wrapped, every argument
and return value passed through unchanged:

- ``start_replication_expert`` (which ``start_replication`` calls): reads the
  slot and the output plugin options from the command and starts a
  :class:`~limelight_cdc.ChangeStream` for the cursor;
- ``consume_stream``: the consumer callback is wrapped so every message is
  decoded and counted before the application sees it, and its transaction
  span ends after the application is done with it; an exception out of the
  stream that the callback did not raise counts as a ``stream`` error;
- ``read_message``: every message returned is decoded and counted; a raise
  counts as a ``stream`` error;
- ``send_feedback``: records the time of the feedback; a raise counts as a
  ``feedback`` error.

psycopg2 offers no hook on its replication cursor (its messages are C
objects, the stream loop is C), so the Python class psycopg2 itself defines
on top of the C cursor is where the wrappers go. A cursor on a physical
replication connection is left alone.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable
from typing import Any

from limelight.surface import Patches

from ._decode import options_format
from ._instruments import report_failure
from ._stream import ChangeStream

__all__ = ["decode_as", "install", "parse_start_replication", "stream_of"]

_streams: weakref.WeakKeyDictionary[Any, ChangeStream] = weakref.WeakKeyDictionary()
_formats: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

_IDENT = r'"(?:[^"]|"")*"|[^\s"(]+'
_START = re.compile(
    r"\s*START_REPLICATION\s+SLOT\s+(" + _IDENT + r")\s+LOGICAL\s+\S+\s*(?:\((.*)\))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_OPTION = re.compile(r"\s*(" + _IDENT + r")(?:\s+E?'((?:[^']|'')*)')?\s*(?:,|$)", re.DOTALL)


def _unquote(ident: str) -> str:
    if ident.startswith('"') and ident.endswith('"') and len(ident) >= 2:
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def parse_start_replication(
    command: object, cursor: Any = None
) -> tuple[str, dict[str, str]] | None:
    """The slot and the options of a logical ``START_REPLICATION`` command, or ``None``
    (a physical one, or not a command this can read).

    :param cursor: renders a ``psycopg2.sql.Composable`` command.
    """
    if isinstance(command, bytes):
        command = command.decode("utf-8", "replace")
    elif not isinstance(command, str):
        as_string = getattr(command, "as_string", None)
        if as_string is None or cursor is None:
            return None
        command = as_string(cursor)
        if not isinstance(command, str):
            return None
    found = _START.match(command)
    if found is None:
        return None
    slot = _unquote(found.group(1))
    options: dict[str, str] = {}
    text = found.group(2) or ""
    pos = 0
    while pos < len(text):
        option = _OPTION.match(text, pos)
        if option is None or option.end() == pos:
            break
        value = option.group(2)
        options[_unquote(option.group(1))] = value.replace("''", "'") if value is not None else ""
        pos = option.end()
    return slot, options


def decode_as(cursor: Any, format: str | None) -> None:
    """Decode the stream of *cursor* as *format* (``pgoutput``, ``wal2json``,
    ``test_decoding``) instead of telling it from the options and the first message;
    ``None`` goes back to that. Takes effect at the next ``start_replication``,
    or at once for a stream already started."""
    if format is None:
        _formats.pop(cursor, None)
    else:
        ChangeStream("", format)  # raises ValueError for an unknown format
        _formats[cursor] = format
    stream = _streams.get(cursor)
    if stream is not None:
        _streams[cursor] = ChangeStream(stream.slot, format)


def stream_of(cursor: Any) -> ChangeStream | None:
    """The :class:`~limelight_cdc.ChangeStream` of an instrumented cursor's current stream."""
    return _streams.get(cursor)


def _started(cursor: Any, command: object) -> None:
    try:
        parsed = parse_start_replication(command, cursor)
        if parsed is None:
            _streams.pop(cursor, None)
            return
        slot, options = parsed
        format = _formats.get(cursor) or options_format(options)
        _streams[cursor] = ChangeStream(slot, format)
    except Exception as exc:
        report_failure("start_replication", exc)


def install(patches: Patches) -> None:
    """Wrap the replication cursor's methods (``psycopg2.extras.ReplicationCursor``)."""
    import psycopg2
    import psycopg2.extras

    cls = psycopg2.extras.ReplicationCursor
    stop_replication = psycopg2.extras.StopReplication
    streams_get = _streams.get

    start_original: Callable[..., Any] = cls.start_replication_expert

    @functools.wraps(start_original)
    def start_replication_expert(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        result = start_original(self, command, *args, **kwargs)
        _started(self, command)
        return result

    consume_original: Callable[..., Any] = cls.consume_stream

    @functools.wraps(consume_original)
    def consume_stream(self: Any, consume: Any, *args: Any, **kwargs: Any) -> Any:
        stream = streams_get(self)
        if stream is None or not callable(consume):
            return consume_original(self, consume, *args, **kwargs)
        observe = stream.observe

        def instrumented(msg: Any) -> Any:
            observe(msg.payload)
            try:
                return consume(msg)
            except BaseException as exc:
                stream.raised = exc
                raise
            finally:
                if stream.ending:
                    stream.processed()

        try:
            return consume_original(self, instrumented, *args, **kwargs)
        except Exception as exc:
            raised, stream.raised = stream.raised, None
            if exc is not raised and not isinstance(exc, stop_replication):
                stream.failed("stream")
            raise

    read_original: Callable[..., Any] = cls.read_message

    @functools.wraps(read_original)
    def read_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            msg = read_original(self, *args, **kwargs)
        except Exception:
            stream = streams_get(self)
            if stream is not None:
                stream.failed("stream")
            raise
        if msg is not None:
            stream = streams_get(self)
            if stream is not None:
                stream.observe(msg.payload)
                if stream.ending:  # the application's processing is not seen here
                    stream.processed()
        return msg

    feedback_original: Callable[..., Any] = cls.send_feedback

    @functools.wraps(feedback_original)
    def send_feedback(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = feedback_original(self, *args, **kwargs)
        except Exception:
            stream = streams_get(self)
            if stream is not None:
                stream.failed("feedback")
            raise
        stream = streams_get(self)
        if stream is not None:
            stream.feedback()
        return result

    patches.wrap(cls, "start_replication_expert", start_replication_expert)
    patches.wrap(cls, "consume_stream", consume_stream)
    patches.wrap(cls, "read_message", read_message)
    patches.wrap(cls, "send_feedback", send_feedback)
    del psycopg2
