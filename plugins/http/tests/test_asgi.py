"""Starlette and FastAPI apps served by uvicorn over real sockets."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import limelight_http
import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.sse import EventSourceResponse, ServerSentEvent
from limelight_http import (
    UNMATCHED_ROUTE,
    ASGIMiddleware,
    instrument_fastapi,
    instrument_starlette,
)
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from limelight.testing import Harness
from limelight_hookspecs import NumberPoint

PLUGIN = pytest.mark.limelight(plugins=[limelight_http.plugin])
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


def in_flight(telemetry: Harness) -> float:
    points = telemetry.metric("http_requests_in_flight").points
    return sum(p.value for p in points if isinstance(p, NumberPoint))


def server_span(telemetry: Harness, name: str) -> Any:
    return telemetry.wait_for_span(name, kind="server")


class Gate:
    """Lets a test hold a streaming endpoint between two chunks."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.produced: list[tuple[str, float]] = []

    async def wait(self) -> None:
        while not self.release.is_set():  # cancellable, unlike a thread wait
            await asyncio.sleep(0.005)


def starlette_app(gate: Gate) -> Starlette:
    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"item {request.path_params['item_id']}")

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("kaboom")

    async def missing(request: Request) -> PlainTextResponse:
        return PlainTextResponse("gone", status_code=404)

    async def teapot(request: Request) -> PlainTextResponse:
        return PlainTextResponse("unavailable", status_code=503)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.path_params['name']}")

    async def events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            gate.produced.append(("one", time.time()))
            yield "data: one\n\n"
            await gate.wait()
            gate.produced.append(("two", time.time()))
            yield "data: two\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def broken(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            yield "data: one\n\n"
            raise RuntimeError("feed lost")

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            text = await websocket.receive_text()
            if text == "bye":
                await websocket.close()
                return
            await websocket.send_text(text)

    tenant = Starlette(routes=[Route("/hello/{name}", hello)])
    return Starlette(
        routes=[
            Route("/items/{item_id:int}", item, methods=["GET"]),  # template: /items/{item_id}
            Route("/boom", boom),
            Route("/missing", missing),
            Route("/unavailable", teapot),
            Route("/healthz", health),
            Route("/events", events),
            Route("/broken", broken),
            WebSocketRoute("/ws", echo),
            Mount("/tenants/{tenant}", app=tenant),
            Mount("/admin", routes=[Route("/users/{user_id}", hello)]),
        ]
    )


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def starlette_server(serve_asgi: Any, gate: Gate) -> Any:
    return serve_asgi(
        instrument_starlette(
            starlette_app(gate),
            exclude_paths=["/healthz"],
            request_attributes=lambda scope: {"app.tenant": scope["path_params"].get("tenant", "")},
        )
    )


@PLUGIN
class TestRouteTemplates:
    """The span name and the route label are the route template, resolved after routing."""

    def test_route_template_without_the_converter(
        self, telemetry: Harness, starlette_server: Any
    ) -> None:
        response = httpx.get(starlette_server.url + "/items/42")
        assert 200 == response.status_code
        span = server_span(telemetry, "GET /items/{item_id}")
        assert "/items/{item_id}" == span.attributes["http.route"]
        assert "/items/42" == span.attributes["url.path"]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/items/{item_id}", status_code="200"
        )

    def test_mounted_app_with_a_parameter_in_the_prefix(
        self, telemetry: Harness, starlette_server: Any
    ) -> None:
        httpx.get(starlette_server.url + "/tenants/acme/hello/bob")
        span = server_span(telemetry, "GET /tenants/{tenant}/hello/{name}")
        assert "acme" == span.attributes["app.tenant"]

    def test_mount_of_routes(self, telemetry: Harness, starlette_server: Any) -> None:
        httpx.get(starlette_server.url + "/admin/users/7")
        server_span(telemetry, "GET /admin/users/{user_id}")

    def test_unmatched_paths_share_one_sentinel(
        self, telemetry: Harness, starlette_server: Any
    ) -> None:
        for path in ("/nope", "/nope/again", "/tenants/acme/nowhere"):
            assert 404 == httpx.get(starlette_server.url + path).status_code
        telemetry.wait_until(lambda: 3 == len(telemetry.find_spans("GET")))
        spans = telemetry.find_spans("GET", kind="server")
        assert 3 == len(spans)
        assert all("http.route" not in (s.attributes or {}) for s in spans)
        assert 3 == telemetry.value(
            "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status_code="404"
        )
        routes = {s["route"] for s in telemetry.series("http_requests_total")}
        assert {UNMATCHED_ROUTE} == routes

    def test_wrong_method_keeps_the_route(self, telemetry: Harness, starlette_server: Any) -> None:
        assert 405 == httpx.post(starlette_server.url + "/items/1").status_code
        span = server_span(telemetry, "POST /items/{item_id}")
        assert 405 == span.attributes["http.response.status_code"]


