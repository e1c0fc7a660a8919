"""httpx, sync and async, against a real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import httpx
import limelight_httpclient
import pytest
from limelight_httpclient import (
    AsyncInstrumentedTransport,
    InstrumentedTransport,
    instrument_httpx,
    uninstrument_httpx,
)
from limelight_testsupport.httpserver import LocalHTTPServer
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[limelight_httpclient.plugin])

tracer = trace.get_tracer("tests")


def traceparent(server: LocalHTTPServer) -> str:
    (value,) = server.last().header("traceparent")
    return value


class TestClientSpan:
    """A request inside a span gets a CLIENT child span of the same trace."""

    def test_span_shares_the_callers_trace(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with tracer.start_as_current_span("caller") as caller, httpx.Client() as client:
            client.get(server.url("/ok"))
        span = telemetry.span("GET", kind="client")
        caller_ctx = caller.get_span_context()
        assert span.context is not None
        assert caller_ctx.trace_id == span.context.trace_id
        assert span.parent is not None
        assert caller_ctx.span_id == span.parent.span_id
        assert span.instrumentation_scope is not None
        assert "limelight.httpclient" == span.instrumentation_scope.name

    def test_attributes(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client() as client:
            client.post(server.url("/ok?page=2"), content=b"hello")
        span = telemetry.span("POST", kind=SpanKind.CLIENT)
        assert {
            "http.request.method": "POST",
            "url.full": server.url("/ok?page=2"),
            "server.address": "127.0.0.1",
            "server.port": server.port,
            "http.response.status_code": 200,
            "network.protocol.version": "1.1",
        } == dict(span.attributes or {})
        assert StatusCode.UNSET == span.status.status_code

    def test_unknown_method_is_other(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client() as client:
            client.request("PURGE", server.url("/ok"))
        span = telemetry.span("HTTP", kind="client")
        assert "_OTHER" == (span.attributes or {})["http.request.method"]
        assert "PURGE" == (span.attributes or {})["http.request.method_original"]

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin],
        env={"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS": "GET,PURGE"},
    )
    def test_known_methods_follow_the_semantic_conventions_variable(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with httpx.Client() as client:
            client.request("PURGE", server.url("/ok"))
            client.request("POST", server.url("/ok"))
        assert ["PURGE", "HTTP"] == [s.name for s in telemetry.spans()]
        assert 1 == telemetry.value(
            "http_client_requests_total", method="_OTHER", host="127.0.0.1", status_code="200"
        )

    def test_each_redirect_hop_is_a_span(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client(follow_redirects=True) as client:
            assert 200 == client.get(server.url("/redirect")).status_code
        statuses = sorted(
            str((s.attributes or {})["http.response.status_code"])
            for s in telemetry.find_spans("GET", kind="client")
        )
        assert ["200", "302"] == statuses


class TestPropagation:
    """The context goes out in the request headers through the global propagator."""

    def test_server_sees_the_client_span_as_parent(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with tracer.start_as_current_span("caller"), httpx.Client() as client:
            client.get(server.url("/ok"))
        span = telemetry.span("GET", kind="client")
        assert span.context is not None
        version, trace_id, parent_id, flags = traceparent(server).split("-")
        assert "00" == version
        assert f"{span.context.trace_id:032x}" == trace_id
        assert f"{span.context.span_id:016x}" == parent_id
        assert int(flags, 16) & 0x01

    def test_request_outside_any_span_gets_a_root_client_span(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with httpx.Client() as client:
            client.get(server.url("/ok"))
        span = telemetry.span("GET", kind="client")
        assert span.parent is None
        assert span.context is not None
        assert f"{span.context.trace_id:032x}" == traceparent(server).split("-")[1]

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_ROOT_SPANS": "false"}
    )
    def test_root_spans_can_be_turned_off(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with httpx.Client() as client:
            client.get(server.url("/ok"))
            with tracer.start_as_current_span("caller"):
                client.get(server.url("/ok"))
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
        assert 2 == telemetry.value(
            "http_client_requests_total", method="GET", host="127.0.0.1", status_code="200"
        )

    def test_root_spans_off_per_transport(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        transport = InstrumentedTransport(root_spans=False)
        with httpx.Client(transport=transport) as client:
            client.get(server.url("/ok"))
        assert [] == telemetry.find_spans("GET", kind="client")
        assert [] == server.last().header("traceparent")

    def test_without_a_span_baggage_still_goes_out(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        from opentelemetry import baggage, context

        token = context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            transport = InstrumentedTransport(root_spans=False)
            with httpx.Client(transport=transport) as client:
                response = client.get(server.url("/headers"))
        finally:
            context.detach(token)
        seen = {k.lower(): v for k, v in json.loads(response.text)}
        assert "tenant=acme" == seen["baggage"]
        assert "traceparent" not in seen
        assert [] == telemetry.find_spans("GET", kind="client")

    def test_tracestate_and_baggage_go_out(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        from opentelemetry import baggage, context, propagate

        incoming = {
            "traceparent": "00-12345678901234567890123456789012-1234567890123456-01",
            "tracestate": "congo=t61rcWkgMzE",
            "baggage": "tenant=acme",
        }
        token = context.attach(propagate.extract(incoming))
        try:
            assert "acme" == baggage.get_baggage("tenant")
            with tracer.start_as_current_span("server"), httpx.Client() as client:
                response = client.get(server.url("/headers"))
        finally:
            context.detach(token)
        seen = {k.lower(): v for k, v in json.loads(response.text)}
        assert seen["traceparent"].startswith("00-12345678901234567890123456789012-")
        assert "congo=t61rcWkgMzE" == seen["tracestate"]
        assert "tenant=acme" == seen["baggage"]

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"OTEL_TRACES_SAMPLER": "always_off"}
    )
    def test_unsampled_request_propagates_the_decision(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with httpx.Client() as client:
            assert 500 == client.get(server.url("/status/500")).status_code
        assert [] == telemetry.find_spans(kind="client")
        assert 0 == int(traceparent(server).split("-")[3], 16) & 0x01  # not sampled
        assert 1 == telemetry.value(
            "http_client_requests_total", method="GET", host="127.0.0.1", status_code="500"
        )

    def test_suppressed_context_sends_untouched(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        from opentelemetry import context

        token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            with httpx.Client() as client:
                client.get(server.url("/ok"))
        finally:
            context.detach(token)
        assert [] == telemetry.find_spans(kind="client")
        assert [] == server.last().header("traceparent")


class TestBody:
    """The span and the duration end when the body is finished, not at the headers."""

    def test_streamed_body_ends_the_span_when_read(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with httpx.Client() as client, client.stream("GET", server.url("/stream?chunks=3")) as r:
            assert [] == telemetry.find_spans("GET", kind="client")
            assert 1 == telemetry.value("http_client_requests_in_flight", host="127.0.0.1")
            body = b"".join(r.iter_bytes())
            span = telemetry.span("GET", kind="client")
        assert b"chunk0;chunk1;chunk2;" == body
        assert 0 == telemetry.value("http_client_requests_in_flight", host="127.0.0.1")
        assert span.end_time is not None
        assert span.start_time is not None
        # three chunks 50 ms apart: the span covers the body
        assert span.end_time - span.start_time >= 150_000_000

    def test_closing_an_unread_stream_ends_the_span(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with httpx.Client() as client:
            with client.stream("GET", server.url("/stream?chunks=2")):
                pass
            span = telemetry.span("GET", kind="client")
        assert 200 == (span.attributes or {})["http.response.status_code"]
        assert 0 == telemetry.value("http_client_requests_in_flight", host="127.0.0.1")

    def test_duration_covers_the_body(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client() as client:
            client.get(server.url("/stream?chunks=4&delay=0.05"))
        point = telemetry.histogram(
            "http_client_request_duration_seconds",
            method="GET",
            host="127.0.0.1",
            status_code="200",
        )
        assert 1 == point.count
        assert point.sum >= 0.2

    def test_head_request_without_body(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client() as client:
            client.head(server.url("/ok"))
        assert 200 == (telemetry.span("HEAD").attributes or {})["http.response.status_code"]


class TestErrors:
    """Transport errors and statuses >= 400 make the span an error."""

    def test_refused_connection(self, telemetry: Harness, refused_url: str) -> None:
        with httpx.Client() as client, pytest.raises(httpx.ConnectError):
            client.get(refused_url)
        span = telemetry.span("GET", kind="client")
        assert StatusCode.ERROR == span.status.status_code
        assert "httpx.ConnectError" == (span.attributes or {})["error.type"]
        assert "http.response.status_code" not in (span.attributes or {})
        assert any(e.name == "exception" for e in span.events)
        assert 1 == telemetry.value(
            "http_client_requests_total", method="GET", host="127.0.0.1", status_code="error"
        )
        assert 0 == telemetry.value("http_client_requests_in_flight", host="127.0.0.1")

    def test_timeout(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client(timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
            client.get(server.url("/slow?delay=1"))
        span = telemetry.span("GET", kind="client")
        assert StatusCode.ERROR == span.status.status_code
        assert "httpx.ReadTimeout" == (span.attributes or {})["error.type"]

    @pytest.mark.parametrize("status", [500, 503, 404, 400])
    def test_error_status(self, telemetry: Harness, server: LocalHTTPServer, status: int) -> None:
        with httpx.Client() as client:
            assert status == client.get(server.url(f"/status/{status}")).status_code
        span = telemetry.span("GET", kind="client")
        assert StatusCode.ERROR == span.status.status_code
        assert str(status) == (span.attributes or {})["error.type"]
        assert 1 == telemetry.value(
            "http_client_requests_total",
            method="GET",
            host="127.0.0.1",
            status_code=str(status),
        )

    def test_success_status_is_left_unset(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with httpx.Client() as client:
            client.get(server.url("/status/204"))
        span = telemetry.span("GET", kind="client")
        assert StatusCode.UNSET == span.status.status_code
        assert "error.type" not in (span.attributes or {})

    def test_error_while_reading_the_body(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=0.1)) as client,
            client.stream("GET", server.url("/stream?chunks=3&delay=0.5")) as response,
            pytest.raises(httpx.ReadTimeout),
        ):
            response.read()
        span = telemetry.span("GET", kind="client")
        assert StatusCode.ERROR == span.status.status_code
        assert "httpx.ReadTimeout" == (span.attributes or {})["error.type"]
        assert 200 == (span.attributes or {})["http.response.status_code"]


class TestAsync:
    """The async transport behaves like the sync one."""

    @pytest.mark.asyncio
    async def test_span_and_header(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with tracer.start_as_current_span("caller") as caller:
            async with httpx.AsyncClient() as client:
                response = await client.get(server.url("/ok"))
        assert "ok" == response.text
        span = telemetry.span("GET", kind="client")
        assert span.context is not None
        assert caller.get_span_context().trace_id == span.context.trace_id
        assert f"{span.context.span_id:016x}" == traceparent(server).split("-")[2]

    @pytest.mark.asyncio
    async def test_streamed_body(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        async with (
            httpx.AsyncClient() as client,
            client.stream("GET", server.url("/stream?chunks=3")) as response,
        ):
            assert [] == telemetry.find_spans("GET", kind="client")
            chunks = [chunk async for chunk in response.aiter_bytes()]
            span = telemetry.span("GET", kind="client")
        assert b"chunk0;chunk1;chunk2;" == b"".join(chunks)
        assert span.end_time is not None
        assert span.start_time is not None
        assert span.end_time - span.start_time >= 150_000_000

    @pytest.mark.asyncio
    async def test_refused(self, telemetry: Harness, refused_url: str) -> None:
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(refused_url)
        span = telemetry.span("GET", kind="client")
        assert "httpx.ConnectError" == (span.attributes or {})["error.type"]

    @pytest.mark.asyncio
    async def test_timeout_and_500(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        async with httpx.AsyncClient(timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(server.url("/slow?delay=1"))
            await client.get(server.url("/status/500"))
        errors = sorted(
            str((s.attributes or {})["error.type"])
            for s in telemetry.find_spans("GET", status="error")
        )
        assert ["500", "httpx.ReadTimeout"] == errors

    @pytest.mark.asyncio
    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "none"}
    )
    async def test_explicit_async_transport(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        assert not limelight_httpclient._httpx.httpx_instrumented()
        transport = AsyncInstrumentedTransport(httpx.AsyncHTTPTransport())
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(server.url("/ok"))
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
        assert 1 == len(server.last().header("traceparent"))


class _Recording(httpx.BaseTransport):
    """A transport that remembers being entered and closed."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"mock")

    def __enter__(self) -> _Recording:
        self.events.append("enter")
        return self

    def close(self) -> None:
        self.events.append("close")


