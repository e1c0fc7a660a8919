"""Trace context across process boundaries, for plugin authors.

Every surface propagates through the configured global propagator
(``OTEL_PROPAGATORS``; W3C Trace Context and Baggage by default), never a
hard-coded one: extract with ``opentelemetry.propagate.extract`` and inject
with :func:`inject_span`, which writes the headers of a started span at the
cost of the default propagators' fast path and is exactly
``opentelemetry.propagate.inject`` with any other propagator.

:class:`W3CTraceContextPropagator` is limelight's ``tracecontext``
propagator (W3C Trace Context Level 2); the parsing and formatting functions
are the ones it uses, for carriers that are not a text map (environment
variables, message headers with binary values).
"""

from __future__ import annotations

from ._propagation import build_propagator, inject_span, known_propagators
from ._w3c import (
    FLAG_RANDOM_TRACE_ID,
    FLAG_SAMPLED,
    TRACEPARENT,
    TRACESTATE,
    HeaderGetter,
    W3CTraceContextPropagator,
    format_traceparent,
    header_getter,
    parse_traceparent,
    parse_tracestate,
)

__all__ = [
    "FLAG_RANDOM_TRACE_ID",
    "FLAG_SAMPLED",
    "TRACEPARENT",
    "TRACESTATE",
    "HeaderGetter",
    "W3CTraceContextPropagator",
    "build_propagator",
    "format_traceparent",
    "header_getter",
    "inject_span",
    "known_propagators",
    "parse_traceparent",
    "parse_tracestate",
]
