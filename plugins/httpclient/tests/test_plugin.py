"""The plugin as limelight sees it: entry point, hooks, variables, robustness."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import httpx
import limelight_httpclient
import pytest
import structlog.testing
from limelight_httpclient import (
    VARIABLES,
    HttpClientPlugin,
    InstrumentedTransport,
    _httpx,
    _requests,
)
from limelight_testsupport.httpserver import LocalHTTPServer
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[limelight_httpclient.plugin])


class TestPublicApi:
    """Every exported name exists; the private modules stay private."""

    def test_all(self) -> None:
        for name in limelight_httpclient.__all__:
            assert getattr(limelight_httpclient, name) is not None
        assert sorted(limelight_httpclient.__all__) == sorted(set(limelight_httpclient.__all__))

    def test_unknown_name(self) -> None:
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            limelight_httpclient.nope  # noqa: B018


class TestRegistration:
    """The plugin is found through its entry point with its name and priority."""

    def test_entry_point(self) -> None:
        (ep,) = [e for e in entry_points(group="limelight.plugins") if e.name == "httpclient"]
        assert limelight_httpclient.plugin is ep.load()

    def test_name_and_priority(self) -> None:
        assert ("httpclient", 210) == (
            HttpClientPlugin.limelight_name,
            HttpClientPlugin.limelight_priority,
        )

    def test_variables_are_declared(self) -> None:
        names = [v.name for v in limelight_httpclient.plugin.limelight_config_declare()]
        assert [
            "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
            "LIMELIGHT_HTTPCLIENT_INSTRUMENT",
            "LIMELIGHT_HTTPCLIENT_ROOT_SPANS",
            "LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS",
        ] == names
        assert all(v.doc and v.example for v in VARIABLES)

    def test_plugin_found_by_discovery(self) -> None:
        with Harness(entry_points=True, env={"LIMELIGHT_PLUGINS": "httpclient"}) as harness:
            assert "http_client_requests_total" in harness.store

    def test_disabled_by_name(self, server: LocalHTTPServer) -> None:
        env = {"LIMELIGHT_DISABLED_PLUGINS": "httpclient"}
        with Harness(entry_points=True, env=env) as harness, httpx.Client() as client:
            client.get(server.url("/ok"))
            assert "http_client_requests_total" not in harness.store
            assert [] == harness.find_spans(kind="client")


class TestConfiguration:
    """Invalid values are reported once and replaced by the default."""

    def test_invalid_values_fall_back(self, server: LocalHTTPServer) -> None:
        _httpx.uninstrument_httpx()
        with structlog.testing.capture_logs() as logs:
            harness = Harness(
                plugins=[limelight_httpclient.plugin],
                env={
                    "LIMELIGHT_HTTPCLIENT_INSTRUMENT": "httpx,curl-unknown",
                    "LIMELIGHT_HTTPCLIENT_ROOT_SPANS": "perhaps-unknown",
                },
            )
            with harness, httpx.Client() as client:
                client.get(server.url("/ok"))
                assert 1 == len(harness.find_spans("GET", kind="client"))
        assert _httpx.httpx_instrumented()
        assert _requests.requests_instrumented()
        reported = {e["variable"] for e in logs if e["event"] == "invalid configuration value"}
        assert {"LIMELIGHT_HTTPCLIENT_INSTRUMENT", "LIMELIGHT_HTTPCLIENT_ROOT_SPANS"} <= reported

    def test_start_instruments_what_is_configured(self) -> None:
        env = {"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "requests"}
        with Harness(plugins=[limelight_httpclient.plugin], env=env):
            assert not limelight_httpclient.is_instrumented("httpx")
            assert limelight_httpclient.is_instrumented("requests")


class _Broken(TextMapPropagator):
    def extract(self, carrier: Any, context: Context | None = None, getter: Any = None) -> Context:
        raise RuntimeError("broken extract")

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        raise RuntimeError("broken inject")

    @property
    def fields(self) -> set[str]:
        return set()


class TestRobustness:
    """A failing propagator never breaks the request."""

    def test_broken_propagator(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        previous = propagate.get_global_textmap()
        propagate.set_global_textmap(_Broken())
        try:
            with httpx.Client(transport=InstrumentedTransport()) as client:
                assert "ok" == client.get(server.url("/ok")).text
        finally:
            propagate.set_global_textmap(previous)
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
        assert 0 == telemetry.value("http_client_requests_in_flight", host="127.0.0.1")
