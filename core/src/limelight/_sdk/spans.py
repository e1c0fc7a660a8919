"""The SDK span internals limelight's lean span relies on, and the lean span itself.

Assumptions ``span-fields``, ``span-context-tuple``, ``on-ending`` and
``agnostic-context-manager`` (see :mod:`limelight._sdk`). Each is checked
here, at import; :data:`LEAN_SPANS` says whether :class:`Span` may be used,
and the span-context helpers fall back to the constructor and the properties.

The OpenTelemetry SDK's ``Span`` pays on every span for generality a service
rarely uses: a lock-protected ``BoundedAttributes`` that re-validates every
value through a recursive cleaner, two ``BoundedList`` (each with its own lock)
for events and links that are usually empty, and at ``end()`` a full copy into a
new ``ReadableSpan``. For a server span with the HTTP semantic-convention
attributes that is about 15 µs, most of what a traced request costs.

:class:`Span` keeps the SDK's behaviour and data model:

- it *is* an SDK ``Span`` and ``ReadableSpan`` (processors and exporters read it
  unchanged; at ``end()`` it is handed to them as is, since nothing can change
  it any more);
- attribute values are validated as the SDK does, with a fast path for the
  ``str``/``int``/``float``/``bool`` values that make up nearly every
  attribute, the SDK's own cleaner for the rest, the same count and length
  limits (``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``, ``OTEL_*_ATTRIBUTE_VALUE_LENGTH_LIMIT``),
  the oldest attribute dropped (and counted) when the count limit is reached;
- events use the SDK's own bounded list, created on first use; links given at
  start within the link limit are kept in a tuple (the SDK's bounded list once
  one is added later or the limit is passed), and a link without attributes
  shares one empty immutable attribute table (the SDK builds one per link);
- status, ``update_name``, ``record_exception``, ``end`` (idempotent, with the
  SDK's warnings) and the context-manager protocol follow the SDK.

A processor that raises is reported once and the span still reaches the others
(the SDK would propagate the exception into the instrumented code).
"""

from __future__ import annotations

import functools
import logging
import operator
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util import types

from limelight._failures import error_type, report_failure

from . import fallback

if TYPE_CHECKING:
    from limelight._spans import Tracer

__all__ = [
    "LEAN_SPANS",
    "SPAN_CONTEXT_TUPLE",
    "Span",
    "agnostic_contextmanager",
    "build_span_context",
    "calls_on_ending",
    "new_span",
    "own_context",
    "parent_fields",
    "trace_flags",
    "unpack_span_context",
]

logger = logging.getLogger("limelight.spans")

_new_lock = threading.Lock

_UNSET = Status(StatusCode.UNSET)
_Link = trace_api.Link
_NO_LINK_ATTRIBUTES = BoundedAttributes(0, None, immutable=True)
"""The attributes of every link given none: empty, immutable, nothing dropped."""
_SIMPLE = (str, bool, int, float)
_SIMPLE_TYPES = frozenset(_SIMPLE)
_STR_TYPE = frozenset((str,))
_FIELDS = ("trace_id", "span_id", "is_remote", "trace_flags", "trace_state", "is_valid")


# -- agnostic-context-manager ---------------------------------------------------------------


def _agnostic() -> Callable[..., Any]:
    try:
        from opentelemetry.util._decorator import _agnosticcontextmanager
    except ImportError as exc:
        fallback("agnostic-context-manager", "contextlib.contextmanager", exc)
        from contextlib import contextmanager

        return contextmanager
    return _agnosticcontextmanager


agnostic_contextmanager: Callable[..., Any] = _agnostic()
"""The API's context-manager decorator whose managers also decorate async functions."""


# -- span-context-tuple ---------------------------------------------------------------------


