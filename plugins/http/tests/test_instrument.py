"""The instrument contract: Starlette, FastAPI, Flask and Django applications recorded with no
call in their code, over real sockets (uvicorn, cheroot), once, and exactly undone."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import django  # type: ignore[import-untyped]
import httpx
import limelight_http
import pytest
from django.conf import settings  # type: ignore[import-untyped]
from django.core.handlers.base import BaseHandler  # type: ignore[import-untyped]
from django.test.utils import override_settings  # type: ignore[import-untyped]
from fastapi import FastAPI
from flask import Flask, signals
from limelight_http import (
    ASGIMiddleware,
    instrument,
    instrument_fastapi,
    instrument_flask,
    instrument_starlette,
    is_instrumented,
    uninstrument,
)
from limelight_testsupport.imports import run_hiding
from opentelemetry.trace import StatusCode
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from limelight.testing import Harness

djangoapp = importlib.import_module("djangoapp")  # the URLconf, next to this file
if not settings.configured:
    settings.configure(**djangoapp.SETTINGS)
    django.setup()

pytestmark = pytest.mark.limelight(plugins=[limelight_http.plugin])
FRAMEWORKS = ("starlette", "fastapi", "flask", "django")


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    """Every test starts and ends with the frameworks as they were."""
    uninstrument()
    yield
    uninstrument()


def _seams() -> list[object]:
    """What the instrumentation replaces, as the classes themselves hold it."""
    return [
        vars(Starlette)["build_middleware_stack"],
        vars(FastAPI)["build_middleware_stack"],
        vars(FastAPI)["__init__"],
        vars(Flask)["wsgi_app"],
        vars(BaseHandler)["load_middleware"],
    ]


def _receivers() -> tuple[int, int]:
    return len(signals.request_started.receivers), len(signals.got_request_exception.receivers)


def starlette_app(cls: type[Starlette] = Starlette, **kwargs: Any) -> Starlette:
    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"item {request.path_params['item_id']}")

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes = [Route("/items/{item_id:int}", item), Route("/healthz", health)]
    return cls(routes=routes, **kwargs)


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


def flask_app() -> Flask:
    app = Flask("instrumented")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        return f"item {item_id}"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    @app.get("/healthz")
    def health() -> str:
        return "ok"

    return app


def servers(telemetry: Harness, name: str) -> list[Any]:
    return telemetry.find_spans(name, kind="server")


class TestContract:
    """Idempotent, exactly undone, selectable by framework."""

    def test_instrument_every_installed_framework_once(self) -> None:
        assert not is_instrumented()
        assert FRAMEWORKS == instrument()
        assert () == instrument()
        assert all(is_instrumented(name) for name in FRAMEWORKS)
        assert FRAMEWORKS == uninstrument()
        assert () == uninstrument()
        assert not is_instrumented()

    def test_uninstrument_puts_back_the_very_functions(self) -> None:
        before, receivers = _seams(), _receivers()
        instrument()
        assert all(a is not b for a, b in zip(before, _seams(), strict=True))
        assert _receivers() == (receivers[0] + 1, receivers[1] + 1)
        uninstrument()
        assert all(a is b for a, b in zip(before, _seams(), strict=True))
        assert receivers == _receivers()

    def test_unknown_framework_is_refused(self) -> None:
        with pytest.raises(ValueError, match="cannot instrument 'bottle'"):
            instrument("bottle")


class TestStarlette:
    """Starlette applications get the middleware when they build their stack."""

    def test_an_application_with_no_limelight_code(
        self, telemetry: Harness, serve_asgi: Callable[[Any], Any]
    ) -> None:
        made_before = starlette_app()  # not serving yet: its stack is built on the first request
        instrument("starlette")
        for app in (made_before, starlette_app()):
            server = serve_asgi(app)
            response = httpx.get(server.url + "/items/3")
            assert "traceparent" in response.headers
        telemetry.wait_until(lambda: 2 == len(servers(telemetry, "GET /items/{item_id}")))
        assert 2 == telemetry.value(
            "http_requests_total", method="GET", route="/items/{item_id}", status_code="200"
        )

    def test_an_application_instrumented_explicitly_keeps_its_options(
        self, telemetry: Harness, serve_asgi: Callable[[Any], Any]
    ) -> None:
        instrument("starlette")
        explicit = instrument_starlette(starlette_app(), exclude_paths=["/healthz"])
        own = starlette_app(middleware=[Middleware(ASGIMiddleware, exclude_paths=["/healthz"])])
        for app in (explicit, own):
            server = serve_asgi(app)
            assert 200 == httpx.get(server.url + "/healthz").status_code
            assert 200 == httpx.get(server.url + "/items/1").status_code
        telemetry.wait_until(lambda: 2 == len(servers(telemetry, "GET /items/{item_id}")))
        assert [] == servers(telemetry, "GET /healthz")
        assert 2 == len(telemetry.find_spans(kind="server"))  # once each, never twice

    def test_explicit_after_serving_replaces_the_contracts_middleware(
        self, telemetry: Harness, serve_asgi: Callable[[Any], Any]
    ) -> None:
        instrument("starlette")
        app = starlette_app()
        server = serve_asgi(app)
        httpx.get(server.url + "/healthz")
        instrument_starlette(app, exclude_paths=["/healthz"])
        httpx.get(server.url + "/healthz")
        httpx.get(server.url + "/items/1")
        telemetry.wait_until(lambda: 1 == len(servers(telemetry, "GET /items/{item_id}")))
        assert 1 == len(servers(telemetry, "GET /healthz"))  # the one before
        stack: Any = app.middleware_stack
        assert isinstance(stack, ASGIMiddleware)
        assert not hasattr(stack.app, "_limelight_http_auto")

    def test_uninstrument_takes_the_middleware_out_of_a_serving_application(
        self, telemetry: Harness, serve_asgi: Callable[[Any], Any]
    ) -> None:
        instrument("starlette")
        server = serve_asgi(starlette_app())
        httpx.get(server.url + "/items/1")
        telemetry.wait_until(lambda: 1 == len(servers(telemetry, "GET /items/{item_id}")))
        uninstrument("starlette")
        response = httpx.get(server.url + "/items/2")
        assert "traceparent" not in response.headers
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/items/{item_id}", status_code="200"
        )


class TestFastAPI:
    """FastAPI applications: limelight's middleware, FastAPI's own telemetry off."""

    def test_an_application_with_no_limelight_code(
        self, telemetry: Harness, serve_asgi: Callable[[Any], Any]
    ) -> None:
        instrument("fastapi")
        app = fastapi_app()
        assert app._telemetry["tracing"] is False
        server = serve_asgi(app)
        assert {"id": 7} == httpx.get(server.url + "/items/7").json()
        span = telemetry.wait_for_span("GET /items/{item_id}", kind="server")
        assert "/items/{item_id}" == (span.attributes or {})["http.route"]
        assert 1 == len(telemetry.spans())  # FastAPI's own request and operation spans: none
        uninstrument("fastapi")
        assert app._telemetry["tracing"] is True

    def test_native_telemetry_asked_for_explicitly(self) -> None:
        instrument("fastapi")
        app = instrument_fastapi(fastapi_app(), native_telemetry=True)
        assert app._telemetry["tracing"] is True
        assert app._telemetry["metrics"] is True


class TestFlask:
    """Flask applications: a WSGI middleware of their own, the route from Flask's signals."""

    def test_an_application_with_no_limelight_code(
        self, telemetry: Harness, serve_wsgi: Callable[[Any], Any]
    ) -> None:
        instrument("flask")
        server = serve_wsgi(flask_app())
        assert "item 5" == httpx.get(server.url + "/items/5").text
        assert 500 == httpx.get(server.url + "/boom").status_code
        telemetry.wait_for_span("GET /items/<int:item_id>", kind="server")
        boom = telemetry.wait_for_span("GET /boom", kind="server")
        assert StatusCode.ERROR == boom.status.status_code
        assert ["exception"] == [e.name for e in boom.events]  # recorded once
        assert 2 == len(telemetry.find_spans(kind="server"))

    def test_an_application_instrumented_explicitly_keeps_its_options(
        self, telemetry: Harness, serve_wsgi: Callable[[Any], Any]
    ) -> None:
        instrument("flask")
        server = serve_wsgi(instrument_flask(flask_app(), exclude_paths=["/healthz"]))
        httpx.get(server.url + "/healthz")
        httpx.get(server.url + "/boom")
        boom = telemetry.wait_for_span("GET /boom", kind="server")
        assert ["exception"] == [e.name for e in boom.events]
        assert 1 == len(telemetry.find_spans(kind="server"))

    def test_uninstrument(self, telemetry: Harness, serve_wsgi: Callable[[Any], Any]) -> None:
        instrument("flask")
        app = flask_app()
        server = serve_wsgi(app)
        httpx.get(server.url + "/items/1")
        telemetry.wait_for_span("GET /items/<int:item_id>", kind="server")
        uninstrument("flask")
        assert "traceparent" not in httpx.get(server.url + "/items/2").headers
        assert "_limelight_http_auto" not in vars(app)
        assert 1 == len(telemetry.find_spans(kind="server"))


