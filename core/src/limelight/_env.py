"""Every environment variable the core reads, declared once."""

from __future__ import annotations

import re
from typing import Any

from limelight_hookspecs import (
    MAX_DURATION_MILLIS,
    MAX_SIZE,
    EnvVar,
    RangedParser,
    parse_bool,
    parse_float,
    parse_int,
    parse_key_values,
    parse_list,
    parse_millis,
    parse_otel_bool,
    parse_str,
    parse_url,
)

SAMPLER_NAMES: tuple[str, ...] = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "parentbased_jaeger_remote",
    "jaeger_remote",
    "xray",
)
"""Sampler names defined by the OpenTelemetry specification."""

OTLP_PROTOCOLS: tuple[str, ...] = ("grpc", "http/protobuf", "http/json")
"""Values of ``OTEL_EXPORTER_OTLP_PROTOCOL``."""


def _parse_sampler(raw: str) -> str:
    return raw.strip().lower()


def _parse_protocol(raw: str) -> str:
    value = raw.strip().lower()
    if value not in OTLP_PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(OTLP_PROTOCOLS)}")
    return value


def _parse_compression(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("gzip", "none"):
        raise ValueError("expected gzip or none")
    return value


_parse_millis = parse_millis()
"""Milliseconds one call may take, 0 to a day (0: do not wait)."""

_parse_interval_millis = parse_millis(positive=True)
"""Milliseconds between two runs of a worker, above 0 (0 would make it spin; the
OpenTelemetry SDK rejects it too) and at most a day."""

_parse_endpoint = parse_url(schemeless=True)
"""An OTLP endpoint: an http(s) URL with a host and a valid port, or host:port
(gRPC); whether a scheme is needed depends on the protocol (see _config)."""

_parse_size = parse_int(minimum=1, maximum=MAX_SIZE)


def _parse_wait_millis(raw: str) -> float:
    """Milliseconds a caller may be held, at most a minute."""
    return parse_float(minimum=0, maximum=60_000)(raw) / 1000.0


def _parse_names(raw: str) -> tuple[str, ...]:
    return tuple(name.lower() for name in parse_list(raw))


def _parse_namespace(raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", value):
        raise ValueError("must be a valid metric name prefix ([a-zA-Z_][a-zA-Z0-9_]*)")
    return value


OTEL_SDK_DISABLED = EnvVar(
    "OTEL_SDK_DISABLED",
    False,
    parse_otel_bool,
    "Disable every signal: no spans, no metrics, no export. Instrumented code runs untouched. "
    "Only true (any case) disables, as the specification says; other values are reported.",
    "true",
)
OTEL_SERVICE_NAME = EnvVar(
    "OTEL_SERVICE_NAME",
    "",
    parse_str,
    "The service.name resource attribute; wins over service.name in OTEL_RESOURCE_ATTRIBUTES. "
    "Defaults to unknown_service:<executable>.",
    "checkout",
)
OTEL_RESOURCE_ATTRIBUTES = EnvVar[tuple[tuple[str, str], ...]](
    "OTEL_RESOURCE_ATTRIBUTES",
    (),
    parse_key_values,
    "Resource attributes as key=value pairs separated by commas, values percent-encoded. "
    "A malformed value is discarded whole, as the specification says.",
    "deployment.environment.name=prod,service.version=1.4.2",
)
OTEL_TRACES_SAMPLER = EnvVar(
    "OTEL_TRACES_SAMPLER",
    "parentbased_always_on",
    _parse_sampler,
    "The sampler: " + ", ".join(SAMPLER_NAMES[:6]) + ", or a name registered in the "
    "opentelemetry_traces_sampler entry-point group.",
    "parentbased_traceidratio",
)
OTEL_TRACES_SAMPLER_ARG = EnvVar(
    "OTEL_TRACES_SAMPLER_ARG",
    "",
    parse_str,
    "The sampler argument: the ratio in [0, 1] for the traceidratio samplers (default 1.0).",
    "0.25",
)
OTEL_PROPAGATORS = EnvVar[tuple[str, ...]](
    "OTEL_PROPAGATORS",
    ("tracecontext", "baggage"),
    _parse_names,
    "Propagators used by every surface, in order: tracecontext, baggage, b3, b3multi, jaeger, "
    "or any name in the opentelemetry_propagator entry-point group; none for no propagation.",
    "tracecontext,baggage",
)
TRACEPARENT = EnvVar(
    "TRACEPARENT",
    "",
    parse_str,
    "The W3C traceparent handed down by the process that started this one (OpenTelemetry's "
    "environment carrier). Read once at start with the configured propagators, never written "
    "to this process's environment; see LIMELIGHT_CONTEXT_FROM_ENV for which spans it parents.",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
)
TRACESTATE = EnvVar(
    "TRACESTATE",
    "",
    parse_str,
    "The W3C tracestate that goes with TRACEPARENT.",
    "congo=t61rcWkgMzE",
)
BAGGAGE = EnvVar(
    "BAGGAGE",
    "",
    parse_str,
    "W3C baggage handed down by the process that started this one, read with TRACEPARENT.",
    "tenant=acme",
)
LIMELIGHT_CONTEXT_FROM_ENV = EnvVar(
    "LIMELIGHT_CONTEXT_FROM_ENV",
    True,
    parse_bool,
    "Take the context found in the environment at start (TRACEPARENT, TRACESTATE, BAGGAGE, "
    "or the variables of the configured propagators) as the current context of the thread "
    "that starts telemetry, so the spans it makes without another parent continue the trace "
    "of the process that started this one. Set false for a long-lived service that should "
    "not join the trace of whatever launched it.",
    "false",
)
OTEL_TRACES_EXPORTER = EnvVar[tuple[str, ...] | None](
    "OTEL_TRACES_EXPORTER",
    None,
    _parse_names,
    "Exporter plugins allowed to export spans (otlp, console, ...); none for none. "
    "Unset means every installed exporter plugin.",
    "otlp",
)
OTEL_METRICS_EXPORTER = EnvVar[tuple[str, ...] | None](
    "OTEL_METRICS_EXPORTER",
    None,
    _parse_names,
    "Exporter plugins allowed to export metrics (prometheus, otlp, console, ...); none for none. "
    "Unset means every installed exporter plugin.",
    "prometheus,otlp",
)
OTEL_LOGS_EXPORTER = EnvVar[tuple[str, ...] | None](
    "OTEL_LOGS_EXPORTER",
    None,
    _parse_names,
    "Exporter plugins allowed to export log records (otlp, ...); none for none. Unset means "
    "every installed exporter plugin that takes log records.",
    "otlp",
)


def _otlp(signal: str) -> dict[str, EnvVar[Any]]:
    infix = f"{signal.upper()}_" if signal else ""
    which = f"for {signal}" if signal else "for every signal (unless overridden per signal)"
    return {
        "endpoint": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}ENDPOINT",
            "",
            _parse_endpoint,
            f"OTLP endpoint {which}: an http:// or https:// URL (host:port for grpc). "
            + (
                "Used as given (include the /v1/... path for HTTP)."
                if signal
                else "For HTTP the signal path (/v1/traces, /v1/metrics, /v1/logs) is appended. "
                "Default http://localhost:4318 (http) or http://localhost:4317 (grpc)."
            ),
            "http://collector:4318" if not signal else f"http://collector:4318/v1/{signal}",
            default_text=(
                "(from OTEL_EXPORTER_OTLP_ENDPOINT)"
                if signal
                else "http://localhost:4318 (http) or http://localhost:4317 (grpc)"
            ),
        ),
        "protocol": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}PROTOCOL",
            "",
            _parse_protocol,
            f"OTLP transport {which}: grpc, http/protobuf (default) or http/json.",
            "grpc",
            default_text="http/protobuf",
        ),
        "headers": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}HEADERS",
            (),
            parse_key_values,
            f"Extra request headers {which}, key=value pairs, values percent-encoded.",
            "api-key=secret",
        ),
        "insecure": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}INSECURE",
            None,
            parse_otel_bool,
            f"gRPC without TLS {which} (default: decided by the endpoint scheme).",
            "true",
            default_text="(plaintext for an http:// endpoint, TLS otherwise)",
        ),
        "timeout": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}TIMEOUT",
            None,
            _parse_millis,
            f"Milliseconds one export may take {which} (default 10000).",
            "5000",
            default_text="10000",
        ),
        "compression": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}COMPRESSION",
            "",
            _parse_compression,
            f"Payload compression {which}: gzip or none (default).",
            "gzip",
            default_text="none",
        ),
        "certificate": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}CERTIFICATE",
            "",
            parse_str,
            f"Trusted CA certificate file {which}.",
            "/etc/ssl/collector-ca.pem",
        ),
        "client_key": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}CLIENT_KEY",
            "",
            parse_str,
            f"Client private key file for mTLS {which}.",
            "/etc/ssl/client.key",
        ),
        "client_certificate": EnvVar(
            f"OTEL_EXPORTER_OTLP_{infix}CLIENT_CERTIFICATE",
            "",
            parse_str,
            f"Client certificate file for mTLS {which}.",
            "/etc/ssl/client.pem",
        ),
    }


