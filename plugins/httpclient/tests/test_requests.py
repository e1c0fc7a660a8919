"""requests against a real local HTTP server."""

from __future__ import annotations

import shutil
from io import BytesIO
from typing import Any

import limelight_httpclient
import pytest
import requests
from limelight_httpclient import (
    InstrumentedAdapter,
    instrument_requests,
    instrument_session,
    uninstrument_requests,
)
from limelight_testsupport.httpserver import LocalHTTPServer
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from requests.adapters import HTTPAdapter

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[limelight_httpclient.plugin])
NOT_GLOBAL = pytest.mark.limelight(
    plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "none"}
)

tracer = trace.get_tracer("tests")


class TestClientSpan:
    """requests calls get a CLIENT span in the caller's trace, and the server sees it."""

    def test_span_and_injected_header(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with tracer.start_as_current_span("caller") as caller:
            response = requests.get(server.url("/ok?page=1"), timeout=5)
        assert "ok" == response.text
        span = telemetry.span("GET", kind="client")
        assert span.context is not None
        assert caller.get_span_context().trace_id == span.context.trace_id
        (header,) = server.last().header("traceparent")
        assert f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-" in header
        assert {
            "http.request.method": "GET",
            "url.full": server.url("/ok?page=1"),
            "server.address": "127.0.0.1",
            "server.port": server.port,
            "http.response.status_code": 200,
            "network.protocol.version": "1.1",
        } == dict(span.attributes or {})

    def test_root_span_outside_any_span(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        requests.post(server.url("/ok"), data=b"x", timeout=5)
        span = telemetry.span("POST", kind="client")
        assert span.parent is None

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_ROOT_SPANS": "0"}
    )
    def test_root_spans_can_be_turned_off(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        requests.get(server.url("/ok"), timeout=5)
        assert [] == telemetry.find_spans(kind="client")
        assert [] == server.last().header("traceparent")


class TestBody:
    """The span ends when the body is finished: read, closed or released."""

    def test_streamed_body(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with requests.get(server.url("/stream?chunks=3"), stream=True, timeout=5) as response:
            assert [] == telemetry.find_spans("GET", kind="client")
            assert 1 == telemetry.value("http_client_requests_in_flight", host="127.0.0.1")
            body = b"".join(response.iter_content(chunk_size=None))
            span = telemetry.span("GET", kind="client")
        assert b"chunk0;chunk1;chunk2;" == body
        assert span.end_time is not None
        assert span.start_time is not None
        assert span.end_time - span.start_time >= 150_000_000
        assert 0 == telemetry.value("http_client_requests_in_flight", host="127.0.0.1")

    def test_non_streamed_body_is_read_before_return(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        requests.get(server.url("/stream?chunks=2"), timeout=5)
        assert 1 == len(telemetry.find_spans("GET", kind="client"))

    def test_closing_unread_ends_the_span(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        response = requests.get(server.url("/stream?chunks=2"), stream=True, timeout=5)
        assert [] == telemetry.find_spans("GET", kind="client")
        response.close()
        assert 1 == len(telemetry.find_spans("GET", kind="client"))

    def test_raw_file_object_copy(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with requests.get(server.url("/stream?chunks=2"), stream=True, timeout=5) as response:
            response.raw.decode_content = True
            out = BytesIO()
            shutil.copyfileobj(response.raw, out)
            assert b"chunk0;chunk1;" == out.getvalue()
            assert 1 == len(telemetry.find_spans("GET", kind="client"))


class TestErrors:
    """Refused connections, timeouts and error statuses are errors."""

    def test_refused(self, telemetry: Harness, refused_url: str) -> None:
        with pytest.raises(requests.ConnectionError):
            requests.get(refused_url, timeout=5)
        span = telemetry.span("GET", kind="client")
        assert StatusCode.ERROR == span.status.status_code
        assert "requests.exceptions.ConnectionError" == (span.attributes or {})["error.type"]
        assert 1 == telemetry.value(
            "http_client_requests_total", method="GET", host="127.0.0.1", status_code="error"
        )

    def test_timeout(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with pytest.raises(requests.ReadTimeout):
            requests.get(server.url("/slow?delay=1"), timeout=0.2)
        span = telemetry.span("GET", kind="client")
        assert "requests.exceptions.ReadTimeout" == (span.attributes or {})["error.type"]

    def test_500(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        assert 500 == requests.get(server.url("/status/500"), timeout=5).status_code
        span = telemetry.span("GET", kind="client")
        assert StatusCode.ERROR == span.status.status_code
        assert "500" == (span.attributes or {})["error.type"]


class TestAdapter:
    """The adapter wraps another one, keeps its pool and forwards close."""

    @NOT_GLOBAL
    def test_session_helper_keeps_the_pool(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with instrument_session(requests.Session()) as session:
            assert isinstance(session.get_adapter(server.url()), InstrumentedAdapter)
            session.get(server.url("/ok"), timeout=5)
            session.get(server.url("/ok"), timeout=5)
        first, second = server.received[-2:]
        assert first.client_port == second.client_port
        assert 2 == len(telemetry.find_spans("GET", kind="client"))

    @NOT_GLOBAL
    def test_wrapped_adapter_settings_are_kept(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        inner = HTTPAdapter(max_retries=2, pool_maxsize=3)
        adapter = InstrumentedAdapter(inner)
        assert 2 == adapter.max_retries.total
        session = requests.Session()
        session.mount("http://", adapter)
        response = session.get(server.url("/ok"), timeout=5)
        connection: object = response.connection
        assert adapter is connection
        session.close()
        assert 0 == len(inner.poolmanager.pools)
        assert 1 == len(telemetry.find_spans("GET", kind="client"))

    def test_session_helper_is_idempotent(self) -> None:
        session = instrument_session(instrument_session(requests.Session()))
        adapter = session.get_adapter("https://x")
        assert isinstance(adapter, InstrumentedAdapter)
        assert isinstance(adapter.adapter, HTTPAdapter)

    def test_explicit_and_global_make_one_span(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        session = instrument_session(requests.Session())
        session.get(server.url("/ok"), timeout=5)
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
        assert 1 == len(server.last().header("traceparent"))


class _TokenAdapter(HTTPAdapter):
    """An adapter that fetches a token with its own request before sending."""

    def __init__(self, token_url: str) -> None:
        super().__init__()
        self.token_url = token_url

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        token = requests.get(self.token_url, timeout=5).text
        request.headers["Authorization"] = f"Bearer {token}"
        return super().send(request, *args, **kwargs)


class TestNested:
    """A request an adapter makes while sending another one is recorded too."""

    def test_adapter_calling_out_while_sending(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        session = requests.Session()
        session.mount("http://", InstrumentedAdapter(_TokenAdapter(server.url("/ok?token"))))
        with tracer.start_as_current_span("caller"):
            session.get(server.url("/ok?main"), timeout=5)
        spans = {
            str((s.attributes or {})["url.full"]).rpartition("?")[2]: s
            for s in telemetry.find_spans("GET", kind="client")
        }
        assert ["main", "token"] == sorted(spans)
        by_path = {r.path: r for r in server.received[-2:]}
        for name, span in spans.items():
            assert span.context is not None
            (header,) = by_path[f"/ok?{name}"].header("traceparent")
            assert f"{span.context.span_id:016x}" == header.split("-")[2]


class TestGlobal:
    """Globally installed, every session is recorded once; installing twice changes nothing."""

    @NOT_GLOBAL
    def test_install_uninstall(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        session = requests.Session()
        session.get(server.url("/ok"), timeout=5)
        assert instrument_requests()
        assert not instrument_requests()
        session.get(server.url("/ok"), timeout=5)
        assert uninstrument_requests()
        assert not uninstrument_requests()
        session.get(server.url("/ok"), timeout=5)
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