@PLUGIN
class TestStatus:
    """5xx and escaping exceptions are errors; 4xx stays unset."""

    def test_ok(self, telemetry: Harness, starlette_server: Any) -> None:
        httpx.get(starlette_server.url + "/items/1")
        span = server_span(telemetry, "GET /items/{item_id}")
        assert StatusCode.UNSET == span.status.status_code
        assert SpanKind.SERVER == span.kind

    def test_not_found_from_the_endpoint(self, telemetry: Harness, starlette_server: Any) -> None:
        assert 404 == httpx.get(starlette_server.url + "/missing").status_code
        span = server_span(telemetry, "GET /missing")
        assert StatusCode.UNSET == span.status.status_code
        assert 404 == span.attributes["http.response.status_code"]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/missing", status_code="404"
        )

    def test_server_error_status(self, telemetry: Harness, starlette_server: Any) -> None:
        assert 503 == httpx.get(starlette_server.url + "/unavailable").status_code
        span = server_span(telemetry, "GET /unavailable")
        assert StatusCode.ERROR == span.status.status_code
        assert "503" == span.attributes["error.type"]

    def test_exception(self, telemetry: Harness, starlette_server: Any) -> None:
        response = httpx.get(starlette_server.url + "/boom")
        assert 500 == response.status_code
        span = server_span(telemetry, "GET /boom")
        assert StatusCode.ERROR == span.status.status_code
        assert 500 == span.attributes["http.response.status_code"]
        assert "RuntimeError" == span.attributes["error.type"]
        [event] = [e for e in span.events if e.name == "exception"]
        assert "kaboom" == event.attributes["exception.message"]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/boom", status_code="500"
        )
        assert (
            1
            == telemetry.histogram(
                "http_request_duration_seconds", method="GET", route="/boom", status_code="500"
            ).count
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))
        # the 500 written by Starlette's error handler carries the trace too
        assert span.context.span_id == int(response.headers["traceparent"].split("-")[2], 16)

    def test_unknown_method(self, telemetry: Harness, starlette_server: Any) -> None:
        httpx.request("PROPFIND", starlette_server.url + "/items/1")  # WebDAV: not a default method
        span = server_span(telemetry, "HTTP /items/{item_id}")
        assert "_OTHER" == span.attributes["http.request.method"]
        assert "PROPFIND" == span.attributes["http.request.method_original"]
        assert {"_OTHER"} == {s["method"] for s in telemetry.series("http_requests_total")}


@PLUGIN
class TestAttributes:
    """Server-side semantic-convention attributes are recorded."""

    def test_semantic_conventions(self, telemetry: Harness, starlette_server: Any) -> None:
        httpx.get(starlette_server.url + "/items/3?q=secret", headers={"user-agent": "probe/1.0"})
        span = server_span(telemetry, "GET /items/{item_id}")
        attributes = dict(span.attributes)
        assert {
            "http.request.method": "GET",
            "http.route": "/items/{item_id}",
            "url.path": "/items/3",
            "url.scheme": "http",
            "http.response.status_code": 200,
            "server.address": "127.0.0.1",
            "server.port": starlette_server.port,
            "client.address": "127.0.0.1",
            "user_agent.original": "probe/1.0",
            "network.protocol.version": "1.1",
            "app.tenant": "",
        } == attributes