OTLP_GENERIC = _otlp("")
OTLP_TRACES = _otlp("traces")
OTLP_METRICS = _otlp("metrics")
OTLP_LOGS = _otlp("logs")

OTEL_BSP_SCHEDULE_DELAY = EnvVar(
    "OTEL_BSP_SCHEDULE_DELAY",
    5.0,
    _parse_interval_millis,
    "Milliseconds between two span exports.",
    "1000",
    default_text="5000",
)
OTEL_BSP_EXPORT_TIMEOUT = EnvVar(
    "OTEL_BSP_EXPORT_TIMEOUT",
    30.0,
    _parse_millis,
    "Milliseconds one span export may take.",
    "10000",
    default_text="30000",
)
OTEL_BSP_MAX_QUEUE_SIZE = EnvVar(
    "OTEL_BSP_MAX_QUEUE_SIZE",
    2048,
    _parse_size,
    "Spans waiting for export; past it new spans are dropped and counted.",
    "4096",
)
OTEL_BSP_MAX_EXPORT_BATCH_SIZE = EnvVar(
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    512,
    _parse_size,
    "Spans per export call (at most OTEL_BSP_MAX_QUEUE_SIZE).",
    "256",
)
LIMELIGHT_BSP_QUEUE_FULL_WAIT = EnvVar(
    "LIMELIGHT_BSP_QUEUE_FULL_WAIT",
    1.0,
    _parse_wait_millis,
    "Milliseconds a span ending on a full queue may wait for the export in progress "
    "to make room, while exports succeed (at most 60000); 0 drops it at once, as the "
    "OpenTelemetry SDK does.",
    "0",
    default_text="1000",
)
OTEL_BLRP_SCHEDULE_DELAY = EnvVar(
    "OTEL_BLRP_SCHEDULE_DELAY",
    1.0,
    _parse_interval_millis,
    "Milliseconds between two log record exports.",
    "5000",
    default_text="1000",
)
OTEL_BLRP_EXPORT_TIMEOUT = EnvVar(
    "OTEL_BLRP_EXPORT_TIMEOUT",
    30.0,
    _parse_millis,
    "Milliseconds one log record export may take.",
    "10000",
    default_text="30000",
)
OTEL_BLRP_MAX_QUEUE_SIZE = EnvVar(
    "OTEL_BLRP_MAX_QUEUE_SIZE",
    2048,
    _parse_size,
    "Log records waiting for export; past it new records are dropped and counted.",
    "8192",
)
OTEL_BLRP_MAX_EXPORT_BATCH_SIZE = EnvVar(
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    512,
    _parse_size,
    "Log records per export call (at most OTEL_BLRP_MAX_QUEUE_SIZE).",
    "256",
)
OTEL_METRIC_EXPORT_INTERVAL = EnvVar(
    "OTEL_METRIC_EXPORT_INTERVAL",
    60.0,
    _parse_interval_millis,
    "Milliseconds between two pushes of the metric store by push exporters (OTLP).",
    "15000",
    default_text="60000",
)
OTEL_METRIC_EXPORT_TIMEOUT = EnvVar(
    "OTEL_METRIC_EXPORT_TIMEOUT",
    30.0,
    _parse_millis,
    "Milliseconds one metric push may take.",
    "10000",
    default_text="30000",
)
LIMELIGHT_PLUGINS = EnvVar[tuple[str, ...] | None](
    "LIMELIGHT_PLUGINS",
    None,
    parse_list,
    "Allow-list of plugin names (comma-separated). Set but empty loads no plugin at all; "
    "unset loads every installed plugin.",
    "limelight.function_metrics,prometheus,http",
    empty_is_unset=False,
)
LIMELIGHT_DISABLED_PLUGINS = EnvVar[tuple[str, ...]](
    "LIMELIGHT_DISABLED_PLUGINS",
    (),
    parse_list,
    "Block-list of plugin names (comma-separated); wins over LIMELIGHT_PLUGINS.",
    "console",
)
LIMELIGHT_STRICT = EnvVar(
    "LIMELIGHT_STRICT",
    False,
    parse_bool,
    "Make a plugin that fails to load or raises in a hook a boot failure instead of a report.",
    "1",
)
LIMELIGHT_METRICS_NAMESPACE = EnvVar(
    "LIMELIGHT_METRICS_NAMESPACE",
    "",
    _parse_namespace,
    "Prefix added to every metric name (limelight's own included), joined with an underscore, "
    "even to a name that already starts with it.",
    "shop",
)
LIMELIGHT_SERIES_LIMIT = EnvVar(
    "LIMELIGHT_SERIES_LIMIT",
    2000,
    _parse_size,
    "Label sets per metric before new ones collapse into one overflow series "
    "(counted in limelight_series_overflow_total).",
    "500",
)
LIMELIGHT_SHUTDOWN_TIMEOUT = EnvVar(
    "LIMELIGHT_SHUTDOWN_TIMEOUT",
    10.0,
    parse_float(minimum=0, maximum=MAX_DURATION_MILLIS / 1000, unit="seconds"),
    "Seconds stop may take in total (flush included), also at exit and on SIGTERM.",
    "5",
)