def span_context_layout_problem(cls: type = SpanContext) -> str | None:
    """Why *cls* is not the tuple ``(trace_id, span_id, is_remote, trace_flags,
    trace_state, is_valid)`` with nothing outside it, or ``None`` when it is."""
    flags, state = TraceFlags(1), TraceState([("k", "v")])
    try:
        made = cls(0x1, 0x2, True, flags, state)
        if not isinstance(made, tuple):
            return f"{cls.__qualname__} is not a tuple"
        if tuple(made) != (1, 2, True, flags, state, True):
            return f"{cls.__qualname__} holds {tuple(made)!r}"
        if getattr(made, "__dict__", None):
            return f"{cls.__qualname__} keeps state outside its tuple"
        built: Any = tuple.__new__(cls, (3, 4, False, flags, state, True))
        read = tuple(getattr(built, f) for f in _FIELDS)
        if read != (3, 4, False, flags, state, True):
            return f"{cls.__qualname__} made from its tuple reads {read!r}"
    except Exception as exc:
        return repr(exc)
    return None


_layout_problem = span_context_layout_problem()
SPAN_CONTEXT_TUPLE = _layout_problem is None
"""Whether ``SpanContext`` may be built with ``tuple.__new__`` and read by position."""
if not SPAN_CONTEXT_TUPLE:
    fallback("span-context-tuple", "SpanContext's constructor and properties", _layout_problem)


def _construct(cls: type[SpanContext], fields: tuple[Any, ...]) -> SpanContext:
    trace_id, span_id, is_remote, flags, state, _valid = fields
    return cls(trace_id, span_id, is_remote, flags, state)


build_span_context: Callable[[type[SpanContext], tuple[Any, ...]], SpanContext] = (
    tuple.__new__ if SPAN_CONTEXT_TUPLE else _construct
)
"""``build_span_context(SpanContext, fields)``: a span context from its six fields
``(trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)``, without
re-validating ids valid by construction. Where the layout allows it this is
``tuple.__new__`` itself (one C call per span); otherwise the constructor."""

parent_fields: Callable[[SpanContext], tuple[int, TraceFlags, TraceState, bool]] = (
    operator.itemgetter(0, 3, 4, 5)
    if SPAN_CONTEXT_TUPLE
    else operator.attrgetter("trace_id", "trace_flags", "trace_state", "is_valid")
)
"""``(trace_id, trace_flags, trace_state, is_valid)`` of a span context, in one call."""

trace_flags: Callable[[SpanContext], TraceFlags] = (
    operator.itemgetter(3) if SPAN_CONTEXT_TUPLE else operator.attrgetter("trace_flags")
)
"""The ``trace_flags`` of a span context."""

unpack_span_context: Callable[
    [SpanContext], tuple[int, int, bool, TraceFlags, TraceState, bool]
] = operator.itemgetter(0, 1, 2, 3, 4, 5) if SPAN_CONTEXT_TUPLE else operator.attrgetter(*_FIELDS)
"""``(trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)`` in one call."""


# -- on-ending ------------------------------------------------------------------------------

ON_ENDING = "_on_ending"
_ON_ENDING_BASE = getattr(SpanProcessor, ON_ENDING, None)
if _ON_ENDING_BASE is None:
    fallback("on-ending", "only on_end is called", "SpanProcessor has no _on_ending")


def calls_on_ending(processor: SpanProcessor) -> bool:
    """Whether *processor* overrides the SDK's ``_on_ending`` hook (so a span calls it)."""
    if _ON_ENDING_BASE is None:
        return False
    own = getattr(type(processor), ON_ENDING, None)
    return own is not None and own is not _ON_ENDING_BASE


# -- span-fields ----------------------------------------------------------------------------

_SPAN_FIELDS = (
    "_name",
    "_context",
    "_kind",
    "_parent",
    "_start_time",
    "_end_time",
    "_attributes",
    "_events",
    "_links",
    "_status",
    "_resource",
    "_instrumentation_scope",
)
_PROPERTY_OF = {
    "_name": "name",
    "_context": "context",
    "_kind": "kind",
    "_parent": "parent",
    "_start_time": "start_time",
    "_end_time": "end_time",
    "_status": "status",
    "_resource": "resource",
    "_instrumentation_scope": "instrumentation_scope",
}


