"""limelight-prometheus: Prometheus exposition of limelight's metric store.

Installed, it serves ``/metrics`` on ``OTEL_EXPORTER_PROMETHEUS_HOST:PORT``
(default ``localhost:9464``) while telemetry runs. Mount it in your own app
instead with :func:`make_wsgi_app` or :func:`make_asgi_app`. Under gunicorn,
uvicorn ``--workers`` or any pre-forking server with ``PROMETHEUS_MULTIPROC_DIR``
set, every worker's values are aggregated, and the in-flight gauges of a worker
that died stop counting at the next scrape (:func:`child_exit` in
``gunicorn.conf.py`` does it as gunicorn reaps the worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._env import (
        LIMELIGHT_PROMETHEUS_SERVER,
        LIMELIGHT_PROMETHEUS_TARGET_INFO,
        OTEL_EXPORTER_PROMETHEUS_HOST,
        OTEL_EXPORTER_PROMETHEUS_PORT,
        PROMETHEUS_MULTIPROC_DIR,
    )
    from ._exposition import (
        PER_PROCESS_ATTRIBUTES,
        ServingRegistry,
        exposition,
        exposition_registry,
        make_asgi_app,
        make_wsgi_app,
        multiprocess_dir,
        serving_registry,
        target_info,
    )
    from ._multiprocess import child_exit, mark_process_dead
    from ._plugin import PrometheusPlugin, plugin
    from ._server import MetricsServer, PrometheusReader, start_http_server


__all__ = [
    "LIMELIGHT_PROMETHEUS_SERVER",
    "LIMELIGHT_PROMETHEUS_TARGET_INFO",
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    "PER_PROCESS_ATTRIBUTES",
    "PROMETHEUS_MULTIPROC_DIR",
    "MetricsServer",
    "PrometheusPlugin",
    "PrometheusReader",
    "ServingRegistry",
    "child_exit",
    "exposition",
    "exposition_registry",
    "make_asgi_app",
    "make_wsgi_app",
    "mark_process_dead",
    "multiprocess_dir",
    "plugin",
    "serving_registry",
    "start_http_server",
    "target_info",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._env": (
            "LIMELIGHT_PROMETHEUS_SERVER",
            "LIMELIGHT_PROMETHEUS_TARGET_INFO",
            "OTEL_EXPORTER_PROMETHEUS_HOST",
            "OTEL_EXPORTER_PROMETHEUS_PORT",
            "PROMETHEUS_MULTIPROC_DIR",
        ),
        "._exposition": (
            "PER_PROCESS_ATTRIBUTES",
            "ServingRegistry",
            "exposition",
            "exposition_registry",
            "make_asgi_app",
            "make_wsgi_app",
            "multiprocess_dir",
            "serving_registry",
            "target_info",
        ),
        "._multiprocess": (
            "child_exit",
            "mark_process_dead",
        ),
        "._plugin": (
            "PrometheusPlugin",
            "plugin",
        ),
        "._server": (
            "MetricsServer",
            "PrometheusReader",
            "start_http_server",
        ),
    },
)
