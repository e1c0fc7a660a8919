"""Prometheus's scrapes of the application's own /metrics are not application traffic."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import limelight_http
import pytest
import structlog
from flask import Flask
from limelight_http import instrument_flask, instrument_starlette
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from limelight.testing import Harness

PLUGIN = pytest.mark.limelight(plugins=[limelight_http.plugin])


class ScrapeApp:
    """An ASGI app answering every path, as limelight-prometheus's make_asgi_app() does
    (an object, so Starlette's Route serves it as an app, not as an endpoint)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"up 1\n"})


scrape_app = ScrapeApp()


def wsgi_scrape_app(environ: Any, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"up 1\n"]


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse("item")


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/items/{item_id}", item),
            Route("/metricsfoo", item),
            Mount("/metrics", app=scrape_app),  # /metrics redirects to /metrics/
            Route("/internal/metrics", scrape_app),
        ]
    )


def _routes(telemetry: Harness) -> set[tuple[str, str]]:
    return {(s["route"], s["status_code"]) for s in telemetry.series("http_requests_total")}


@PLUGIN
class TestScrapesAreNotTraffic:
    """Requests to /metrics and below it make no span and no HTTP metric, by default."""

    def test_a_mounted_metrics_app_and_its_redirect_are_not_recorded(
        self, telemetry: Harness, serve_asgi: Any
    ) -> None:
        server = serve_asgi(instrument_starlette(starlette_app()))
        with httpx.Client(follow_redirects=True) as client:
            scrape = client.get(server.url + "/metrics")  # 307 to /metrics/, then 200
            assert [307] == [r.status_code for r in scrape.history]
            assert "up 1\n" == scrape.text
            assert "traceparent" not in scrape.headers
            client.get(server.url + "/metrics/")
            client.get(server.url + "/metricsfoo")  # another path: recorded
            client.get(server.url + "/items/1")
        telemetry.wait_for_span("GET /items/{item_id}", kind="server")
        telemetry.wait_for_span("GET /metricsfoo", kind="server")
        assert {("/items/{item_id}", "200"), ("/metricsfoo", "200")} == _routes(telemetry)
        assert 2 == len(telemetry.spans())

    @pytest.mark.limelight(
        plugins=[limelight_http.plugin], env={"LIMELIGHT_HTTP_METRICS_PATH": "/internal/metrics"}
    )
    def test_another_metrics_path(self, telemetry: Harness, serve_asgi: Any) -> None:
        server = serve_asgi(instrument_starlette(starlette_app()))
        httpx.get(server.url + "/internal/metrics")
        httpx.get(server.url + "/metrics/")  # not the metrics path now: recorded
        telemetry.wait_for_span("GET /metrics/{path}", kind="server")
        assert {("/metrics/{path}", "200")} == _routes(telemetry)

    @pytest.mark.limelight(plugins=[limelight_http.plugin], env={"LIMELIGHT_HTTP_METRICS_PATH": ""})
    def test_empty_records_scrapes_like_any_request(
        self, telemetry: Harness, serve_asgi: Any
    ) -> None:
        server = serve_asgi(instrument_starlette(starlette_app()))
        httpx.get(server.url + "/metrics/")
        telemetry.wait_for_span("GET /metrics/{path}", kind="server")
        assert {("/metrics/{path}", "200")} == _routes(telemetry)

    def test_flask_with_the_metrics_app_dispatched_beside_it(
        self, telemetry: Harness, serve_wsgi: Any
    ) -> None:
        app = Flask("shop")

        @app.get("/items/<item_id>")
        def get_item(item_id: str) -> str:
            return "item"

        # dispatched first, so the instrumentation around it sees the scrapes too
        app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": wsgi_scrape_app})  # type: ignore[method-assign]
        instrument_flask(app)
        server = serve_wsgi(app)
        assert "up 1\n" == httpx.get(server.url + "/metrics").text
        httpx.get(server.url + "/items/1")
        telemetry.wait_for_span("GET /items/<item_id>", kind="server")
        assert {"/items/<item_id>"} == {route for route, _ in _routes(telemetry)}

    def test_an_invalid_path_is_reported_and_the_default_kept(self) -> None:
        with (
            structlog.testing.capture_logs() as logs,
            Harness(
                plugins=[limelight_http.plugin], env={"LIMELIGHT_HTTP_METRICS_PATH": "metrics"}
            ) as harness,
        ):
            assert "/metrics" == harness.telemetry.config.get(
                limelight_http.LIMELIGHT_HTTP_METRICS_PATH
            )
        assert any("LIMELIGHT_HTTP_METRICS_PATH" in str(e) for e in logs), logs