_parse_limit = parse_int(minimum=0, maximum=MAX_SIZE)
_parse_length = parse_int(minimum=0, maximum=100 * MAX_SIZE)


def _limit(name: str, what: str, default: int | None, example: str) -> EnvVar[int | None]:
    parse: RangedParser[int] = _parse_length if "LENGTH" in name else _parse_limit
    return EnvVar[int | None](
        name,
        None,
        parse,
        what,
        example,
        default_text="unlimited" if default is None else str(default),
    )


OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT = _limit(
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "Longest string attribute value kept (longer ones are truncated), for spans, events "
    "and links unless a variable below says otherwise.",
    None,
    "4096",
)
OTEL_ATTRIBUTE_COUNT_LIMIT = _limit(
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "Attributes kept per span, event or link unless a variable below says otherwise.",
    128,
    "64",
)
OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT = _limit(
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "Longest string span attribute value kept (default: OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT).",
    None,
    "4096",
)
OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT = _limit(
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "Attributes kept per span (default: OTEL_ATTRIBUTE_COUNT_LIMIT, else 128).",
    128,
    "64",
)
OTEL_SPAN_EVENT_COUNT_LIMIT = _limit(
    "OTEL_SPAN_EVENT_COUNT_LIMIT", "Events kept per span.", 128, "64"
)
OTEL_SPAN_LINK_COUNT_LIMIT = _limit("OTEL_SPAN_LINK_COUNT_LIMIT", "Links kept per span.", 128, "64")
OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT = _limit(
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "Attributes kept per span event (default: OTEL_ATTRIBUTE_COUNT_LIMIT, else 128).",
    128,
    "16",
)
OTEL_LINK_ATTRIBUTE_COUNT_LIMIT = _limit(
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
    "Attributes kept per span link (default: OTEL_ATTRIBUTE_COUNT_LIMIT, else 128).",
    128,
    "16",
)
SPAN_LIMIT_VARIABLES: tuple[EnvVar[int | None], ...] = (
    OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
    OTEL_ATTRIBUTE_COUNT_LIMIT,
    OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT,
    OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT,
    OTEL_SPAN_EVENT_COUNT_LIMIT,
    OTEL_SPAN_LINK_COUNT_LIMIT,
    OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT,
    OTEL_LINK_ATTRIBUTE_COUNT_LIMIT,
)
"""The span limits of the specification. The SDK reads them itself and raises on an
invalid one, so limelight parses them and hands the SDK explicit limits."""

