"""A lean span for the SDK pipeline: same data, same processors, far less work per span.

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
- events and links use the SDK's own bounded types, created on first use;
- status, ``update_name``, ``record_exception``, ``end`` (idempotent, with the
  SDK's warnings) and the context-manager protocol follow the SDK.

:class:`TracerProvider` is the SDK provider whose tracers create these spans;
sampling, id generation, resource, limits and span processors are the SDK's.
A processor that raises is reported once and the span still reaches the others
(the SDK would propagate the exception into the instrumented code).
"""

from __future__ import annotations

import logging
import random as _random
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import Event, SpanLimits, SpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

from ._context import SPAN_KEY as _SPAN_KEY
from ._context import current_span
from ._failures import report_failure
from ._tracing import ParentBasedAlwaysOn

__all__ = ["Span", "Tracer", "TracerProvider", "error_type"]

logger = logging.getLogger("limelight.spans")

try:  # the API's context manager that also decorates async functions
    from opentelemetry.util._decorator import _agnosticcontextmanager as _span_cm
except ImportError:  # pragma: no cover - older or newer API layouts
    from contextlib import contextmanager as _span_cm  # type: ignore[assignment]

_UNSET = Status(StatusCode.UNSET)
_NO_TRACE_STATE = trace_api.DEFAULT_TRACE_STATE
_MAX_TRACE_ID = 2**128 - 1
_MAX_SPAN_ID = 2**64 - 1
_tuple_new = tuple.__new__
_object_new = object.__new__
_INVALID_SPAN = trace_api.INVALID_SPAN
_ALWAYS_ON = sdk_trace.sampling.ALWAYS_ON
_ALWAYS_OFF = sdk_trace.sampling.ALWAYS_OFF
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
# (sampled, random trace id) -> flags, built once
_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else 0) | (_RANDOM if random else 0)
    )
    for sampled in (False, True)
    for random in (False, True)
}
_SIMPLE = (str, bool, int, float)
_SIMPLE_TYPES = frozenset(_SIMPLE)
_STR_TYPE = frozenset((str,))


