"""A framework's error handler logs for a failed request: the line has that request's trace id.

Real Starlette, FastAPI, Flask and Django applications recorded by limelight-http
(whose middleware goes outside the framework's own error handling, so the server
span is still current when the handler runs), each with a handler that logs the
failure; the line must carry the trace id of the request's server span, the one
its ``traceparent`` response header names too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import limelight_http
import limelight_logs
import pytest
from conftest import Lines

from limelight.testing import Harness

FORMAT = "%(name)s %(message)s trace_id=%(trace_id)s span_id=%(span_id)s"
LINE = re.compile(
    r"(?P<name>\S+) (?P<message>.*?) trace_id=(?P<trace_id>\w*) span_id=(?P<span_id>\w*)"
)
log = logging.getLogger("shop.errors")


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines(FORMAT)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def telemetry() -> Iterator[Harness]:
    with Harness(plugins=[limelight_http.plugin, limelight_logs.plugin]) as harness:
        yield harness


def _line(lines: Lines, name: str, message: str) -> tuple[str, str]:
    for text in lines.lines:
        match = LINE.match(text.splitlines()[0])
        if match and match["name"] == name and match["message"].startswith(message):
            return match["trace_id"], match["span_id"]
    raise AssertionError(f"no line {name} {message!r} among {lines.lines!r}")


def _server_span(telemetry: Harness, route: str) -> tuple[str, str]:
    span = telemetry.wait_for_span(f"GET {route}", kind="server")
    ctx = span.get_span_context()
    assert ctx is not None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def _asgi_get(app: Any, *paths: str) -> list[Any]:
    """GET each path from *app* through httpx's ASGI transport (errors become responses)."""
    import asyncio

    import httpx

    async def main() -> list[Any]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            return [await client.get(p) for p in paths]

    return asyncio.run(main())


def _traceparent_trace_id(headers: Any) -> str:
    return str(headers["traceparent"].split("-")[1])


class TestStarlette:
    """Starlette's exception handler (inside ServerErrorMiddleware) logs the failure."""

    def test_exception_handler_line(self, telemetry: Harness, lines: Lines) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, Response
        from starlette.routing import Route

        def boom(request: Request) -> Response:
            raise RuntimeError("payment declined")

        def on_error(request: Request, exc: Exception) -> Response:
            log.exception("request failed: %s", exc)
            return PlainTextResponse("sorry", status_code=500)

        app = Starlette(routes=[Route("/pay", boom)], exception_handlers={Exception: on_error})
        limelight_http.instrument_starlette(app)
        [response] = _asgi_get(app, "/pay")
        assert 500 == response.status_code
        trace_id, span_id = _server_span(telemetry, "/pay")
        assert (trace_id, span_id) == _line(lines, "shop.errors", "request failed")
        assert trace_id == _traceparent_trace_id(response.headers)
        assert 1 == telemetry.value("log_emissions_total", level="error")


class TestFastAPI:
    """FastAPI's exception handler for a custom error and for any exception."""

    def test_exception_handler_lines(self, telemetry: Harness, lines: Lines) -> None:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse

        class OutOfStockError(Exception):
            pass

        app = FastAPI()

        @app.exception_handler(OutOfStockError)
        async def out_of_stock(request: Request, exc: OutOfStockError) -> JSONResponse:
            log.warning("out of stock")
            return JSONResponse({"error": "out of stock"}, status_code=409)

        @app.exception_handler(Exception)
        async def any_error(request: Request, exc: Exception) -> JSONResponse:
            log.error("unhandled: %r", exc)
            return JSONResponse({"error": "internal"}, status_code=500)

        @app.get("/items/{item}")
        async def item(item: str) -> dict[str, str]:
            if item == "sold":
                raise OutOfStockError()
            raise ValueError("corrupt row")

        limelight_http.instrument_fastapi(app)
        conflict, failed = _asgi_get(app, "/items/sold", "/items/bad")
        assert (409, 500) == (conflict.status_code, failed.status_code)
        spans = telemetry.find_spans("GET /items/{item}", kind="server")
        by_trace = {f"{s.context.trace_id:032x}": s for s in spans if s.context is not None}
        stock_trace, _ = _line(lines, "shop.errors", "out of stock")
        error_trace, _ = _line(lines, "shop.errors", "unhandled")
        assert {stock_trace, error_trace} == set(by_trace)
        assert stock_trace == _traceparent_trace_id(conflict.headers)
        assert error_trace == _traceparent_trace_id(failed.headers)


class TestFlask:
    """Flask's own 'Exception on ...' line and an errorhandler(500) of the application."""

    def test_error_handler_and_flask_lines(self, telemetry: Harness, lines: Lines) -> None:
        from flask import Flask

        app = Flask("shop")

        @app.route("/checkout")
        def checkout() -> str:
            raise KeyError("cart")

        @app.errorhandler(500)
        def on_500(error: Exception) -> tuple[str, int]:
            log.error("checkout failed")
            return "sorry", 500

        limelight_http.instrument_flask(app)
        response = app.test_client().get("/checkout")
        response.close()  # the WSGI response ends the request (and its span) when closed
        assert 500 == response.status_code
        trace_id, span_id = _server_span(telemetry, "/checkout")
        assert (trace_id, span_id) == _line(lines, "shop.errors", "checkout failed")
        assert (trace_id, span_id) == _line(lines, "shop", "Exception on /checkout")
        assert trace_id == _traceparent_trace_id(response.headers)


def boom(request: Any) -> Any:
    raise RuntimeError("kaboom")


urlpatterns: list[Any] = []


class TestDjango:
    """Django's own 'Internal Server Error' line (logger django.request) for a failed view."""

    def test_django_request_line(self, telemetry: Harness, lines: Lines) -> None:
        import django  # type: ignore[import-untyped]
        from django.conf import settings  # type: ignore[import-untyped]
        from django.test import Client  # type: ignore[import-untyped]
        from django.urls import path  # type: ignore[import-untyped]

        if not settings.configured:
            settings.configure(
                DEBUG=False,
                ROOT_URLCONF=__name__,
                ALLOWED_HOSTS=["*"],
                MIDDLEWARE=["limelight_http.DjangoMiddleware"],
                SECRET_KEY="logs-tests",
                LOGGING_CONFIG=None,  # leave the root logger of this test alone
            )
            django.setup()
        urlpatterns[:] = [path("boom/", boom)]
        sys.modules[__name__].urlpatterns = urlpatterns  # type: ignore[attr-defined]
        response = Client(raise_request_exception=False).get("/boom/")
        assert 500 == response.status_code
        trace_id, span_id = _server_span(telemetry, "/boom/")
        assert (trace_id, span_id) == _line(lines, "django.request", "Internal Server Error")
        assert trace_id == _traceparent_trace_id(response.headers)
