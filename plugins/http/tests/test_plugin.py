"""The distribution's surface: public names, declarations, configuration."""

from __future__ import annotations

import asyncio
from typing import Any

import limelight_http
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import limelight
import limelight.plugins
from limelight.metrics import MetricKind
from limelight.testing import Harness


class TestPublicSurface:
    """``limelight_http`` exports exactly its documented names."""

    def test_all_is_explicit_and_complete(self) -> None:
        public = {n for n in dir(limelight_http) if not n.startswith("_")} - {"annotations"}
        modules = {n for n in public if type(getattr(limelight_http, n)).__name__ == "module"}
        assert sorted(public - modules) == sorted(set(limelight_http.__all__) - {"__version__"})
        for name in limelight_http.__all__:
            assert hasattr(limelight_http, name), name

    def test_plugin_identity(self) -> None:
        assert "http" == limelight_http.plugin.limelight_name
        assert 200 == limelight_http.plugin.limelight_priority

    def test_entry_point_is_discovered(self) -> None:
        infos = {
            i.name: i for i in limelight.plugins.discover(limelight.load_config(environ={})).infos()
        }
        assert "loaded" == infos["http"].status
        assert 200 == infos["http"].priority


class TestDeclarations:
    """The metrics are the catalog's: names, kinds and labels."""

    def test_catalog(self) -> None:
        declared = {
            d.name: (d.kind, d.label_names)
            for d in limelight_http.plugin.limelight_metrics_declare(limelight.load_config())
        }
        assert {
            "http_requests_total": (MetricKind.COUNTER, ("method", "route", "status_code")),
            "http_request_duration_seconds": (
                MetricKind.HISTOGRAM,
                ("method", "route", "status_code"),
            ),
            "http_requests_in_flight": (MetricKind.GAUGE_ADD, ("method",)),
        } == declared

    def test_environment_variables_are_declared(self) -> None:
        names = {v.name for v in limelight_http.plugin.limelight_config_declare()}
        assert {
            "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
            "LIMELIGHT_HTTP_EXCLUDED_PATHS",
            "LIMELIGHT_HTTP_METRICS_PATH",
            "LIMELIGHT_HTTP_RESPONSE_TRACEPARENT",
        } == names


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def request(app: Any, method: str) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/ok",
        "raw_path": b"/ok",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": None,
        "server": None,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    asyncio.run(app(scope, receive, send))


class TestConfiguration:
    """Known methods come from the semantic conventions' variable; bad values never raise."""

    @pytest.mark.limelight(
        plugins=[limelight_http.plugin],
        env={"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS": "GET,QUERY"},
    )
    def test_known_methods(self, telemetry: Harness) -> None:
        app = limelight_http.instrument_starlette(
            Starlette(routes=[Route("/ok", ok, methods=["GET", "POST", "QUERY"])])
        )
        for method in ("GET", "QUERY", "POST"):
            request(app, method)
        assert ["GET /ok", "QUERY /ok", "HTTP /ok"] == [s.name for s in telemetry.spans()]

    @pytest.mark.limelight(
        plugins=[limelight_http.plugin],
        env={
            "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS": "GET,P@ST",
            "LIMELIGHT_HTTP_EXCLUDED_PATHS": "healthz",
        },
    )
    def test_invalid_values_fall_back_to_the_defaults(self, telemetry: Harness) -> None:
        app = limelight_http.instrument_starlette(
            Starlette(routes=[Route("/ok", ok, methods=["POST"])])
        )
        request(app, "POST")
        assert ["POST /ok"] == [s.name for s in telemetry.spans()]

    def test_bad_arguments_are_clear_errors(self) -> None:
        with pytest.raises(TypeError, match="collection of paths"):
            limelight_http.ASGIMiddleware(ok, exclude_paths="/healthz")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="starting with '/'"):
            limelight_http.WSGIMiddleware(ok, exclude_paths=["healthz"])  # type: ignore[arg-type]