def error_type(exc: BaseException) -> str:
    """The ``error.type`` of an exception: its fully qualified class name.

    As the semantic conventions ask (``shop.PaymentError``); a built-in
    exception keeps its bare name (``KeyError``). Every surface and the
    ``exception.type`` of recorded exceptions use it, so one failure reads the
    same everywhere.
    """
    cls = type(exc)
    module = cls.__module__
    return (
        cls.__qualname__ if not module or module == "builtins" else f"{module}.{cls.__qualname__}"
    )


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
    method that touches the SDK's internal containers.
    """

    # fields most spans never change, read from the class until they do
    _instrumentation_info = None
    _end_time: int | None = None
    _events: Sequence[Event] = ()
    _links: Sequence[trace_api.Link] = ()
    _status = _UNSET
    _dropped_attributes = 0

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        tracer: Tracer,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        # ReadableSpan's fields, set directly (its __init__ would build a Resource)
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_scope = tracer.instrumentation_scope
        self._parent = parent
        self._start_time: int | None = None
        self._attributes: dict[str, Any] = {}
        self._resource = tracer.resource
        self._tracer = tracer
        self._limits = tracer.limits
        self._lock = threading.Lock()
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception

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
        if not (context and (context.is_valid or attributes or context.trace_state)):
            return None
        limits = self._limits
        return trace_api.Link(
            context,
            BoundedAttributes(
                limits.max_link_attributes,
                attributes,
                max_value_len=limits.max_attribute_length,
                immutable=True,
            ),
        )

    def _set_links(self, links: Sequence[trace_api.Link]) -> None:
        valid = [
            link
            for link in (self._link(lk.context, lk.attributes) for lk in links if lk)
            if link is not None
        ]
        if valid:
            self._links = BoundedList.from_seq(self._limits.max_links, valid)

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
                    self._links = BoundedList(self._limits.max_links)
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
        provider = self._tracer._provider
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
        super().__exit__(exc_type, exc_val, exc_tb)


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


class Tracer(trace_api.Tracer):
    """Starts :class:`Span` objects; sampling and ids follow the SDK's tracer."""

    def __init__(self, provider: TracerProvider, scope: InstrumentationScope) -> None:
        self._provider = provider
        self.instrumentation_scope = scope
        self.resource = provider.resource
        self.limits = provider.span_limits

    @_span_cm
    def start_as_current_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace_api.Span]:
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        with trace_api.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace_api.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        provider = self._provider
        # the parent, as trace_api.get_current_span(context) finds it
        if context is None:
            held = current_span()
        elif _SPAN_KEY is None:
            held = trace_api.get_current_span(context)
        else:
            value = context.get(_SPAN_KEY)
            held = value if isinstance(value, trace_api.Span) else _INVALID_SPAN
        found: SpanContext | None = None if held is _INVALID_SPAN else held.get_span_context()
        if found is not None and not isinstance(found, SpanContext):
            raise TypeError("parent_span_context must be a SpanContext or None.")
        ids = provider.id_generator
        fast_ids = type(ids) is RandomIdGenerator
        parent: SpanContext | None = found
        # a SpanContext is the tuple (trace_id, span_id, is_remote, trace_flags,
        # trace_state, is_valid): read by position, not through six properties
        if found is None or not found[5]:
            parent = None
            if fast_ids:  # RandomIdGenerator.generate_trace_id, without two calls
                trace_id = _random.getrandbits(128)
                while not trace_id:
                    trace_id = _random.getrandbits(128)
                random_trace_id = bool(_RANDOM)
            else:
                trace_id = ids.generate_trace_id()
                is_random = getattr(ids, "is_trace_id_random", None)
                random_trace_id = bool(_RANDOM) and is_random is not None and is_random()
        else:
            trace_id = found[0]
            random_trace_id = bool(_RANDOM) and bool(found[3] & _RANDOM)
        sampler = provider.sampler
        initial: types.Attributes
        trace_state: trace_api.TraceState | None
        if type(sampler) is ParentBasedAlwaysOn:
            # the default sampler's decision, without its lookup of the parent again
            sampled = recording = parent is None or bool(parent[3] & 1)
            trace_state = None if parent is None else parent[4]
            initial = attributes
        elif sampler is _ALWAYS_ON or sampler is _ALWAYS_OFF:
            # the SDK's static samplers: a fixed decision, the parent's trace state kept
            sampled = recording = sampler is _ALWAYS_ON
            trace_state = None if parent is None else parent[4]
            initial = attributes
        else:
            result = sampler.should_sample(context, trace_id, name, kind, attributes, links or ())
            sampled = bool(result.decision.is_sampled())  # type: ignore[no-untyped-call]
            recording = bool(result.decision.is_recording())  # type: ignore[no-untyped-call]
            trace_state = result.trace_state
            initial = result.attributes
        if fast_ids:
            span_id = _random.getrandbits(64)
            while not span_id:
                span_id = _random.getrandbits(64)
        else:
            span_id = ids.generate_span_id()
        # the fields SpanContext.__new__ would set, the ids being valid by construction
        span_context: SpanContext = _tuple_new(
            SpanContext,
            (
                trace_id,
                span_id,
                False,
                _FLAGS[sampled, bool(random_trace_id)],
                _NO_TRACE_STATE if trace_state is None else trace_state,
                0 < trace_id <= _MAX_TRACE_ID and 0 < span_id <= _MAX_SPAN_ID,
            ),
        )
        if not recording:
            return trace_api.NonRecordingSpan(span_context)
        span: Span = _object_new(Span)  # not through the SDK's __new__ guard (a call)
        span.__init__(  # type: ignore[misc]
            name, span_context, parent, kind, self, record_exception, set_status_on_exception
        )
        if initial:
            _store_all(span, initial)
        if links:
            span._set_links(links)
        span._start_time = start_time if start_time is not None else time_ns()
        for processor in provider.starting:
            try:
                processor.on_start(span, parent_context=context)
            except Exception as exc:
                report_failure("spans", f"{type(processor).__qualname__}.on_start", exc)
        return span


def _overrides(processor: SpanProcessor, method: str) -> bool:
    base = getattr(SpanProcessor, method, None)
    own = getattr(type(processor), method, None)
    return own is not None and own is not base


class TracerProvider(sdk_trace.TracerProvider):
    """The SDK tracer provider, handing out tracers that create :class:`Span` objects.

    Every span processor added here sees every span; processors whose
    ``on_start`` is the base class no-op are not called at start.
    """

    def __init__(
        self,
        *,
        sampler: sdk_trace.sampling.Sampler | None = None,
        resource: Any = None,
        span_limits: SpanLimits | None = None,
    ) -> None:
        limits = span_limits or SpanLimits()
        super().__init__(
            sampler=sampler, resource=resource, shutdown_on_exit=False, span_limits=limits
        )
        self.span_limits = limits
        self.processors: tuple[SpanProcessor, ...] = ()
        self.starting: tuple[SpanProcessor, ...] = ()
        self.on_ending: tuple[SpanProcessor, ...] = ()
        self.ending: tuple[SpanProcessor, ...] = ()
        self._limelight_tracers: dict[InstrumentationScope, Tracer] = {}
        self._limelight_lock = threading.Lock()

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        with self._limelight_lock:
            self.processors = (*self.processors, span_processor)
            self.starting = tuple(p for p in self.processors if _overrides(p, "on_start"))
            self.on_ending = tuple(p for p in self.processors if _overrides(p, "_on_ending"))
            self.ending = tuple(p for p in self.processors if _overrides(p, "on_end"))

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace_api.Tracer:
        # OTEL_SDK_DISABLED is decided by the telemetry's configuration, which
        # builds no provider at all when it is set
        scope = InstrumentationScope(
            instrumenting_module_name or "",
            instrumenting_library_version or "",
            schema_url,
            attributes,
        )
        with self._limelight_lock:
            tracer = self._limelight_tracers.get(scope)
            if tracer is None:
                tracer = self._limelight_tracers[scope] = Tracer(self, scope)
        return tracer
