"""W3C Trace Context Level 2 propagation: ``traceparent`` and ``tracestate``.

:class:`W3CTraceContextPropagator` is what the ``tracecontext`` name in
``OTEL_PROPAGATORS`` resolves to. It follows the specification where
OpenTelemetry's ``TraceContextTextMapPropagator`` does not:

- a request carrying ``traceparent`` more than once is not trusted: the
  trace restarts (OpenTelemetry reads the first value and ignores the others);
- only the flags the specification defines (``sampled``, ``random-trace-id``)
  are sent; reserved bits are set to zero (OpenTelemetry forwards every bit
  of a context it passes on with no span of its own in between);
- the ``random-trace-id`` flag of a received ``traceparent`` is sent on
  unchanged while the trace id is unchanged, whatever the SDK version does;
- header names are matched in any case with OpenTelemetry's default getter
  over a ``dict`` (which matches keys exactly), repeated spellings included;
- ``tracestate`` keys follow the current Level 2 grammar (a lowercase letter
  or a digit first, ``@`` one more key character, up to 256 characters), and a
  key given twice keeps the list with the key's left-most entry (OpenTelemetry
  applies the older grammar and drops the whole list for either).

:class:`HeaderGetter` reads header values from every common carrier shape
(a ``dict``, ASGI's list of byte pairs, multi-dicts such as ``httpx.Headers``,
``http.client.HTTPMessage``, starlette's ``Headers``), returning every
occurrence of a repeated header, so repeated ``traceparent`` headers are seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, create_key, get_value, set_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    DefaultGetter,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from ._sdk.context import SPAN_KEY as _SPAN_KEY
from ._sdk.spans import build_span_context as _build_span_context
from ._sdk.spans import unpack_span_context as _unpack
from ._sdk.tracestate import trace_state as _trace_state

__all__ = [
    "FLAG_RANDOM_TRACE_ID",
    "FLAG_SAMPLED",
    "KNOWN_FLAGS",
    "TRACEPARENT",
    "TRACESTATE",
    "HeaderGetter",
    "W3CTraceContextPropagator",
    "format_traceparent",
    "header_getter",
    "parse_traceparent",
    "parse_tracestate",
    "remote_parent_context",
]

TRACEPARENT = "traceparent"
"""The ``traceparent`` header name (lowercase, as sent)."""
TRACESTATE = "tracestate"
"""The ``tracestate`` header name (lowercase, as sent)."""

FLAG_SAMPLED = 0x01
"""``sampled``: the caller may have recorded trace data."""
FLAG_RANDOM_TRACE_ID = 0x02
"""``random-trace-id`` (Level 2): at least the right-most 7 bytes of the trace id are random."""
KNOWN_FLAGS = FLAG_SAMPLED | FLAG_RANDOM_TRACE_ID
"""Every flag this level defines; the other bits are reserved and sent as zero."""

MAX_TRACEPARENT_LENGTH = 512
"""A ``traceparent`` longer than this (a future version with large extra fields) is ignored."""
MAX_TRACESTATE_MEMBERS = 32
"""A ``tracestate`` with more list members than this is discarded whole."""
MAX_TRACESTATE_INPUT = 64 * 1024
"""Combined ``tracestate`` input past this size is discarded without parsing."""

# version "-" trace-id "-" parent-id "-" trace-flags, then (future versions only)
# "-" and fields this level knows nothing about.
_TRACEPARENT_RE = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL
)

# Level 2 (https://www.w3.org/TR/trace-context-2/#key):
# key = ( lcalpha / DIGIT ) 0*255( keychar )
#   keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
# (the older simple-key / tenant-id "@" system-id split, with its 241 and 14
# character parts, is gone: "@" is one more key character)
# value = 0*255( chr ) nblk-chr; chr = %x20 / nblk-chr;
#   nblk-chr = %x21-2B / %x2D-3C / %x3E-7E (printable ASCII but "," and "=")
_KEY = r"[a-z0-9][a-z0-9_\-*/@]{0,255}"
_NBLK = r"\x21-\x2b\x2d-\x3c\x3e-\x7e"
_VALUE = rf"[\x20{_NBLK}]{{0,255}}[{_NBLK}]"
_MEMBER_RE = re.compile(rf"({_KEY})=({_VALUE})")
_OWS = " \t"

_NO_TRACE_STATE = trace.DEFAULT_TRACE_STATE
_TRACE_FLAGS = tuple(TraceFlags(flags) for flags in range(KNOWN_FLAGS + 1))
_REMOTE_FLAGS = create_key("limelight-w3c-remote-flags")
"""Context key: ``(trace_id, flags)`` of the ``traceparent`` this context was extracted from."""


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """Parse one ``traceparent`` value into ``(trace_id, parent_id, flags)``.

    Surrounding spaces and tabs are ignored. Version ``00`` must be exactly
    ``version-trace-id-parent-id-flags``; a higher version may carry more
    fields after a dash, which are ignored. Returns ``None`` for anything
    invalid: a version of ``ff`` or not two lowercase hex digits, a field of
    the wrong length or with other characters (uppercase hex included), an
    all-zero trace id or parent id. The flags keep only the defined bits.
    """
    value = value.strip(_OWS)
    if len(value) > MAX_TRACEPARENT_LENGTH:
        return None
    match = _TRACEPARENT_RE.fullmatch(value)
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(flags_hex, 16) & KNOWN_FLAGS


def parse_tracestate(values: Iterable[str]) -> TraceState | None:
    """Combine one or more ``tracestate`` field values and parse the list.

    Several fields are joined with commas, as RFC 9110 combines repeated
    fields. Empty and whitespace-only members are skipped; spaces and tabs
    around a member are ignored (trailing spaces of a value are optional
    whitespace, leading ones belong to it). A key given more than once keeps
    its left-most entry (the most recent position: a vendor's update moves its
    key to the left), the others are dropped. Returns ``None`` when the whole
    list must be discarded: a member that does not match the key/value
    grammar, more than 32 members (counted as received).
    """
    combined = ",".join(values)
    if len(combined) > MAX_TRACESTATE_INPUT:
        return None
    pairs: dict[str, str] = {}
    members = 0
    for raw in combined.split(","):
        member = raw.strip(_OWS)
        if not member:
            continue
        match = _MEMBER_RE.fullmatch(member)
        if match is None:
            return None
        members += 1
        if members > MAX_TRACESTATE_MEMBERS:
            return None
        key, value = match.groups()
        pairs.setdefault(key, value)
    return _trace_state(list(pairs.items()))


def remote_parent_context(
    context: Context, parsed: tuple[int, int, int], trace_state: TraceState | None
) -> Context:
    """*context* with the remote parent of a parsed ``traceparent`` (see
    :func:`parse_traceparent`) and its *trace_state*: what
    :meth:`W3CTraceContextPropagator.extract` returns for a valid header."""
    trace_id, span_id, flags = parsed
    # the ids are valid by construction (non-zero, 32 and 16 hex digits)
    span_context = _build_span_context(
        SpanContext,
        (
            trace_id,
            span_id,
            True,
            _TRACE_FLAGS[flags],
            _NO_TRACE_STATE if trace_state is None else trace_state,
            True,
        ),
    )
    span = NonRecordingSpan(span_context)
    if _SPAN_KEY is None:
        context = trace.set_span_in_context(span, context)
        return set_value(_REMOTE_FLAGS, (trace_id, flags), context)
    if not context:  # most extractions start from an empty context
        return Context({_SPAN_KEY: span, _REMOTE_FLAGS: (trace_id, flags)})
    # what set_span_in_context and set_value make, in one copy
    entries = dict(context)
    entries[_SPAN_KEY] = span
    entries[_REMOTE_FLAGS] = (trace_id, flags)
    return Context(entries)


_FLAGS_TEXT = tuple(f"{flags:02x}" for flags in range(KNOWN_FLAGS + 1))


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """The version ``00`` ``traceparent`` value (reserved flag bits cleared).

    *trace_id* and *span_id* are those of a valid span context (128 and 64 bit
    unsigned integers); another value raises ``OverflowError``.
    """
    # bytes.hex is about twice as fast as a 032x format spec
    return (
        f"00-{trace_id.to_bytes(16, 'big').hex()}-{span_id.to_bytes(8, 'big').hex()}"
        f"-{_FLAGS_TEXT[flags & KNOWN_FLAGS]}"
    )


def _truncate(items: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """Drop whole entries until the header fits in *limit* characters.

    As the specification says: entries longer than 128 characters go first
    (right-most first), then entries from the end of the list.
    """

    def size(entries: list[tuple[str, str]]) -> int:
        return sum(len(k) + 1 + len(v) for k, v in entries) + max(0, len(entries) - 1)

    entries = list(items)
    for index in range(len(entries) - 1, -1, -1):
        if size(entries) <= limit:
            return entries
        key, value = entries[index]
        if len(key) + 1 + len(value) > 128:
            del entries[index]
    while entries and size(entries) > limit:
        entries.pop()
    return entries


class W3CTraceContextPropagator(TextMapPropagator):
    """W3C Trace Context Level 2 ``traceparent``/``tracestate`` propagator.

    The default behind the ``tracecontext`` name of ``OTEL_PROPAGATORS``.

    :param max_tracestate_length: the longest ``tracestate`` sent; a longer one
        loses whole entries (those over 128 characters first, then from the
        right). ``None`` (default) sends every valid entry (at most 32).
    """

    def __init__(self, max_tracestate_length: int | None = None) -> None:
        if max_tracestate_length is not None and max_tracestate_length < 0:
            raise ValueError("max_tracestate_length must be >= 0")
        self.max_tracestate_length = max_tracestate_length

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """The context with the remote parent of *carrier*, or *context* unchanged.

        Exactly one valid ``traceparent`` is required; when it is missing,
        repeated or invalid, nothing is extracted (the callee starts a new
        trace) and ``tracestate`` is not looked at. An invalid ``tracestate``
        is dropped and the ``traceparent`` kept.
        """
        if context is None:
            context = Context()
        values = _values(carrier, getter, TRACEPARENT)
        if values is None or len(values) != 1:
            return context
        parsed = parse_traceparent(values[0])
        if parsed is None:
            return context
        state_values = _values(carrier, getter, TRACESTATE)
        return remote_parent_context(
            context, parsed, parse_tracestate(state_values) if state_values else None
        )

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Set ``traceparent`` (version ``00``) and, when not empty, ``tracestate``.

        Nothing is set without a valid span context. Reserved flag bits are
        cleared; while the trace id is the one extracted from a remote
        ``traceparent``, its ``random-trace-id`` flag is sent as received.
        """
        self.inject_span_context(
            carrier, trace.get_current_span(context).get_span_context(), context, setter
        )

    def inject_span_context(
        self,
        carrier: CarrierT,
        span_context: SpanContext,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """:meth:`inject` for *span_context* as the parent, the rest read from *context*.

        The same headers as ``inject(carrier, set_span_in_context(span, context))``,
        without building that context.
        """
        # (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid) in one
        # call rather than read through six properties
        trace_id, span_id, _, trace_flags, trace_state, is_valid = _unpack(span_context)
        if not is_valid:
            return
        flags: int = trace_flags
        # what extract() stored under the key (typing.cast would cost a call)
        remote: tuple[int, int] | None = (
            context.get(_REMOTE_FLAGS)  # type: ignore[assignment]
            if context is not None
            else get_value(_REMOTE_FLAGS)
        )
        if remote is not None and remote[0] == trace_id:
            flags = (flags & ~FLAG_RANDOM_TRACE_ID) | (remote[1] & FLAG_RANDOM_TRACE_ID)
        traceparent = format_traceparent(trace_id, span_id, flags)
        if setter is default_setter:
            carrier[TRACEPARENT] = traceparent  # type: ignore[index]
        else:
            setter.set(carrier, TRACEPARENT, traceparent)
        if trace_state is not _NO_TRACE_STATE and trace_state:
            header = self._tracestate_header(trace_state)
            if header:
                setter.set(carrier, TRACESTATE, header)

    def _tracestate_header(self, trace_state: TraceState) -> str:
        # TraceState only ever holds valid pairs, at most 32 of them.
        if self.max_tracestate_length is None:
            return trace_state.to_header()
        items = _truncate(list(trace_state.items()), self.max_tracestate_length)
        return ",".join(f"{k}={v}" for k, v in items)

    @property
    def fields(self) -> set[str]:
        """The header names :meth:`inject` sets."""
        return {TRACEPARENT, TRACESTATE}


def _values(carrier: Any, getter: Getter[Any], name: str) -> list[str] | None:
    """Every value of header *name* that *getter* finds in *carrier*.

    OpenTelemetry's default getter matches ``dict`` keys exactly; with it,
    every key equal to *name* in any case is read (``TraceParent`` and
    ``traceparent`` both count). Other getters (framework carriers, where
    names are normalised already, and :class:`HeaderGetter`) are trusted.
    """
    try:
        if type(getter) is DefaultGetter and isinstance(carrier, Mapping):
            values: list[str] = []
            for key in carrier:
                if isinstance(key, str) and key.lower() == name:
                    values.extend(getter.get(carrier, key) or ())
            return values or None
        found = getter.get(carrier, name)
    except Exception:
        return None
    return list(found) if found else None


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    return str(value)


def _extend(out: list[str], value: object) -> None:
    if value is None:
        return
    if isinstance(value, str | bytes | bytearray):
        out.append(_text(value))
    elif isinstance(value, Iterable):
        out.extend(_text(v) for v in value)
    else:
        out.append(str(value))


class HeaderGetter(Getter[Any]):
    """Reads headers from any common carrier, case-insensitively, every occurrence.

    Understood carriers: a mapping of names to a value, bytes or a list of
    values (a WSGI ``environ`` too, through its ``HTTP_*`` keys); a sequence
    of ``(name, value)`` pairs in ``str`` or ``bytes`` (ASGI
    ``scope["headers"]``); ``httpx.Headers`` (``multi_items``), multidict's
    ``CIMultiDict`` (``getall``), ``email.message.Message`` and
    ``http.client.HTTPMessage`` (``get_all``), starlette and werkzeug
    ``Headers`` (``getlist``). Bytes are decoded as Latin-1. A header that
    appears several times yields several values, so a repeated ``traceparent``
    is recognised as such.
    """

    def get(self, carrier: Any, key: str) -> list[str] | None:
        """Every value of header *key* (any case), or ``None`` when absent."""
        name = key.lower()
        out: list[str] = []
        multi_items = getattr(carrier, "multi_items", None)
        if multi_items is not None:
            for k, v in multi_items():
                if _text(k).lower() == name:
                    out.append(_text(v))
            return out or None
        for method in ("getall", "get_all", "getlist"):
            getter = getattr(carrier, method, None)
            if getter is not None:
                try:
                    values = getter(key, None) if method != "getlist" else getter(key)
                except (KeyError, TypeError):
                    values = None
                if values is None and name != key:
                    values = getter(name, None) if method != "getlist" else getter(name)
                _extend(out, values)
                return out or None
        if isinstance(carrier, Mapping):
            for k, v in carrier.items():
                if _text(k).lower() == name:
                    _extend(out, v)
            if not out:  # a WSGI environ: HTTP_TRACEPARENT (repeated fields arrive comma-joined)
                _extend(out, carrier.get("HTTP_" + name.upper().replace("-", "_")))
            return out or None
        if isinstance(carrier, Sequence) and not isinstance(carrier, str | bytes | bytearray):
            bname = name.encode("latin-1")
            for pair in carrier:
                k = pair[0]
                if (k.lower() == bname) if isinstance(k, bytes) else (_text(k).lower() == name):
                    out.append(_text(pair[1]))
            return out or None
        return None

    def keys(self, carrier: Any) -> list[str]:
        """Every header name in *carrier* (as given, once each)."""
        multi_items = getattr(carrier, "multi_items", None)
        if multi_items is not None:
            names = [_text(k) for k, _ in multi_items()]
        elif isinstance(carrier, Mapping) or hasattr(carrier, "keys"):
            names = [_text(k) for k in carrier.keys()]  # noqa: SIM118 - not only mappings
        elif isinstance(carrier, Sequence) and not isinstance(carrier, str | bytes | bytearray):
            names = [_text(pair[0]) for pair in carrier]
        else:
            return []
        return list(dict.fromkeys(names))


header_getter = HeaderGetter()
"""A shared :class:`HeaderGetter`: ``propagator.extract(headers, getter=header_getter)``."""
