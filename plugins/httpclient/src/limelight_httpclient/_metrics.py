"""The metrics of the outbound HTTP surface (the catalog in the design)."""

from __future__ import annotations

from limelight_hookspecs import MetricDeclaration, MetricKind

__all__ = ["ALL_METRICS", "HTTP_CLIENT_DURATION", "HTTP_CLIENT_IN_FLIGHT", "HTTP_CLIENT_REQUESTS"]

HTTP_CLIENT_REQUESTS = MetricDeclaration(
    "http_client_requests_total",
    MetricKind.COUNTER,
    "Outbound HTTP requests, by method, target host and status code "
    "(status_code is 'error' when no response arrived).",
    unit="1",
    label_names=("method", "host", "status_code"),
)
HTTP_CLIENT_DURATION = MetricDeclaration(
    "http_client_request_duration_seconds",
    MetricKind.HISTOGRAM,
    "Duration of outbound HTTP requests in seconds, until the response body was read "
    "or closed, by method, target host and status code.",
    unit="s",
    label_names=("method", "host", "status_code"),
)
HTTP_CLIENT_IN_FLIGHT = MetricDeclaration(
    "http_client_requests_in_flight",
    MetricKind.GAUGE_ADD,
    "Outbound HTTP requests sent and whose response body is not finished yet, by target host.",
    unit="1",
    label_names=("host",),
)

ALL_METRICS = (HTTP_CLIENT_REQUESTS, HTTP_CLIENT_DURATION, HTTP_CLIENT_IN_FLIGHT)
"""Every metric the plugin declares, in catalog order."""