def span_fields_problem(readable: type = ReadableSpan, span: type = sdk_trace.Span) -> str | None:
    """Why *readable*'s data is not in the fields :class:`Span` writes (or its
    properties do not read them, or *span*'s ``__new__`` does more than refuse
    the bare class), or ``None`` when the lean span may be used."""
    try:
        ctx = SpanContext(1, 2, False, TraceFlags(1))
        values: dict[str, Any] = {
            "_name": "probe",
            "_context": ctx,
            "_kind": SpanKind.CLIENT,
            "_parent": SpanContext(1, 3, True, TraceFlags(1)),
            "_start_time": 1,
            "_end_time": 2,
            "_attributes": {"a": 1},
            "_events": (Event("e", timestamp=1),),
            "_links": (),
            "_status": Status(StatusCode.ERROR, "probe"),
            "_resource": Resource({"probe": "1"}),
            "_instrumentation_scope": InstrumentationScope("probe"),
        }
        built = readable(
            name=values["_name"],
            context=values["_context"],
            parent=values["_parent"],
            resource=values["_resource"],
            attributes=values["_attributes"],
            events=values["_events"],
            links=values["_links"],
            kind=values["_kind"],
            status=values["_status"],
            start_time=values["_start_time"],
            end_time=values["_end_time"],
            instrumentation_scope=values["_instrumentation_scope"],
        )
        fields = vars(built)
        for name in (*_SPAN_FIELDS, "_instrumentation_info"):
            if name not in fields:
                return f"{readable.__qualname__} has no field {name}"
        blank: Any = object.__new__(readable)
        vars(blank).update(values)
        for field, prop in _PROPERTY_OF.items():
            if getattr(blank, prop) is not values[field]:
                return f"{readable.__qualname__}.{prop} does not read {field}"
        if dict(blank.attributes or {}) != values["_attributes"]:
            return f"{readable.__qualname__}.attributes does not read _attributes"
        if tuple(blank.events) != values["_events"] or tuple(blank.links) != ():
            return f"{readable.__qualname__}.events/links do not read _events/_links"

        class Probe(span):  # type: ignore[misc]
            pass

        new: Any = span.__new__
        made = new(Probe)
        if type(made) is not Probe or vars(made):
            return f"{span.__qualname__}.__new__ does more than refuse the bare class"
    except Exception as exc:
        return repr(exc)
    return None


_fields_problem = span_fields_problem()
LEAN_SPANS = _fields_problem is None
"""Whether limelight's :class:`Span` may be used (otherwise the SDK's own spans are)."""
if not LEAN_SPANS:
    fallback("span-fields", "the SDK's own tracer and spans", _fields_problem)


def _clean_slow(value: Any, max_len: int | None) -> tuple[bool, Any]:
    """The SDK's own cleaning for values outside the fast path (sequences, bytes, ...)."""
    probe = BoundedAttributes(None, {"v": value}, immutable=False, max_value_len=max_len)
    if "v" not in probe:
        return False, None
    return True, probe["v"]