class _AsyncRecording(httpx.AsyncBaseTransport):
    """An async transport that remembers being entered and closed."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"mock")

    async def __aenter__(self) -> _AsyncRecording:
        self.events.append("enter")
        return self

    async def aclose(self) -> None:
        self.events.append("close")


class TestTransport:
    """The wrapper keeps the wrapped transport's pool and lifecycle."""

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "none"}
    )
    def test_keep_alive_pool_is_reused(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        inner = httpx.HTTPTransport()
        with httpx.Client(transport=InstrumentedTransport(inner)) as client:
            client.get(server.url("/ok"))
            client.get(server.url("/ok"))
            first, second = server.received[-2:]
            assert first.client_port == second.client_port
            assert 1 == len(inner._pool.connections)
        assert 0 == len(inner._pool.connections)
        assert 2 == len(telemetry.find_spans("GET", kind="client"))

    def test_enter_and_close_are_forwarded(self, telemetry: Harness) -> None:
        inner = _Recording()
        with httpx.Client(transport=InstrumentedTransport(inner)) as client:
            assert "mock" == client.get("http://mock.example/x").text
        assert ["enter", "close"] == inner.events
        span = telemetry.span("GET", kind="client")
        assert "mock.example" == (span.attributes or {})["server.address"]
        assert 80 == (span.attributes or {})["server.port"]

    def test_close_is_forwarded(self, telemetry: Harness) -> None:
        inner = _Recording()
        client = httpx.Client(transport=InstrumentedTransport(inner))
        client.get("http://mock.example/x")
        client.close()
        assert ["close"] == inner.events

    @pytest.mark.asyncio
    async def test_async_enter_and_exit_are_forwarded(self, telemetry: Harness) -> None:
        inner = _AsyncRecording()
        async with httpx.AsyncClient(transport=AsyncInstrumentedTransport(inner)) as client:
            assert "mock" == (await client.get("http://mock.example/x")).text
        assert ["enter", "close"] == inner.events
        assert 1 == len(telemetry.find_spans("GET", kind="client"))

    @pytest.mark.asyncio
    async def test_async_aclose_is_forwarded(self, telemetry: Harness) -> None:
        inner = _AsyncRecording()
        client = httpx.AsyncClient(transport=AsyncInstrumentedTransport(inner))
        await client.get("http://mock.example/x")
        assert [] == inner.events
        await client.aclose()
        assert ["close"] == inner.events

    def test_mock_transport_with_pre_read_body(self, telemetry: Harness) -> None:
        transport = InstrumentedTransport(httpx.MockTransport(lambda r: httpx.Response(503)))
        with httpx.Client(transport=transport) as client:
            client.get("https://api.example/v1")
        span = telemetry.span("GET", kind="client")
        assert 443 == (span.attributes or {})["server.port"]
        assert 0 == telemetry.value("http_client_requests_in_flight", host="api.example")

    def test_explicit_and_global_make_one_span(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        assert limelight_httpclient._httpx.httpx_instrumented()
        with httpx.Client(transport=InstrumentedTransport(httpx.HTTPTransport())) as client:
            client.get(server.url("/ok"))
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
        assert 1 == len(server.last().header("traceparent"))


class TestNested:
    """A request made while a wrapped transport sends another one is recorded too."""

    def test_wsgi_app_behind_a_wrapped_transport_calls_out(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        seen: list[str] = []

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            seen.append(environ.get("HTTP_TRACEPARENT", ""))
            with httpx.Client() as client:  # the globally instrumented transport
                client.get(server.url("/ok"))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"done"]

        transport = InstrumentedTransport(httpx.WSGITransport(app=app))
        with tracer.start_as_current_span("caller"), httpx.Client(transport=transport) as client:
            assert "done" == client.get("http://app.example/").text
        outer = telemetry.span("GET", kind="client", attributes={"server.address": "app.example"})
        inner = telemetry.span("GET", kind="client", attributes={"server.address": "127.0.0.1"})
        assert outer.context is not None
        assert inner.context is not None
        expected = f"00-{outer.context.trace_id:032x}-{outer.context.span_id:016x}-"
        assert [expected] == [value[:-2] for value in seen]
        assert f"{inner.context.span_id:016x}" == traceparent(server).split("-")[2]
        assert outer.context.trace_id == inner.context.trace_id

    @pytest.mark.asyncio
    async def test_asgi_app_behind_a_wrapped_transport_calls_out(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        seen: list[bytes] = []

        async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            seen.extend(v for k, v in scope["headers"] if k == b"traceparent")
            async with httpx.AsyncClient() as client:  # the globally instrumented transport
                await client.get(server.url("/ok"))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"done"})

        transport = AsyncInstrumentedTransport(httpx.ASGITransport(app=app))
        with tracer.start_as_current_span("caller"):
            async with httpx.AsyncClient(transport=transport) as client:
                assert "done" == (await client.get("http://app.example/")).text
        outer = telemetry.span("GET", kind="client", attributes={"server.address": "app.example"})
        inner = telemetry.span("GET", kind="client", attributes={"server.address": "127.0.0.1"})
        assert outer.context is not None
        assert inner.context is not None
        expected = f"00-{outer.context.trace_id:032x}-{outer.context.span_id:016x}-"
        assert [expected.encode()] == [value[:-2] for value in seen]
        assert f"{inner.context.span_id:016x}" == traceparent(server).split("-")[2]

    @pytest.mark.asyncio
    async def test_explicit_async_and_global_make_one_span(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        assert limelight_httpclient._httpx.httpx_instrumented()
        transport = AsyncInstrumentedTransport(httpx.AsyncHTTPTransport())
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(server.url("/ok"))
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
        assert 1 == len(server.last().header("traceparent"))

    def test_two_explicit_wrappers_make_one_span(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        transport = InstrumentedTransport(InstrumentedTransport(httpx.HTTPTransport()))
        with httpx.Client(transport=transport) as client:
            client.get(server.url("/ok"))
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
        assert 1 == len(server.last().header("traceparent"))


class TestGlobal:
    """Installed globally, every client is recorded, once, including existing ones."""

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "none"}
    )
    def test_existing_client_is_recorded_after_install(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        with httpx.Client() as client:
            client.get(server.url("/ok"))
            assert [] == telemetry.find_spans(kind="client")
            assert instrument_httpx()
            client.get(server.url("/ok"))
        assert 1 == len(telemetry.find_spans("GET", kind="client"))

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "none"}
    )
    def test_not_installed_when_told_none(self, telemetry: Harness) -> None:
        assert not limelight_httpclient._httpx.httpx_instrumented()

    def test_installing_twice_does_nothing_twice(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        assert not instrument_httpx()  # the plugin installed it at start
        assert not instrument_httpx()
        with httpx.Client() as client:
            client.get(server.url("/ok"))
        assert 1 == len(telemetry.find_spans("GET", kind="client"))
        assert 1 == len(server.last().header("traceparent"))

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "none"}
    )
    def test_uninstall(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        assert not uninstrument_httpx()
        assert instrument_httpx()
        assert uninstrument_httpx()
        with httpx.Client() as client:
            client.get(server.url("/ok"))
        assert [] == telemetry.find_spans(kind="client")


class TestDisabled:
    """Without running telemetry requests pass straight through."""

    def test_no_telemetry(self, server: LocalHTTPServer) -> None:
        instrument_httpx()
        with httpx.Client(transport=InstrumentedTransport()) as client:
            assert "ok" == client.get(server.url("/ok")).text
        assert [] == server.last().header("traceparent")

    @pytest.mark.limelight(plugins=[limelight_httpclient.plugin], env={"OTEL_SDK_DISABLED": "true"})
    def test_sdk_disabled(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client(transport=InstrumentedTransport()) as client:
            assert "ok" == client.get(server.url("/ok")).text
        assert [] == server.last().header("traceparent")
        assert [] == telemetry.spans()

    @pytest.mark.limelight(plugins=[])
    def test_plugin_not_loaded(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client(transport=InstrumentedTransport()) as client:
            client.get(server.url("/ok"))
        assert [] == telemetry.find_spans(kind="client")