class TestDjango:
    """Django projects: the middleware first in MIDDLEWARE when a handler is built."""

    @pytest.mark.parametrize("interface", ["wsgi", "asgi"])
    def test_a_project_with_no_limelight_setting(
        self, telemetry: Harness, serve_wsgi: Any, serve_asgi: Any, interface: str
    ) -> None:
        instrument("django")
        with override_settings(MIDDLEWARE=["django.middleware.common.CommonMiddleware"]):
            if interface == "wsgi":
                from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]

                server = serve_wsgi(get_wsgi_application())
            else:
                from django.core.asgi import get_asgi_application  # type: ignore[import-untyped]

                server = serve_asgi(get_asgi_application())
            assert [
                "limelight_http.DjangoMiddleware",
                "django.middleware.common.CommonMiddleware",
            ] == settings.MIDDLEWARE
            response = httpx.get(server.url + "/api/v1/items/3/")
        assert "traceparent" in response.headers
        telemetry.wait_for_span("GET /api/v1/items/<int:item_id>/", kind="server")
        assert 1 == len(telemetry.find_spans(kind="server"))

    def test_a_project_listing_the_middleware_is_left_alone(self) -> None:
        listed = settings.MIDDLEWARE
        instrument("django")
        from django.test import Client  # type: ignore[import-untyped]

        assert 200 == Client().get("/api/v1/items/3/").status_code
        assert listed is settings.MIDDLEWARE

    def test_uninstrument_restores_the_setting(self) -> None:
        with override_settings(MIDDLEWARE=[]):
            original = settings.MIDDLEWARE
            instrument("django")
            from django.test import Client

            Client().get("/api/v1/items/3/")
            assert ["limelight_http.DjangoMiddleware"] == settings.MIDDLEWARE
            uninstrument("django")
            assert original is settings.MIDDLEWARE


