"""Trace context across process boundaries, for plugin authors.

Every surface propagates through the configured global propagator
(``OTEL_PROPAGATORS``; W3C Trace Context and Baggage by default), never a
hard-coded one: extract with ``opentelemetry.propagate.extract`` (or, for a
header table, :func:`extract_headers`) and inject with :func:`inject_span`,
which writes the headers of a started span at the cost of the default
propagators' fast path and is exactly ``opentelemetry.propagate.inject`` with
any other propagator; :func:`extract_headers` is likewise exactly the global
propagator's ``extract``, with a fast path for the default propagators.

:class:`W3CTraceContextPropagator` is limelight's ``tracecontext``
propagator (W3C Trace Context Level 2); the parsing and formatting functions
are the ones it uses, for carriers that are not a text map (message
headers with binary values). :func:`unpack_span_context` gives a span
context's six fields in one call, for code that formats them itself.

Environment variables are a carrier of their own (OpenTelemetry's
``env-carriers``): :func:`inject_environ` returns a copy of an environment
with the context set for a child process (``TRACEPARENT``, ``TRACESTATE``,
``BAGGAGE`` with the default propagators), :func:`extract_environ` reads one
back; :class:`EnvironmentGetter` and :class:`EnvironmentSetter` are their
carrier accessors for a propagator's ``extract`` and ``inject``.
"""

from __future__ import annotations

from ._environ import (
    EnvironmentGetter,
    EnvironmentSetter,
    environ_variables,
    extract_environ,
    inject_environ,
)
from ._propagation import build_propagator, extract_headers, inject_span, known_propagators
from ._sdk.spans import unpack_span_context
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
    "EnvironmentGetter",
    "EnvironmentSetter",
    "HeaderGetter",
    "W3CTraceContextPropagator",
    "build_propagator",
    "environ_variables",
    "extract_environ",
    "extract_headers",
    "format_traceparent",
    "header_getter",
    "inject_environ",
    "inject_span",
    "known_propagators",
    "parse_traceparent",
    "parse_tracestate",
    "unpack_span_context",
]
