"""One logical replication stream: decoding, counting, transaction spans, failures."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from limelight.semconv import DB_SYSTEM_NAME

from ._decode import DecodeError, Decoder, decoder_for, detect
from ._instruments import count_error, report_failure, slot_binding
from ._plugin import ERROR_KINDS

__all__ = ["CHANGES_ATTRIBUTE", "SLOT_ATTRIBUTE", "ChangeStream"]

SLOT_ATTRIBUTE = "limelight.cdc.slot"
"""The span attribute holding the slot name."""
CHANGES_ATTRIBUTE = "limelight.cdc.changes"
"""The span attribute holding the number of changes decoded in the transaction."""

_ROOT = Context()  # transaction spans start traces of their own, linked to nothing


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    raise DecodeError(f"a message payload of type {type(payload).__name__}")


class ChangeStream:
    """The instrumentation of one logical replication stream from *slot*.

    The psycopg2 instrumentation makes one per ``start_replication``; a
    consumer built on another driver can use one directly::

        stream = ChangeStream("orders")
        for payload in my_replication_messages():
            stream.observe(payload)        # counts cdc_changes_total{slot, op}
            handle(payload)
            stream.processed()             # ends the transaction span, if one ended
        ...
        stream.feedback()                  # after confirming a position to the server
        stream.failed("stream")            # when the stream broke

    :param slot: the replication slot, the ``slot`` label.
    :param format: the output plugin the messages come from (one of
        :data:`~limelight_cdc.FORMATS`); ``None`` tells it from the first
        message it understands.
    :raises ValueError: an unknown *format*.
    """

    __slots__ = (
        "_binding",
        "_decoder",
        "_span",
        "changes",
        "ending",
        "format",
        "in_stream",
        "raised",
        "slot",
    )

    def __init__(self, slot: str, format: str | None = None) -> None:
        self.slot = slot
        self._binding = slot_binding(slot)
        self.format = format
        self._decoder: Decoder | None = decoder_for(format) if format is not None else None
        self.in_stream = False
        self.changes = 0
        self.ending = False
        self.raised: BaseException | None = None
        self._span: trace.Span | None = None

    def __repr__(self) -> str:
        return f"ChangeStream(slot={self.slot!r}, format={self.format!r})"

    def observe(self, payload: bytes | str) -> None:
        """Decode and count one message; never raises, never changes *payload*.

        A message the decoder does not understand counts in
        ``cdc_errors_total{kind="decode"}``.
        """
        inst = self._binding.get()
        if not inst.active:
            return
        try:
            if type(payload) is not bytes:
                payload = _as_bytes(payload)
            decoder = self._decoder
            if decoder is None:
                decoder = self._detect(payload)
            decoder(payload, inst, self)
        except DecodeError:
            count_error(self.slot, "decode")
        except Exception as exc:
            report_failure("decode", exc)

    def _detect(self, payload: bytes) -> Decoder:
        found = detect(payload)
        if found is None:
            raise DecodeError("the message does not tell its format")
        self.format = found
        decoder = self._decoder = decoder_for(found)
        return decoder

    # -- transaction boundaries, called by the decoders ------------------------------------

    def begin(self) -> None:
        """A transaction started (its span starts, when spans are on)."""
        self.changes = 0
        inst = self._binding.get()
        if not inst.spans or inst.tracer is None:
            return
        if self._span is not None:  # a transaction whose commit never came
            self._end()
        try:
            self._span = inst.tracer.start_span(
                f"cdc {self.slot}",
                context=_ROOT,
                kind=SpanKind.CONSUMER,
                attributes={DB_SYSTEM_NAME: "postgresql", SLOT_ATTRIBUTE: self.slot},
            )
        except Exception as exc:
            report_failure("span", exc)

    def commit(self) -> None:
        """A transaction ended: its span ends at :meth:`processed`."""
        if self._span is not None:
            self.ending = True

    def processed(self) -> None:
        """The consumer is done with the last message: end the transaction span it closed."""
        if self.ending:
            self._end()

    def _end(self) -> None:
        span, self._span = self._span, None
        self.ending = False
        if span is None:
            return
        try:
            span.set_attribute(CHANGES_ATTRIBUTE, self.changes)
            span.end()
        except Exception as exc:
            report_failure("span", exc)

    # -- the rest of the consumer's life ---------------------------------------------------

    def feedback(self) -> None:
        """Record that the consumer sent feedback now (``cdc_last_feedback_timestamp_seconds``)."""
        try:
            self._binding.get().feedback()
        except Exception as exc:
            report_failure("feedback", exc)

    def failed(self, kind: str) -> None:
        """Count one failure of *kind* (``stream``, ``decode``, ``feedback``) in
        ``cdc_errors_total``; a transaction span in progress ends."""
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r} (known: {', '.join(ERROR_KINDS)})")
        count_error(self.slot, kind)
        self.in_stream = False
        if self._span is not None:
            self._end()