EXEMPLAR_FILTERS: tuple[str, ...] = ("trace_based", "always_on", "always_off")
"""Values of ``OTEL_METRICS_EXEMPLAR_FILTER``."""


def _parse_exemplar_filter(raw: str) -> str:
    value = raw.strip().lower()
    if value not in EXEMPLAR_FILTERS:
        raise ValueError(f"expected one of {', '.join(EXEMPLAR_FILTERS)}")
    return value


OTEL_METRICS_EXEMPLAR_FILTER = EnvVar(
    "OTEL_METRICS_EXEMPLAR_FILTER",
    "trace_based",
    _parse_exemplar_filter,
    "Which measurements of OpenTelemetry API instruments may carry an exemplar: "
    "trace_based (inside a sampled span), always_on or always_off.",
    "always_off",
)

SDK_VARIABLES: tuple[EnvVar[Any], ...] = (*SPAN_LIMIT_VARIABLES, OTEL_METRICS_EXEMPLAR_FILTER)
"""The variables the SDK would read itself: limelight parses them and hands it the values."""

DEFAULT_KNOWN_METHODS: tuple[str, ...] = (
    "CONNECT",
    "DELETE",
    "GET",
    "HEAD",
    "OPTIONS",
    "PATCH",
    "POST",
    "PUT",
    "TRACE",
)
"""The methods of RFC 9110 and PATCH (RFC 5789): the semantic conventions' default."""


