"""The limelight plugin object: metric declarations and environment variables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight.http import DEFAULT_KNOWN_METHODS, OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS
from limelight.surface import LIMELIGHT_AUTO_INSTRUMENT
from limelight_hookspecs import (
    Config,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    TelemetryView,
    hookimpl,
    parse_bool,
    parse_list,
)

__all__ = [
    "DEFAULT_KNOWN_METHODS",
    "HTTP_IN_FLIGHT",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "LIMELIGHT_HTTP_EXCLUDED_PATHS",
    "LIMELIGHT_HTTP_METRICS_PATH",
    "LIMELIGHT_HTTP_RESPONSE_TRACEPARENT",
    "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
    "HttpPlugin",
    "plugin",
]

HTTP_REQUESTS = MetricDeclaration(
    "http_requests_total",
    MetricKind.COUNTER,
    "HTTP requests served, by method, route template and response status code.",
    unit="1",
    label_names=("method", "route", "status_code"),
)
HTTP_REQUEST_DURATION = MetricDeclaration(
    "http_request_duration_seconds",
    MetricKind.HISTOGRAM,
    "Time from receiving an HTTP request to sending the last byte of its response, in "
    "seconds, by method, route template and response status code.",
    unit="s",
    label_names=("method", "route", "status_code"),
)
HTTP_IN_FLIGHT = MetricDeclaration(
    "http_requests_in_flight",
    MetricKind.GAUGE_ADD,
    "HTTP requests being served right now, by method.",
    unit="1",
    label_names=("method",),
)


def _parse_paths(raw: str) -> tuple[str, ...]:
    paths = parse_list(raw)
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} does not start with '/'")
    return paths


LIMELIGHT_HTTP_EXCLUDED_PATHS = EnvVar[tuple[str, ...]](
    "LIMELIGHT_HTTP_EXCLUDED_PATHS",
    (),
    _parse_paths,
    "Request paths served without a span or metrics (health checks), comma separated; a "
    "path ending in * excludes every path starting with what comes before it. Added to "
    "the paths given to the middleware.",
    "/healthz,/readyz,/internal/*",
)


def _parse_metrics_path(raw: str) -> str:
    path = raw.strip()
    if not path:
        return ""
    if not path.startswith("/") or "*" in path:
        raise ValueError(f"{path!r} is not a path starting with '/' (without '*')")
    return path.rstrip("/") or "/"


LIMELIGHT_HTTP_METRICS_PATH = EnvVar(
    "LIMELIGHT_HTTP_METRICS_PATH",
    "/metrics",
    _parse_metrics_path,
    "The path Prometheus scrapes when the application serves /metrics itself: requests to "
    "it and below it (/metrics/, where Starlette's Mount redirects) are served without a "
    "span or metrics, so scrapes are not counted as application traffic. Empty records "
    "them like any request.",
    "/internal/metrics",
    empty_is_unset=False,
)
LIMELIGHT_HTTP_RESPONSE_TRACEPARENT = EnvVar(
    "LIMELIGHT_HTTP_RESPONSE_TRACEPARENT",
    True,
    parse_bool,
    "Add the server span's W3C traceparent header to every response, so a client can find "
    "the trace of its request. Default true; the middleware argument wins.",
    "false",
)


class HttpPlugin:
    """Declares the HTTP server metrics and the plugin's environment variables."""

    limelight_name = "http"
    limelight_priority = 200

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return (HTTP_REQUESTS, HTTP_REQUEST_DURATION, HTTP_IN_FLIGHT)

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (
            OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS,
            LIMELIGHT_HTTP_EXCLUDED_PATHS,
            LIMELIGHT_HTTP_METRICS_PATH,
            LIMELIGHT_HTTP_RESPONSE_TRACEPARENT,
        )

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        # limelight run (LIMELIGHT_AUTO_INSTRUMENT): each framework when the application
        # imports it, never imported for nothing
        if telemetry.config.get(LIMELIGHT_AUTO_INSTRUMENT):
            from ._instrumentation import instrumentation

            instrumentation.instrument_on_import()


plugin = HttpPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
