"""/metrics served by the application itself, as the Prometheus page shows it, scraped by a
real Prometheus: no redirect, and Prometheus's scrapes are not counted as traffic."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import limelight_http
import limelight_prometheus
import pytest
import uvicorn
from limelight_testsupport import free_port
from limelight_testsupport.prometheus import prometheus_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from limelight.testing import Harness

ENV = {"LIMELIGHT_PROMETHEUS_SERVER": "false", "OTEL_SERVICE_NAME": "shop"}


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse("item")


@contextmanager
def _serving(app: Any) -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _app(mounted: bool) -> Starlette:
    app = Starlette(routes=[Route("/items/{item_id}", item)])
    if mounted:
        app.router.routes.append(Mount("/metrics", app=limelight_prometheus.make_asgi_app()))
    else:
        app.routes.append(Route("/metrics", limelight_prometheus.make_asgi_app()))  # as documented
    return limelight_http.instrument_starlette(app)


@pytest.mark.parametrize("mounted", [False, True], ids=["route", "mount"])
def test_scrapes_are_served_and_not_counted(mounted: bool) -> None:
    plugins = [limelight_http.plugin, limelight_prometheus.plugin]
    with Harness(plugins=plugins, env=ENV) as harness, _serving(_app(mounted)) as port:
        direct = httpx.get(f"http://127.0.0.1:{port}/metrics", follow_redirects=True)
        httpx.get(f"http://127.0.0.1:{port}/items/1")
        with prometheus_server([f"127.0.0.1:{port}"], scrape_interval=0.25) as prom:
            up = prom.wait_for_query('up{job="limelight"}')
            time.sleep(1.5)  # several scrapes
            info = prom.wait_for_query('target_info{service_name="shop"}')
            targets = prom.scrape_targets()
            routes = prom.query("http_requests_total")
        series = harness.telemetry.store.snapshot().family("http_requests_total").points
    # the route serves /metrics itself; the mount redirects every scrape (Prometheus follows)
    assert ([307] if mounted else []) == [r.status_code for r in direct.history]
    assert 200 == direct.status_code and "target_info" in direct.text
    assert [("1", "up")] == [(r["value"][1], t["health"]) for r, t in zip(up, targets, strict=True)]
    assert 1 == len(info)
    # the application's request, and nothing of Prometheus's scrapes or their redirects
    assert [{"method": "GET", "route": "/items/{item_id}", "status_code": "200"}] == [
        dict(p.labels) for p in series
    ]
    assert {"/items/{item_id}"} == {r["metric"]["route"] for r in routes}