class TestImports:
    """instrument() before the application imports its framework; frameworks not installed are
    never imported."""

    def test_before_the_framework_is_imported(self) -> None:
        result = run_hiding(
            ["django"],
            """
            import limelight_http
            from limelight.testing import Harness

            names = ("starlette", "fastapi", "flask", "django")
            before = loaded(*names)
            done = limelight_http.instrument()
            with Harness(plugins=[limelight_http.plugin]) as telemetry:
                from flask import Flask  # what the application does, afterwards

                app = Flask("late")
                app.add_url_rule("/hello/<name>", "hello", lambda name: f"hello {name}")
                response = app.test_client().get("/hello/ada")
                body = response.get_data(as_text=True)  # the whole body: the request is done
                spans = [s.name for s in telemetry.find_spans(kind="server")]
                series = telemetry.series("http_requests_total")
            report(
                before=before,
                done=done,
                after=loaded(*names),
                body=body,
                traceparent="traceparent" in response.headers,
                spans=spans,
                series=series,
            )
            """,
        )
        assert [] == result["before"]  # importing the plugin imports no framework
        assert ["starlette", "fastapi", "flask"] == result["done"]
        assert ["fastapi", "flask", "starlette"] == result["after"]
        assert ("hello ada", True) == (result["body"], result["traceparent"])
        assert ["GET /hello/<name>"] == result["spans"]
        assert [{"method": "GET", "route": "/hello/<name>", "status_code": "200"}] == result[
            "series"
        ]
