"""gunicorn configuration of the explicit setup: the hooks the Prometheus page documents."""

from __future__ import annotations

import os
from typing import Any

from limelight_prometheus import child_exit, start_http_server


def when_ready(server: Any) -> None:
    start_http_server(int(os.environ["OTEL_EXPORTER_PROMETHEUS_PORT"]), "127.0.0.1")


__all__ = ["child_exit", "when_ready"]