class Span(sdk_trace.Span):
    """A recording span; see the module documentation.

    A subclass of the SDK's ``Span`` (so ``isinstance`` checks and processor
    signatures hold) that never runs the SDK constructor and overrides every
    method that touches the SDK's internal containers. Made by :func:`new_span`
    then ``__init__`` (the SDK's ``__new__`` guard is a Python call per span);
    *attributes* are the sampler's, *links* and *start_time* as given to
    ``start_span``.
    """

    # fields most spans never change, read from the class until they do
    _instrumentation_info = None
    _end_time: int | None = None
    _events: Sequence[Event] = ()
    _links: Sequence[trace_api.Link] = ()
    _status = _UNSET
    _dropped_attributes = 0
    _record_exception = True
    _set_status_on_exception = True

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        tracer: Tracer,
        record_exception: bool,
        set_status_on_exception: bool,
        attributes: types.Attributes,
        links: Sequence[trace_api.Link] | None,
        start_time: int | None,
    ) -> None:
        # ReadableSpan's fields, set directly (its __init__ would build a Resource)
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_scope = tracer.instrumentation_scope
        self._parent = parent
        self._attributes: dict[str, Any] = {}
        self._resource = tracer.resource
        self._tracer = tracer
        self._limits = tracer.limits
        self._lock = _new_lock()
        if not record_exception:  # both true on almost every span: the class's defaults
            self._record_exception = False
        if not set_status_on_exception:
            self._set_status_on_exception = False
        if attributes:
            _store_all(self, attributes)
        if links:
            self._set_links(links)
        self._start_time = start_time if start_time is not None else time_ns()

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'

    # -- ReadableSpan -------------------------------------------------------------------

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes

    @property
    def dropped_events(self) -> int:
        events = self._events
        return events.dropped if isinstance(events, BoundedList) else 0

    @property
    def dropped_links(self) -> int:
        links = self._links
        return links.dropped if isinstance(links, BoundedList) else 0

    # -- attributes ---------------------------------------------------------------------

    def _put(self, key: str, value: object) -> None:
        """Validate and store one attribute (the caller holds the lock)."""
        if not key or type(key) is not str:
            logger.warning("invalid attribute key %r: must be a non-empty string", key)
            self._dropped_attributes += 1
            return
        if type(value) in _SIMPLE:
            if isinstance(value, str):
                limit = self._limits.max_span_attribute_length
                if limit is not None and len(value) > limit:
                    value = value[:limit]
        else:
            ok, value = _clean_slow(value, self._limits.max_span_attribute_length)
            if not ok:
                self._dropped_attributes += 1
                return
        attributes = self._attributes
        if key in attributes:
            del attributes[key]
        else:
            limit = self._limits.max_span_attributes
            if limit is not None and len(attributes) >= limit:
                if limit == 0:
                    self._dropped_attributes += 1
                    return
                del attributes[next(iter(attributes))]
                self._dropped_attributes += 1
        attributes[key] = value

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        with self._lock:
            if self._end_time is not None:
                logger.warning("Setting attribute on ended span.")
                return
            self._put(key, value)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        with self._lock:
            if self._end_time is not None:
                logger.warning("Setting attribute on ended span.")
                return
            _store_all(self, attributes)

    # -- events and links ---------------------------------------------------------------

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        limits = self._limits
        event = Event(
            name=name,
            attributes=BoundedAttributes(
                limits.max_event_attributes,
                attributes,
                max_value_len=limits.max_attribute_length,
                immutable=True,
            ),
            timestamp=timestamp,
        )
        with self._lock:
            if self._end_time is not None:
                ended = True
            else:
                ended = False
                if not isinstance(self._events, BoundedList):
                    self._events = BoundedList(limits.max_events)
                self._events.append(event)
        if ended:
            logger.warning("Tried calling %s on an ended span.", "_add_event")

    def _link(self, context: SpanContext, attributes: types.Attributes) -> trace_api.Link | None:
        if not (context and (attributes or context.is_valid or context.trace_state)):
            return None
        if not attributes:  # most links: one shared empty, immutable table
            return _Link(context, _NO_LINK_ATTRIBUTES)
        limits = self._limits
        return _Link(
            context,
            BoundedAttributes(
                limits.max_link_attributes,
                attributes,
                max_value_len=limits.max_attribute_length,
                immutable=True,
            ),
        )

    def _set_links(self, links: Sequence[trace_api.Link]) -> None:
        if (type(links) is list or type(links) is tuple) and len(links) == 1:
            # the usual single link, without the comprehension's call
            only = links[0]
            made = self._link(only.context, only.attributes) if only else None
            if made is not None:
                limit = self._limits.max_links
                self._links = (
                    (made,) if limit is None or limit >= 1 else BoundedList.from_seq(limit, [made])
                )
            return
        link = self._link
        valid = [made for lk in links if lk and (made := link(lk.context, lk.attributes))]
        if valid:
            limit = self._limits.max_links
            # within the limit nothing can be dropped or added after the end: a tuple
            # (add_link turns it into the SDK's bounded list first)
            self._links = (
                tuple(valid)
                if limit is None or len(valid) <= limit
                else BoundedList.from_seq(limit, valid)
            )

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        link = self._link(context, attributes)
        if link is None:
            return
        with self._lock:
            if self._end_time is not None:
                ended = True
            else:
                ended = False
                if not isinstance(self._links, BoundedList):
                    self._links = BoundedList.from_seq(self._limits.max_links, self._links)
                self._links.append(link)
        if ended:
            logger.warning("Tried calling %s on an ended span.", "_add_link")

    # -- the rest of the Span API ------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value]

    def update_name(self, name: str) -> None:
        with self._lock:
            if self._end_time is None:
                self._name = name
                return
        logger.warning("Tried calling %s on an ended span.", "update_name")

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                ended = True
            else:
                ended = False
                if self._status.status_code is StatusCode.OK:
                    return
                if isinstance(status, Status):
                    if status.status_code is StatusCode.UNSET:
                        return
                    if description is not None:
                        logger.warning(
                            "Description %s ignored. Use either `Status` or "
                            "`(StatusCode, Description)`",
                            description,
                        )
                    self._status = status
                elif isinstance(status, StatusCode):
                    if status is StatusCode.UNSET:
                        return
                    self._status = Status(status, description)
        if ended:
            logger.warning("Tried calling %s on an ended span.", "set_status")

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        event_attributes: dict[str, types.AnyValue] = {
            "exception.type": error_type(exception),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event_attributes.update(attributes)
        self.add_event("exception", event_attributes, timestamp)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._start_time is None:
                raise RuntimeError("Calling end() on a not started span.")
            if self._end_time is not None:
                ended = True
            else:
                ended = False
                self._end_time = end_time if end_time is not None else time_ns()
        if ended:
            logger.warning("Calling end() on an ended span.")
            return
        provider = self._tracer.provider
        for processor in provider.on_ending:
            try:
                processor._on_ending(self)
            except Exception as exc:
                report_failure("spans", f"{type(processor).__qualname__}._on_ending", exc)
        for processor in provider.ending:
            try:
                processor.on_end(self)
            except Exception as exc:
                report_failure("spans", f"{type(processor).__qualname__}.on_end", exc)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self.is_recording():
            if self._record_exception:
                self.record_exception(exception=exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        # what the API's Span.__exit__ does (the SDK's would record the exception again)
        self.end()


def _store_all(span: Span, attributes: Mapping[str, Any]) -> None:
    """Store several attributes; new keys with short simple values take the inlined path."""
    stored = span._attributes
    limits = span._limits
    count_limit = limits.max_span_attributes
    if count_limit is not None and len(stored) + len(attributes) > count_limit:
        for key, value in attributes.items():
            span._put(key, value)
        return
    length_limit = limits.max_span_attribute_length
    if (
        length_limit is None
        and type(attributes) is dict
        and _SIMPLE_TYPES.issuperset(map(type, attributes.values()))
        and _STR_TYPE.issuperset(map(type, attributes))
        and "" not in attributes
        and (not stored or stored.keys().isdisjoint(attributes))
    ):
        # every key a new non-empty str, every value simple, no limit to apply:
        # checked and copied without a Python loop
        if stored:
            stored.update(attributes)
        else:
            span._attributes = attributes.copy()
        return
    for key, value in attributes.items():
        kind = type(value)
        if (
            type(key) is str
            and key
            and key not in stored
            and kind in _SIMPLE
            and (kind is not str or length_limit is None or len(value) <= length_limit)
        ):
            stored[key] = value
        else:
            span._put(key, value)


own_context: Callable[[Span], SpanContext] = operator.attrgetter("_context")
"""The span context of a :class:`Span` (what its ``get_span_context`` returns, the
field its ``__init__`` sets), read without a Python call."""

new_span: Callable[[], Span] = functools.partial(object.__new__, Span)
"""A :class:`Span` not yet initialised (call its ``__init__``), made without the
SDK ``Span.__new__`` guard."""