def _parse_methods(raw: str) -> tuple[str, ...]:
    methods = parse_list(raw)
    for method in methods:
        if not method.isascii() or not method.isalpha():
            raise ValueError(f"{method!r} is not an HTTP method name")
    return methods


OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS = EnvVar[tuple[str, ...]](
    "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
    DEFAULT_KNOWN_METHODS,
    _parse_methods,
    "HTTP methods recorded as themselves, comma separated and case-sensitive; any other "
    "method is recorded as _OTHER (the semantic conventions' variable). Defaults to the "
    "RFC 9110 methods and PATCH. Read by every HTTP surface (server and client), each of "
    "which declares it.",
    "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS,QUERY",
)
"""Shared by the HTTP surfaces: defined once here, declared by each plugin that reads it."""

CORE_VARIABLES: tuple[EnvVar[Any], ...] = (
    OTEL_SDK_DISABLED,
    OTEL_SERVICE_NAME,
    OTEL_RESOURCE_ATTRIBUTES,
    OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG,
    OTEL_PROPAGATORS,
    TRACEPARENT,
    TRACESTATE,
    BAGGAGE,
    LIMELIGHT_CONTEXT_FROM_ENV,
    OTEL_TRACES_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_LOGS_EXPORTER,
    *OTLP_GENERIC.values(),
    *OTLP_TRACES.values(),
    *OTLP_METRICS.values(),
    *OTLP_LOGS.values(),
    OTEL_BSP_SCHEDULE_DELAY,
    OTEL_BSP_EXPORT_TIMEOUT,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    LIMELIGHT_BSP_QUEUE_FULL_WAIT,
    OTEL_BLRP_SCHEDULE_DELAY,
    OTEL_BLRP_EXPORT_TIMEOUT,
    OTEL_BLRP_MAX_QUEUE_SIZE,
    OTEL_BLRP_MAX_EXPORT_BATCH_SIZE,
    OTEL_METRIC_EXPORT_INTERVAL,
    OTEL_METRIC_EXPORT_TIMEOUT,
    LIMELIGHT_PLUGINS,
    LIMELIGHT_DISABLED_PLUGINS,
    LIMELIGHT_STRICT,
    LIMELIGHT_METRICS_NAMESPACE,
    LIMELIGHT_SERIES_LIMIT,
    LIMELIGHT_SHUTDOWN_TIMEOUT,
    *SPAN_LIMIT_VARIABLES,
    OTEL_METRICS_EXEMPLAR_FILTER,
)
"""Every variable the core reads, in documentation order."""
