"""A WSGI app run by gunicorn in the multiprocess test (one telemetry per worker)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from limelight_prometheus import make_wsgi_app

import limelight

telemetry = limelight.start(service_name="multiprocess-test")
store = telemetry.store
requests = store.counter("app_requests_total", "Requests handled.", ["path"])
latency = store.histogram("app_latency_seconds", "Request time.", ["path"], unit="s")
in_flight = store.gauge_add("app_in_flight", "Requests being handled.")
last_value = store.gauge_set("app_last_value", "The last value set through /set.")
metrics = make_wsgi_app()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/metrics":
        return metrics(environ, start_response)
    in_flight.inc()
    if path == "/crash":
        os._exit(1)  # dies mid-request: its in-flight count is left behind
    if path == "/set":
        last_value.set(float(environ["QUERY_STRING"]))
    else:
        time.sleep(0.02)
    requests.labels(path).inc()
    latency.labels(path).observe(0.01)
    in_flight.dec()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
