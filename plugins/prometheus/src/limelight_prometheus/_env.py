"""The environment variables limelight-prometheus reads, declared once."""

from __future__ import annotations

from limelight_hookspecs import EnvVar, parse_bool, parse_int, parse_str

__all__ = [
    "LIMELIGHT_PROMETHEUS_SERVER",
    "LIMELIGHT_PROMETHEUS_TARGET_INFO",
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "parse_server_mode",
]


def parse_server_mode(raw: str) -> str:
    """``auto``, ``true`` or ``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    if raw.strip().lower() == "auto":
        return "auto"
    try:
        return "true" if parse_bool(raw) else "false"
    except ValueError:
        raise ValueError("expected auto, true or false") from None


OTEL_EXPORTER_PROMETHEUS_HOST = EnvVar(
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    "localhost",
    parse_str,
    "Address the standalone /metrics server binds to. Use 0.0.0.0 to accept scrapes from "
    "other hosts (a container, for example).",
    "0.0.0.0",
)
OTEL_EXPORTER_PROMETHEUS_PORT = EnvVar(
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    9464,
    parse_int(minimum=0, maximum=65535),
    "Port of the standalone /metrics server; 0 picks a free port.",
    "9464",
)
LIMELIGHT_PROMETHEUS_SERVER = EnvVar(
    "LIMELIGHT_PROMETHEUS_SERVER",
    "auto",
    parse_server_mode,
    "Start the standalone /metrics server: true, false, or auto (start it unless "
    "prometheus_client multiprocess mode is on, where workers would fight for the port; "
    "mount make_wsgi_app/make_asgi_app or call start_http_server in the server's master).",
    "false",
)
PROMETHEUS_MULTIPROC_DIR = EnvVar(
    "PROMETHEUS_MULTIPROC_DIR",
    "",
    parse_str,
    "prometheus_client multiprocess mode: a directory shared by every worker, set before the "
    "process imports prometheus_client and emptied before the server starts. /metrics then "
    "aggregates every process.",
    "/run/myapp/prometheus",
)
LIMELIGHT_PROMETHEUS_TARGET_INFO = EnvVar(
    "LIMELIGHT_PROMETHEUS_TARGET_INFO",
    True,
    parse_bool,
    "Serve the resource (service.name and every other resource attribute) as one target_info "
    "metric on /metrics, as the OpenTelemetry-to-Prometheus compatibility specification asks; "
    "false leaves it out. The make_wsgi_app/make_asgi_app/start_http_server argument wins.",
    "false",
)