@PLUGIN
class TestPropagation:
    """An incoming traceparent is continued and the server span's is sent back."""

    def test_continues_the_incoming_trace(self, telemetry: Harness, starlette_server: Any) -> None:
        response = httpx.get(
            starlette_server.url + "/items/5",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        span = server_span(telemetry, "GET /items/{item_id}")
        assert int(TRACE_ID, 16) == span.context.trace_id
        assert span.parent is not None
        assert int(PARENT_ID, 16) == span.parent.span_id
        assert span.parent.is_remote
        version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
        assert ("00", TRACE_ID) == (version, trace_id)
        assert span.context.span_id == int(span_id, 16)
        assert int(flags, 16) & 1

    def test_new_trace_without_a_parent(self, telemetry: Harness, starlette_server: Any) -> None:
        response = httpx.get(starlette_server.url + "/items/5")
        span = server_span(telemetry, "GET /items/{item_id}")
        assert span.parent is None
        assert f"{span.context.trace_id:032x}" == response.headers["traceparent"].split("-")[1]

    @pytest.mark.limelight(
        plugins=[limelight_http.plugin], env={"LIMELIGHT_HTTP_RESPONSE_TRACEPARENT": "false"}
    )
    def test_response_header_can_be_turned_off(
        self, telemetry: Harness, starlette_server: Any
    ) -> None:
        response = httpx.get(starlette_server.url + "/items/5")
        assert "traceparent" not in response.headers
        server_span(telemetry, "GET /items/{item_id}")


@PLUGIN
class TestStreaming:
    """Streaming responses pass through unbuffered; the span ends with the last chunk."""

    def test_chunks_reach_the_client_as_they_are_sent(
        self, telemetry: Harness, starlette_server: Any, gate: Gate
    ) -> None:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", starlette_server.url + "/events") as response,
        ):
            chunks = response.iter_raw()
            # chunk one arrives while the server is still held before chunk two
            assert b"data: one\n\n" == next(chunks)
            assert ["one"] == [name for name, _ in gate.produced]
            assert [] == telemetry.find_spans("GET /events")
            assert 1 == in_flight(telemetry)
            gate.release.set()
            assert b"data: two\n\n" == b"".join(chunks)
        span = server_span(telemetry, "GET /events")
        assert StatusCode.UNSET == span.status.status_code
        assert span.end_time / 1e9 >= gate.produced[1][1]
        assert (
            1
            == telemetry.histogram(
                "http_request_duration_seconds", method="GET", route="/events", status_code="200"
            ).count
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))

    def test_failure_after_the_response_started_keeps_its_status(
        self, starlette_server: Any, broken_stream: Callable[[str, str], None]
    ) -> None:
        broken_stream(starlette_server.url + "/broken", "/broken")

    def test_client_disconnect_mid_stream(
        self, telemetry: Harness, starlette_server: Any, gate: Gate
    ) -> None:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", starlette_server.url + "/events") as response,
        ):
            assert b"data: one\n\n" == next(response.iter_raw())
        # the connection is closed with the response unread; chunk two never comes
        span = server_span(telemetry, "GET /events")
        assert StatusCode.ERROR == span.status.status_code
        assert "client_disconnected" == span.attributes["error.type"]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/events", status_code="499"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))
        assert ["one"] == [name for name, _ in gate.produced]


@PLUGIN
class TestWebSocket:
    """A WebSocket connection passes through untouched, with one span for the connection."""

    def test_echo(self, telemetry: Harness, starlette_server: Any) -> None:
        from websockets.sync.client import connect

        url = starlette_server.url.replace("http://", "ws://") + "/ws"
        with connect(
            url, additional_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        ) as ws:
            assert ws.response is not None
            assert TRACE_ID == ws.response.headers["traceparent"].split("-")[1]
            for text in ("one", "two", "three"):
                ws.send(text)
                assert text == ws.recv()
            ws.send("bye")
        span = server_span(telemetry, "GET /ws")
        assert [span] == telemetry.spans()  # no span per message
        assert int(TRACE_ID, 16) == span.context.trace_id
        assert 101 == span.attributes["http.response.status_code"]
        assert "ws" == span.attributes["url.scheme"]
        assert StatusCode.UNSET == span.status.status_code
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/ws", status_code="101"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))


