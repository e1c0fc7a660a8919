"""A Django project served by cheroot (WSGI) and uvicorn (ASGI) over real sockets."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import django  # type: ignore[import-untyped]
import httpx
import limelight_http
import pytest
from django.conf import settings  # type: ignore[import-untyped]
from limelight_http import UNMATCHED_ROUTE
from opentelemetry.trace import StatusCode

from limelight.testing import Harness
from limelight_hookspecs import NumberPoint

djangoapp = importlib.import_module("djangoapp")  # the URLconf, next to this file
if not settings.configured:
    settings.configure(**djangoapp.SETTINGS)
    django.setup()

PLUGIN = pytest.mark.limelight(plugins=[limelight_http.plugin])
TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "10f067aa0ba902b7"


def server_span(telemetry: Harness, name: str) -> Any:
    return telemetry.wait_for_span(name, kind="server")


def in_flight(telemetry: Harness) -> float:
    points = telemetry.metric("http_requests_in_flight").points
    return sum(p.value for p in points if isinstance(p, NumberPoint))


@pytest.fixture(params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest, serve_wsgi: Any, serve_asgi: Any) -> Any:
    djangoapp.RELEASE.clear()
    djangoapp.PRODUCED.clear()
    if request.param == "wsgi":
        from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]

        return serve_wsgi(get_wsgi_application())
    from django.core.asgi import get_asgi_application  # type: ignore[import-untyped]

    return serve_asgi(get_asgi_application())


@PLUGIN
class TestDjango:
    """The resolver's route names the request under WSGI and ASGI servers alike."""

    def test_included_route(self, telemetry: Harness, server: Any) -> None:
        response = httpx.get(
            server.url + "/api/v1/items/3/",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        assert {"id": 3} == response.json()
        span = server_span(telemetry, "GET /api/v1/items/<int:item_id>/")
        assert int(TRACE_ID, 16) == span.context.trace_id
        assert int(PARENT_ID, 16) == span.parent.span_id
        assert f"{span.context.span_id:016x}" == response.headers["traceparent"].split("-")[2]
        assert "/api/v1/items/3/" == span.attributes["url.path"]
        assert "127.0.0.1" == span.attributes["client.address"]
        assert 1 == telemetry.value(
            "http_requests_total",
            method="GET",
            route="/api/v1/items/<int:item_id>/",
            status_code="200",
        )

    def test_regex_route(self, telemetry: Harness, server: Any) -> None:
        assert "2024" == httpx.get(server.url + "/api/v1/archive/2024/").text
        server_span(telemetry, "GET /api/v1/archive/(?P<year>[0-9]{4})/$")

    def test_404_from_the_view_keeps_the_route(self, telemetry: Harness, server: Any) -> None:
        assert 404 == httpx.get(server.url + "/api/v1/items/0/").status_code
        span = server_span(telemetry, "GET /api/v1/items/<int:item_id>/")
        assert StatusCode.UNSET == span.status.status_code

    def test_unmatched(self, telemetry: Harness, server: Any) -> None:
        assert 404 == httpx.get(server.url + "/nowhere/").status_code
        server_span(telemetry, "GET")
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status_code="404"
        )

    def test_excluded_by_setting(self, telemetry: Harness, server: Any) -> None:
        httpx.get(server.url + "/healthz/")
        httpx.get(server.url + "/nowhere/")
        server_span(telemetry, "GET")
        assert 1 == len(telemetry.spans())

    def test_view_exception(self, telemetry: Harness, server: Any) -> None:
        assert 500 == httpx.get(server.url + "/boom/").status_code
        span = server_span(telemetry, "GET /boom/")
        assert StatusCode.ERROR == span.status.status_code
        assert "RuntimeError" == span.attributes["error.type"]
        assert any(e.name == "exception" for e in span.events)
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))

    def test_streaming_response(self, telemetry: Harness, server: Any) -> None:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", server.url + "/events/") as response,
        ):
            chunks = response.iter_raw()
            assert b"data: one\n\n" == next(chunks)
            assert ["one"] == [name for name, _ in djangoapp.PRODUCED]
            assert [] == telemetry.find_spans("GET /events/")
            djangoapp.RELEASE.set()
            assert b"data: two\n\n" == b"".join(chunks)
        span = server_span(telemetry, "GET /events/")
        assert span.end_time / 1e9 >= djangoapp.PRODUCED[-1][1]
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))

    def test_spans_made_for_chunks_are_children_of_the_request(
        self, telemetry: Harness, server: Any
    ) -> None:
        assert "data: 0\n\ndata: 1\n\n" == httpx.get(server.url + "/feed/").text
        span = server_span(telemetry, "GET /feed/")
        for name in ("render 0", "render 1"):
            child = telemetry.span(name)
            assert child.parent is not None
            assert span.context.span_id == child.parent.span_id
            assert span.context.trace_id == child.context.trace_id

    def test_client_disconnect_mid_stream(self, telemetry: Harness, server: Any) -> None:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", server.url + "/ticks/") as response,
        ):
            assert b"data: tick\n\n" == next(response.iter_raw())
        # the connection is closed with the stream unread: the server finds out (a
        # failed write under WSGI, an http.disconnect under ASGI) and stops streaming
        span = server_span(telemetry, "GET /ticks/")
        assert StatusCode.ERROR == span.status.status_code
        assert "client_disconnected" == span.attributes["error.type"]
        assert not any(e.name == "exception" for e in span.events)
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/ticks/", status_code="499"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))
        assert len(djangoapp.PRODUCED) < djangoapp.TICKS

    def test_failure_after_the_response_started_keeps_its_status(
        self, server: Any, broken_stream: Callable[[str, str], None]
    ) -> None:
        broken_stream(server.url + "/broken/", "/broken/")

    def test_client_leaves_while_an_async_view_runs(
        self, telemetry: Harness, serve_asgi: Any
    ) -> None:
        from django.core.asgi import get_asgi_application

        djangoapp.RELEASE.clear()
        server = serve_asgi(get_asgi_application())
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(server.url + "/slow/", timeout=0.3)
        span = server_span(telemetry, "GET /slow/")
        assert "client_disconnected" == span.attributes["error.type"]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/slow/", status_code="499"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))


@PLUGIN
class TestDjangoBehindWSGIMiddleware:
    """Under an outer WSGI middleware the request is recorded once, with Django's route."""

    def test_recorded_once(self, telemetry: Harness, serve_wsgi: Any) -> None:
        from django.core.wsgi import get_wsgi_application

        server = serve_wsgi(limelight_http.WSGIMiddleware(get_wsgi_application()))
        response = httpx.get(server.url + "/api/v1/items/8/")
        assert {"id": 8} == response.json()
        span = server_span(telemetry, "GET /api/v1/items/<int:item_id>/")
        assert 1 == len(telemetry.spans())
        assert 1 == len(response.headers.get_list("traceparent"))
        assert f"{span.context.span_id:016x}" == response.headers["traceparent"].split("-")[2]
