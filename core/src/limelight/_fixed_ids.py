"""Spans whose span id the caller chooses: for work that is re-executed (a replayed
workflow) and must name the same span every time it runs.

:func:`start_span_with_id` starts a span through the telemetry's own tracer (same
sampler, limits, resource and processors), the id generator alone replaced for
that one span, so no other span of the process pays anything for it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import SpanKind
from opentelemetry.util import types

from ._spans import Tracer

__all__ = ["start_span_with_id"]

_MAX_TRACE_ID = 2**128 - 1
_MAX_SPAN_ID = 2**64 - 1


class _FixedIds(IdGenerator):
    """Hands out one span id and, for a span without a parent, one trace id."""

    def __init__(self, span_id: int, trace_id: int | None) -> None:
        self.span_id = span_id
        self.trace_id = trace_id

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        if self.trace_id is None:
            return RandomIdGenerator().generate_trace_id()
        return self.trace_id


class _ProviderView:
    """A tracer provider with another id generator, every other attribute the provider's."""

    def __init__(self, provider: Any, ids: IdGenerator) -> None:
        self._provider = provider
        self.id_generator = ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)


def start_span_with_id(
    tracer: trace_api.Tracer,
    name: str,
    span_id: int,
    *,
    trace_id: int | None = None,
    context: context_api.Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: types.Attributes = None,
    links: Sequence[trace_api.Link] | None = (),
    start_time: int | None = None,
) -> trace_api.Span:
    """Start a span whose span id is *span_id*, as ``tracer.start_span`` would otherwise.

    The trace id is the parent's (from *context*, or the current context when
    ``None``); a span without a parent gets *trace_id* (a random one when
    ``None``). Sampling follows the tracer's sampler, so a span that is not
    sampled is a non-recording span carrying these ids. A tracer that is not the
    SDK's (the no-op tracer of a stopped telemetry) starts its usual span.

    :raises ValueError: *span_id* or *trace_id* is out of range (zero included).
    """
    if not 0 < span_id <= _MAX_SPAN_ID:
        raise ValueError(f"span id {span_id!r} is not a non-zero 64-bit integer")
    if trace_id is not None and not 0 < trace_id <= _MAX_TRACE_ID:
        raise ValueError(f"trace id {trace_id!r} is not a non-zero 128-bit integer")
    ids = _FixedIds(span_id, trace_id)
    fixed: trace_api.Tracer
    if isinstance(tracer, Tracer):
        fixed = Tracer(_ProviderView(tracer.provider, ids), tracer.instrumentation_scope)  # type: ignore[arg-type]
    elif isinstance(tracer, sdk_trace.Tracer):
        fixed = copy.copy(tracer)
        fixed.id_generator = ids
    else:
        fixed = tracer
    return fixed.start_span(
        name, context, kind=kind, attributes=attributes, links=links, start_time=start_time
    )