@PLUGIN
class TestUserHooks:
    """Excluded paths are served without telemetry; the attributes hook adds attributes."""

    def test_excluded_path(self, telemetry: Harness, starlette_server: Any) -> None:
        response = httpx.get(starlette_server.url + "/healthz")
        assert "ok" == response.text
        assert "traceparent" not in response.headers
        httpx.get(starlette_server.url + "/items/1")  # a recorded request, to wait for
        server_span(telemetry, "GET /items/{item_id}")
        assert 1 == len(telemetry.spans())
        assert "/healthz" not in {s["route"] for s in telemetry.series("http_requests_total")}

    @pytest.mark.limelight(
        plugins=[limelight_http.plugin], env={"LIMELIGHT_HTTP_EXCLUDED_PATHS": "/items/*"}
    )
    def test_excluded_by_environment(self, telemetry: Harness, starlette_server: Any) -> None:
        httpx.get(starlette_server.url + "/items/1")
        httpx.get(starlette_server.url + "/missing")
        server_span(telemetry, "GET /missing")
        assert [] == telemetry.find_spans("GET /items/{item_id}")

    def test_failing_hook_does_not_break_the_request(
        self, telemetry: Harness, serve_asgi: Any, gate: Gate
    ) -> None:
        def broken(scope: Any) -> dict[str, str]:
            raise ValueError("hook bug")

        server = serve_asgi(instrument_starlette(starlette_app(gate), request_attributes=broken))
        assert 200 == httpx.get(server.url + "/items/1").status_code
        server_span(telemetry, "GET /items/{item_id}")


class TestDisabled:
    """Without running telemetry the middleware passes requests straight through."""

    def test_pass_through(self, serve_asgi: Any, gate: Gate) -> None:
        server = serve_asgi(instrument_starlette(starlette_app(gate)))
        response = httpx.get(server.url + "/items/9")
        assert "item 9" == response.text
        assert "traceparent" not in response.headers

    @pytest.mark.limelight(plugins=[])
    def test_plugin_not_loaded(self, telemetry: Harness, serve_asgi: Any, gate: Gate) -> None:
        server = serve_asgi(instrument_starlette(starlette_app(gate)))
        assert 200 == httpx.get(server.url + "/items/9").status_code
        assert [] == telemetry.spans()


def fastapi_app(gate: Gate | None = None) -> FastAPI:
    gate = gate or Gate()
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    def read_item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise HTTPException(404, "no such item")
        return {"id": item_id}

    reviews = APIRouter(prefix="/{item_id}/reviews")

    @reviews.get("/{review_id}")
    def read_review(item_id: int, review_id: int) -> dict[str, int]:
        return {"item": item_id, "review": review_id}

    items.include_router(reviews)
    app = FastAPI()
    app.include_router(items, prefix="/api/v1")
    app.include_router(items, prefix="/api/v2")

    @app.get("/status")
    def status() -> dict[str, str]:
        return {"status": "fine"}

    @app.get("/orders/{order_id}")
    def read_order(order_id: int) -> dict[str, int]:
        with trace.get_tracer("shop").start_as_current_span("load order"):
            return {"order": order_id}

    @app.get("/boom/{n}")
    async def boom(n: int) -> dict[str, int]:
        raise RuntimeError(f"kaboom {n}")

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[ServerSentEvent]:
        gate.produced.append(("one", time.time()))
        yield ServerSentEvent(data="one")
        await gate.wait()
        gate.produced.append(("two", time.time()))
        yield ServerSentEvent(data="two")

    app.mount("/sub", sub_fastapi_app())
    tools = APIRouter()
    tools.mount("/inner", sub_fastapi_app())
    app.include_router(tools, prefix="/tools")
    return app


def sub_fastapi_app() -> FastAPI:
    """A FastAPI app to mount inside another (it has built-in telemetry of its own)."""
    sub = FastAPI()

    @sub.get("/items/{item_id}")
    def read_sub_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return sub


