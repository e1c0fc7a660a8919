"""A WSGI app run by gunicorn in the multiprocess test (one telemetry per worker).

``/hold?token=T`` counts itself in flight, optionally sets ``app_last_value``
(``&set=V``), writes its pid to ``$MPAPP_HOLD_DIR/held-T`` and waits until the
test creates ``release-T``; after the release it optionally sets the gauge again
(``&then=V``). A sync worker serves one request at a time, so two held requests
are necessarily in two different worker processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from limelight_prometheus import make_wsgi_app

import limelight

HOLD_DIR = Path(os.environ["MPAPP_HOLD_DIR"])
HOLD_LIMIT = 20.0
"""Seconds a held request waits for its release at most (gunicorn's timeout is 30)."""

telemetry = limelight.start(service_name="multiprocess-test")
store = telemetry.store
requests = store.counter("app_requests_total", "Requests handled.", ["path"])
latency = store.histogram("app_latency_seconds", "Request time.", ["path"], unit="s")
in_flight = store.gauge_add("app_in_flight", "Requests being handled.")
last_value = store.gauge_set("app_last_value", "The last value set through /set.")
metrics = make_wsgi_app()


def _hold(query: dict[str, list[str]]) -> None:
    token = query["token"][0]
    if "set" in query:
        last_value.set(float(query["set"][0]))
    held = HOLD_DIR / f"held-{token}"
    partial = held.with_suffix(".partial")
    partial.write_text(str(os.getpid()))
    partial.rename(held)  # the test never reads a half-written pid
    release = HOLD_DIR / f"release-{token}"
    deadline = time.monotonic() + HOLD_LIMIT
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if "then" in query:
        last_value.set(float(query["then"][0]))


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/metrics":
        return metrics(environ, start_response)
    in_flight.inc()
    if path == "/crash":
        os._exit(1)  # dies mid-request: its in-flight count is left behind
    if path == "/set":
        last_value.set(float(environ["QUERY_STRING"]))
    elif path == "/hold":
        _hold(parse_qs(environ["QUERY_STRING"]))
    else:
        time.sleep(0.02)
    requests.labels(path).inc()
    latency.labels(path).observe(0.01)
    in_flight.dec()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
