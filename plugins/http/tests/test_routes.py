"""Route templates in the corners of Starlette routing (in-process ASGI calls)."""

from __future__ import annotations

import asyncio
from typing import Any

import limelight_http
import pytest
from limelight_http import UNMATCHED_ROUTE, instrument_starlette
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Mount, Route, Router

from limelight.testing import Harness

PLUGIN = pytest.mark.limelight(plugins=[limelight_http.plugin])


async def endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def other(request: Request) -> PlainTextResponse:
    return PlainTextResponse("other")


async def files(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"file"})


def call(app: Any, path: str, host: str = "localhost") -> int:
    """One request through the ASGI interface; the response status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def names(telemetry: Harness) -> list[str]:
    return [s.name for s in telemetry.spans()]


@PLUGIN
class TestRouteCorners:
    """Aliased endpoints, hosts, opaque mounts, late routes and redirects resolve correctly."""

    def test_one_endpoint_behind_two_paths(self, telemetry: Harness) -> None:
        app = instrument_starlette(
            Starlette(routes=[Route("/a/{x}", endpoint), Route("/b/{y}", endpoint)])
        )
        call(app, "/b/1")
        call(app, "/a/1")
        call(app, "/b/2")
        assert ["GET /b/{y}", "GET /a/{x}", "GET /b/{y}"] == names(telemetry)

    def test_host_routing(self, telemetry: Harness) -> None:
        api = Router(routes=[Route("/users/{id}", endpoint)])
        www = Router(routes=[Route("/users/{name}", endpoint)])
        app = instrument_starlette(
            Starlette(routes=[Host("api.example.com", app=api), Host("{sub}.example.com", app=www)])
        )
        call(app, "/users/1", host="api.example.com")
        call(app, "/users/bob", host="www.example.com")
        assert ["GET /users/{id}", "GET /users/{name}"] == names(telemetry)

    def test_mounted_plain_asgi_app(self, telemetry: Harness) -> None:
        app = instrument_starlette(Starlette(routes=[Mount("/static", app=files)]))
        assert 200 == call(app, "/static/css/site.css")
        assert ["GET /static/{path}"] == names(telemetry)

    def test_mounted_app_behind_a_middleware(self, telemetry: Harness) -> None:
        inner = Starlette(routes=[Route("/deep/{x}", other)])
        app = instrument_starlette(Starlette(routes=[Mount("/wrapped", app=GZipMiddleware(inner))]))
        assert 200 == call(app, "/wrapped/deep/1")
        # the routes behind the middleware are invisible: the mount names the request
        assert ["GET /wrapped/{path}"] == names(telemetry)

    def test_route_added_after_the_first_request(self, telemetry: Harness) -> None:
        starlette = Starlette(routes=[Route("/first", endpoint)])
        app = instrument_starlette(starlette)
        call(app, "/first")
        starlette.router.routes.append(Route("/late/{n}", other))
        call(app, "/late/3")
        assert ["GET /first", "GET /late/{n}"] == names(telemetry)

    def test_redirect_to_the_slash_path_is_unmatched(self, telemetry: Harness) -> None:
        app = instrument_starlette(Starlette(routes=[Route("/dir/", endpoint)]))
        assert 307 == call(app, "/dir")
        assert ["GET"] == names(telemetry)
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status_code="307"
        )

    def test_user_middleware_in_between(self, telemetry: Harness) -> None:
        async def stamp(request: Request, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers["x-stamp"] = "1"
            return response

        starlette = Starlette(routes=[Mount("/v1", routes=[Route("/things/{id}", endpoint)])])
        starlette.add_middleware(BaseHTTPMiddleware, dispatch=stamp)
        app = instrument_starlette(starlette)
        assert 200 == call(app, "/v1/things/9")
        assert ["GET /v1/things/{id}"] == names(telemetry)

    def test_route_resolver_for_other_frameworks(self, telemetry: Harness) -> None:
        app = limelight_http.ASGIMiddleware(files, route_resolver=lambda scope: "/files/{name}")
        call(app, "/files/a.txt")
        assert ["GET /files/{name}"] == names(telemetry)