@PLUGIN
class TestFastAPI:
    """FastAPI routes, nested and repeated included routers, and mounted apps."""

    @pytest.fixture
    def server(self, serve_asgi: Any, gate: Gate) -> Any:
        app = instrument_fastapi(fastapi_app(gate))
        app.mount("/late", sub_fastapi_app())  # mounted after setup
        return serve_asgi(app)

    def test_nested_included_routers(self, telemetry: Harness, server: Any) -> None:
        httpx.get(server.url + "/api/v1/items/3/reviews/4")
        server_span(telemetry, "GET /api/v1/items/{item_id}/reviews/{review_id}")

    def test_same_router_included_twice(self, telemetry: Harness, server: Any) -> None:
        httpx.get(server.url + "/api/v1/items/3")
        httpx.get(server.url + "/api/v2/items/3")
        server_span(telemetry, "GET /api/v1/items/{item_id}")
        server_span(telemetry, "GET /api/v2/items/{item_id}")

    def test_http_exception_keeps_the_route(self, telemetry: Harness, server: Any) -> None:
        assert 404 == httpx.get(server.url + "/api/v1/items/0").status_code
        span = server_span(telemetry, "GET /api/v1/items/{item_id}")
        assert StatusCode.UNSET == span.status.status_code

    @pytest.mark.parametrize("prefix", ["/sub", "/late", "/tools/inner"])
    def test_mounted_fastapi_app_is_recorded_once(
        self, telemetry: Harness, server: Any, prefix: str
    ) -> None:
        with httpx.Client(timeout=5) as client:
            assert {"id": 7} == client.get(server.url + prefix + "/items/7").json()
            # the next request on the connection is read once the first one is over
            client.get(server.url + "/status")
        server_span(telemetry, "GET /status")
        span = server_span(telemetry, f"GET {prefix}/items/{{item_id}}")
        assert f"{prefix}/items/{{item_id}}" == span.attributes["http.route"]
        # no second SERVER span (FastAPI's, in a trace of its own) nor fastapi.* spans
        assert [span] == [s for s in telemetry.spans() if s.name != "GET /status"]

    def test_native_telemetry_can_be_kept(self, telemetry: Harness, serve_asgi: Any) -> None:
        server = serve_asgi(instrument_fastapi(fastapi_app(), native_telemetry=True))
        with httpx.Client(timeout=5) as client:
            client.get(server.url + "/status")
            client.get(server.url + "/api/v1/items/1")
        # FastAPI's own request span beside limelight's
        assert telemetry.wait_until(
            lambda: 2 == len(telemetry.find_spans("GET /api/v1/items/{item_id}", kind="server"))
        )
        assert 2 == len(telemetry.find_spans("GET /status", kind="server"))

    @pytest.mark.parametrize("quiet_fastapi", [True, False])
    def test_mounted_fastapi_app_under_asgi_middleware(
        self, telemetry: Harness, serve_asgi: Any, quiet_fastapi: bool
    ) -> None:
        async def status(request: Request) -> PlainTextResponse:
            return PlainTextResponse("fine")

        app = Starlette(routes=[Route("/status", status), Mount("/sub", app=sub_fastapi_app())])
        server = serve_asgi(ASGIMiddleware(app, quiet_fastapi=quiet_fastapi))
        with httpx.Client(timeout=5) as client:
            assert {"id": 7} == client.get(server.url + "/sub/items/7").json()
            # the next request on the connection is read once the first one is over
            client.get(server.url + "/status")
        server_span(telemetry, "GET /status")
        span = server_span(telemetry, "GET /sub/items/{item_id}")
        others = [s for s in telemetry.spans() if s.name != "GET /status" and s is not span]
        if quiet_fastapi:
            assert [] == others
        else:  # FastAPI's own SERVER span (and its operation spans), in a trace of its own
            [native] = [s for s in others if s.kind == SpanKind.SERVER]
            assert span.context.trace_id != native.context.trace_id

    def test_one_server_span_per_request(self, telemetry: Harness, server: Any) -> None:
        httpx.get(server.url + "/status")
        server_span(telemetry, "GET /status")
        time.sleep(0.05)
        assert 1 == len(telemetry.find_spans(kind="server"))

    def test_exception_is_a_500(self, telemetry: Harness, server: Any) -> None:
        response = httpx.get(server.url + "/boom/3")
        assert 500 == response.status_code
        span = server_span(telemetry, "GET /boom/{n}")
        assert StatusCode.ERROR == span.status.status_code
        assert "RuntimeError: kaboom 3" == span.status.description
        assert 500 == span.attributes["http.response.status_code"]
        assert "RuntimeError" == span.attributes["error.type"]
        [event] = [e for e in span.events if e.name == "exception"]
        assert "kaboom 3" == event.attributes["exception.message"]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/boom/{n}", status_code="500"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))
        # the 500 written by the error handler names the span
        assert f"{span.context.span_id:016x}" == response.headers["traceparent"].split("-")[2]

    def test_continues_the_incoming_trace(self, telemetry: Harness, server: Any) -> None:
        response = httpx.get(
            server.url + "/orders/12",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        assert {"order": 12} == response.json()
        span = server_span(telemetry, "GET /orders/{order_id}")
        assert int(TRACE_ID, 16) == span.context.trace_id
        assert span.parent is not None and span.parent.is_remote
        assert int(PARENT_ID, 16) == span.parent.span_id
        # a span the endpoint starts (in FastAPI's thread pool) is the server span's child
        child = telemetry.span("load order")
        assert int(TRACE_ID, 16) == child.context.trace_id
        assert child.parent is not None
        assert span.context.span_id == child.parent.span_id
        assert f"00-{TRACE_ID}-{span.context.span_id:016x}-01" == response.headers["traceparent"]

    def test_server_sent_events_reach_the_client_as_they_are_sent(
        self, telemetry: Harness, server: Any, gate: Gate
    ) -> None:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", server.url + "/events") as response,
        ):
            assert "text/event-stream" in response.headers["content-type"]
            lines = response.iter_lines()
            # event one arrives while the endpoint is still held before event two
            assert 'data: "one"' == next(lines)
            assert ["one"] == [name for name, _ in gate.produced]
            assert [] == telemetry.find_spans("GET /events")
            assert 1 == in_flight(telemetry)
            gate.release.set()
            assert ['data: "two"'] == [line for line in lines if line]
        span = server_span(telemetry, "GET /events")
        assert StatusCode.UNSET == span.status.status_code
        assert span.end_time / 1e9 >= gate.produced[1][1]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/events", status_code="200"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))

    def test_unmatched(self, telemetry: Harness, server: Any) -> None:
        assert 404 == httpx.get(server.url + "/api/v3/items/1").status_code
        server_span(telemetry, "GET")
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status_code="404"
        )


