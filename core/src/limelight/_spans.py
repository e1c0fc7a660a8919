"""The tracer provider whose tracers start limelight's lean spans.

:class:`TracerProvider` is the SDK provider; sampling, id generation, resource,
limits and span processors are the SDK's. Its tracers start
:class:`~limelight._sdk.spans.Span` objects, the SDK's data model at a fraction
of the SDK span's cost (see :mod:`limelight._sdk.spans`, which also decides,
at import, whether the SDK release allows it: when it does not, the provider
hands out the SDK's own tracers). Processors whose ``on_start`` (or
``on_end``) is the base class no-op are not called.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401 (imported for its fork handlers, see below)
import random as _random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.util import types

from ._context import SPAN_KEY as _SPAN_KEY
from ._context import current_span
from ._failures import error_type, report_failure
from ._sdk.spans import (
    LEAN_SPANS,
    Span,
    agnostic_contextmanager,
    build_span_context,
    calls_on_ending,
    new_span,
    parent_fields,
)
from ._tracing import ParentBasedAlwaysOn

__all__ = ["Span", "Tracer", "TracerProvider", "error_type"]

_NO_TRACE_STATE = trace_api.DEFAULT_TRACE_STATE
_MAX_TRACE_ID = 2**128 - 1
_MAX_SPAN_ID = 2**64 - 1
_INVALID_SPAN = trace_api.INVALID_SPAN
# the spans a context usually holds, recognised without trace_api.Span's ABC check
_SPAN_TYPES = frozenset((Span, trace_api.NonRecordingSpan, sdk_trace.Span))
_ALWAYS_ON = sdk_trace.sampling.ALWAYS_ON
_ALWAYS_OFF = sdk_trace.sampling.ALWAYS_OFF
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
_HAS_RANDOM = bool(_RANDOM)
# (sampled, random trace id) -> flags, built once
_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else 0) | (_RANDOM if random else 0)
    )
    for sampled in (False, True)
    for random in (False, True)
}


class Tracer(trace_api.Tracer):
    """Starts :class:`Span` objects; sampling and ids follow the SDK's tracer."""

    def __init__(self, provider: TracerProvider, scope: InstrumentationScope) -> None:
        self.provider = provider
        self.instrumentation_scope = scope
        self.resource = provider.resource
        self.limits = provider.span_limits

    @agnostic_contextmanager
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
        provider = self.provider
        # the parent, as trace_api.get_current_span(context) finds it
        if context is None:
            held = current_span()
        elif _SPAN_KEY is None:
            held = trace_api.get_current_span(context)
        else:
            value = context.get(_SPAN_KEY)
            if value is None:  # a context without a span: a root (no ABC check)
                held = _INVALID_SPAN
            elif type(value) in _SPAN_TYPES or isinstance(value, trace_api.Span):
                held = value  # type: ignore[assignment]
            else:
                held = _INVALID_SPAN
        found: SpanContext | None = None if held is _INVALID_SPAN else held.get_span_context()
        if found is not None and not isinstance(found, SpanContext):
            raise TypeError("parent_span_context must be a SpanContext or None.")
        ids = provider.id_generator
        fast_ids = type(ids) is RandomIdGenerator
        parent: SpanContext | None = None
        if found is not None:
            # the parent's fields in one call, not through four properties
            parent_trace_id, parent_flags, parent_state, valid = parent_fields(found)
            if valid:
                parent = found
        if parent is None:
            if fast_ids:  # RandomIdGenerator.generate_trace_id, without two calls
                trace_id = _random.getrandbits(128)
                while not trace_id:
                    trace_id = _random.getrandbits(128)
                random_trace_id = _HAS_RANDOM
            else:
                trace_id = ids.generate_trace_id()
                is_random = getattr(ids, "is_trace_id_random", None)
                random_trace_id = _HAS_RANDOM and is_random is not None and bool(is_random())
        else:
            trace_id = parent_trace_id
            random_trace_id = _HAS_RANDOM and bool(parent_flags & _RANDOM)
        sampler = provider.sampler
        initial: types.Attributes
        trace_state: trace_api.TraceState | None
        if type(sampler) is ParentBasedAlwaysOn:
            # the default sampler's decision, without its lookup of the parent again
            sampled = recording = parent is None or bool(parent_flags & 1)
            trace_state = None if parent is None else parent_state
            initial = attributes
        elif sampler is _ALWAYS_ON or sampler is _ALWAYS_OFF:
            # the SDK's static samplers: a fixed decision, the parent's trace state kept
            sampled = recording = sampler is _ALWAYS_ON
            trace_state = None if parent is None else parent_state
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
            # both ids non-zero and in range by construction (a parent's trace id is valid)
            valid_ids = True
        else:
            span_id = ids.generate_span_id()
            valid_ids = 0 < trace_id <= _MAX_TRACE_ID and 0 < span_id <= _MAX_SPAN_ID
        # the fields SpanContext.__new__ would set, the ids being valid by construction
        span_context = build_span_context(
            SpanContext,
            (
                trace_id,
                span_id,
                False,
                _FLAGS[sampled, random_trace_id],
                _NO_TRACE_STATE if trace_state is None else trace_state,
                valid_ids,
            ),
        )
        if not recording:
            return trace_api.NonRecordingSpan(span_context)
        span = new_span()
        span.__init__(  # type: ignore[misc]
            name,
            span_context,
            parent,
            kind,
            self,
            record_exception,
            set_status_on_exception,
            initial,
            links,
            start_time,
        )
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


# opentelemetry-sdk 1.45.2's TracerProvider registers an after-fork handler that detects
# resources through a ThreadPoolExecutor in the child. concurrent.futures.thread holds its
# global lock across a fork and resets it in the child from its own after-fork handler;
# the child's handlers run in registration order, so when the provider registers first,
# its submit() waits forever on that lock and every forked child hangs. Importing
# concurrent.futures.thread here, before any provider of ours exists, orders the reset
# first.


class TracerProvider(sdk_trace.TracerProvider):
    """The SDK tracer provider, handing out tracers that create :class:`Span` objects
    (the SDK's own tracers when ``limelight._sdk.spans.LEAN_SPANS`` is false).

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
            self.on_ending = tuple(p for p in self.processors if calls_on_ending(p))
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
        if not LEAN_SPANS:  # this SDK release's spans are not the ones Span assumes
            return super().get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
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