@PLUGIN
class TestMemory:
    """A recorded request leaves no reference cycle: its objects are freed when it ends."""

    def test_no_cycle_through_the_request(self, telemetry: Harness, starlette_server: Any) -> None:
        gc.collect()
        gc.disable()
        try:
            with httpx.Client(timeout=5) as client:
                for n in range(20):
                    assert 200 == client.get(f"{starlette_server.url}/items/{n}").status_code
            # every request is over (its exchange no longer reachable from the server)
            assert telemetry.wait_until(lambda: 20 == len(telemetry.spans()))
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            left = [o for o in gc.garbage if isinstance(o, limelight_http.Exchange)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert [] == left


class _BrokenPropagator(TextMapPropagator):
    def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
        raise RuntimeError("propagator bug")

    def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
        raise RuntimeError("propagator bug")

    @property
    def fields(self) -> set[str]:
        return set()


@PLUGIN
class TestTelemetryFailures:
    """A failure inside telemetry never breaks the request it observes."""

    def test_broken_propagator(self, telemetry: Harness, starlette_server: Any) -> None:
        previous = propagate.get_global_textmap()
        propagate.set_global_textmap(_BrokenPropagator())
        try:
            response = httpx.get(starlette_server.url + "/items/4")
        finally:
            propagate.set_global_textmap(previous)
        assert "item 4" == response.text
        assert "traceparent" not in response.headers
        httpx.get(starlette_server.url + "/items/5")
        server_span(telemetry, "GET /items/{item_id}")
