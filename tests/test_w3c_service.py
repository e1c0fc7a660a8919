"""W3C Trace Context end to end: a service built from limelight-http and limelight-httpclient.

The service is driven the way the W3C trace-context test harness drives one: a
POST carries the trace headers under test and a JSON list of calls
(``[{"url": ..., "arguments": [...]}]``); the service POSTs each call's
``arguments`` to its ``url`` and answers 200. The calls arrive at a recording
server, where the propagated ``traceparent`` and ``tracestate`` are checked
against the specification. The service runs both ways: an ASGI app under
uvicorn calling out with ``httpx.AsyncClient``, and a WSGI app under wsgiref
calling out with ``requests``. The test client is ``http.client``, which sends
headers exactly as given, a repeated header as separate header lines.

The app also records the trace headers as the server handed them over, and
the tests that depend on an input reaching the propagator intact (a repeated
header, whitespace inside a ``tracestate`` list) check that it did. Some of the
harness's cases cannot reach a propagator through a real server, so they are
not here: header names arrive normalised (lower case in ASGI, ``HTTP_*`` in
WSGI) and spaces or tabs around a whole field value are stripped by the
server. ``core/tests/test_w3c.py`` covers those rules on the propagator itself.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import limelight_http
import limelight_httpclient
import pytest
import requests
import uvicorn
from limelight_testsupport import free_port, wait_for_port
from limelight_testsupport.httpserver import LocalHTTPServer, Received
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from limelight.testing import Harness

TRACE = "12345678901234567890123456789012"
PARENT = "1234567890123456"
VALID = f"00-{TRACE}-{PARENT}-01"
_OUTGOING = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")

Headers = list[tuple[str, str]]


# -- the service ---------------------------------------------------------------------------


_DELIVERED: dict[str, dict[str, list[str]]] = {}
"""The trace headers each request's app got from the server, by request tag."""


async def _asgi_app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    _DELIVERED[scope["path"].rpartition("/")[2]] = {
        name: [v.decode("latin-1") for k, v in scope["headers"] if k == name.encode()]
        for name in ("traceparent", "tracestate")
    }
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    async with httpx.AsyncClient(timeout=10) as client:
        for call in json.loads(body or b"[]"):
            await client.post(call["url"], json=call["arguments"])
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _wsgi_app(
    environ: MutableMapping[str, Any], start_response: Callable[..., Callable[[bytes], object]]
) -> Iterable[bytes]:
    _DELIVERED[environ["PATH_INFO"].rpartition("/")[2]] = {
        name: [environ[key]] if (key := f"HTTP_{name.upper()}") in environ else []
        for name in ("traceparent", "tracestate")
    }
    length = int(environ.get("CONTENT_LENGTH") or 0)
    calls = json.loads(environ["wsgi.input"].read(length) or b"[]")
    with requests.Session() as session:
        for call in calls:
            session.post(call["url"], json=call["arguments"], timeout=10)
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class Service:
    """The service under test, on a free local port, and the telemetry it runs with."""

    def __init__(self, kind: str, harness: Harness) -> None:
        self.kind = kind
        self.harness = harness
        self.port = free_port()
        self.delivered: dict[str, list[str]] = {}
        """The trace headers the app got in the last request (see :func:`call`)."""
        self._stop: Callable[[], None]
        if kind == "asgi":
            config = uvicorn.Config(
                limelight_http.ASGIMiddleware(_asgi_app),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, daemon=True)

            def stop() -> None:
                server.should_exit = True
                thread.join(10)

        else:
            wsgi = make_server(
                "127.0.0.1",
                self.port,
                limelight_http.WSGIMiddleware(_wsgi_app),
                server_class=_ThreadingWSGIServer,
                handler_class=_QuietHandler,
            )
            thread = threading.Thread(target=wsgi.serve_forever, daemon=True)

            def stop() -> None:
                wsgi.shutdown()
                wsgi.server_close()

        thread.start()
        self._stop = stop
        assert wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        self._stop()


@pytest.fixture(scope="module")
def callbacks() -> Iterator[LocalHTTPServer]:
    """Where the service's outgoing calls land (the harness side)."""
    with LocalHTTPServer() as server:
        yield server


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    """The service, with limelight-http and limelight-httpclient loaded."""
    with Harness(plugins=[limelight_http.plugin, limelight_httpclient.plugin]) as harness:
        running = Service(request.param, harness)
        try:
            yield running
        finally:
            running.stop()


# -- the harness ---------------------------------------------------------------------------


def call(
    service: Service, callbacks: LocalHTTPServer, headers: Headers, count: int = 1
) -> list[Received]:
    """Send *headers* to the service, ask for *count* calls back, return what arrived.

    Every header is its own header line, in the order given. What the app got
    is left in ``service.delivered``.
    """
    tag = uuid.uuid4().hex
    body = json.dumps(
        [{"url": callbacks.url(f"/callback/{tag}/{i}"), "arguments": []} for i in range(count)]
    ).encode()
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=15)
    try:
        connection.putrequest("POST", f"/test/{tag}")
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        response.read()
        assert 200 == response.status
    finally:
        connection.close()
    service.delivered = _DELIVERED.pop(tag)
    arrived = [r for r in callbacks.received if r.path.startswith(f"/callback/{tag}/")]
    assert count == len(arrived)
    return sorted(arrived, key=lambda r: r.path)


def traceparent(received: Received) -> tuple[str, str, str]:
    """``(trace_id, parent_id, flags)`` of the one well-formed version-00 traceparent sent."""
    (value,) = received.header("traceparent")
    match = _OUTGOING.fullmatch(value)
    assert match is not None, value
    trace_id, parent_id, flags = match.groups()
    assert "0" * 32 != trace_id
    assert "0" * 16 != parent_id
    return trace_id, parent_id, flags


def tracestate(received: Received) -> dict[str, str]:
    """The propagated tracestate as an ordered dict (empty when none was sent)."""
    members: dict[str, str] = {}
    for value in received.header("tracestate"):
        for raw in value.split(","):
            member = raw.strip(" \t")
            if member:
                key, _, val = member.partition("=")
                assert key not in members
                members[key] = val
    return members


def as_delivered(service: Service, *values: str) -> list[str]:
    """How a header sent once per value reaches the app: one value per line in ASGI,
    folded with commas into one ``environ`` entry by wsgiref."""
    return list(values) if service.kind == "asgi" else [",".join(values)]


def trace_id_after(service: Service, callbacks: LocalHTTPServer, headers: Headers) -> str:
    (received,) = call(service, callbacks, headers)
    return traceparent(received)[0]


def state_after(
    service: Service, callbacks: LocalHTTPServer, *values: str, name: str = "tracestate"
) -> dict[str, str]:
    headers = [("traceparent", f"00-{TRACE}-{PARENT}-00"), *((name, v) for v in values)]
    (received,) = call(service, callbacks, headers)
    assert TRACE == traceparent(received)[0]
    return tracestate(received)


# -- traceparent -----------------------------------------------------------------------------


class TestTraceparent:
    """The service continues a valid traceparent and restarts the trace on an invalid one."""

    def test_without_headers_a_trace_starts(
        self, service: Service, callbacks: LocalHTTPServer
    ) -> None:
        (received,) = call(service, callbacks, [])
        traceparent(received)
        assert {} == tracestate(received)

    def test_valid_traceparent_is_continued_with_a_new_parent(
        self, service: Service, callbacks: LocalHTTPServer
    ) -> None:
        (received,) = call(service, callbacks, [("traceparent", VALID)])
        trace_id, parent_id, flags = traceparent(received)
        assert (TRACE, "01") == (trace_id, flags)
        assert PARENT != parent_id

    def test_the_chain_is_server_then_client(
        self, service: Service, callbacks: LocalHTTPServer
    ) -> None:
        (received,) = call(service, callbacks, [("traceparent", VALID)])
        _, parent_id, _ = traceparent(received)

        def by_id(span_id: str) -> ReadableSpan | None:
            # the server span ends just after the response is sent: give it a moment
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                for span in service.harness.trace(TRACE):
                    if span.context is not None and f"{span.context.span_id:016x}" == span_id:
                        return span
                time.sleep(0.01)
            return None

        client = by_id(parent_id)
        assert client is not None
        assert SpanKind.CLIENT == client.kind
        assert client.parent is not None
        server = by_id(f"{client.parent.span_id:016x}")
        assert server is not None
        assert SpanKind.SERVER == server.kind
        assert server.parent is not None
        assert PARENT == f"{server.parent.span_id:016x}"

    def test_repeated_traceparent_restarts(
        self, service: Service, callbacks: LocalHTTPServer
    ) -> None:
        other = f"00-{TRACE[:-1]}1-{PARENT}-01"
        headers = [("traceparent", other), ("traceparent", VALID)]
        assert trace_id_after(service, callbacks, headers) not in (TRACE, TRACE[:-1] + "1")
        # both reached the propagator: as two values (ASGI) or folded into one (WSGI)
        assert as_delivered(service, other, VALID) == service.delivered["traceparent"]

    @pytest.mark.parametrize("name", ["trace-parent", "trace.parent"])
    def test_other_header_names_are_ignored(
        self, service: Service, callbacks: LocalHTTPServer, name: str
    ) -> None:
        assert TRACE != trace_id_after(service, callbacks, [(name, VALID)])

    @pytest.mark.parametrize(
        "value",
        [
            f"cc-{TRACE}-{PARENT}-01",
            f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like",
        ],
    )
    def test_continued(self, service: Service, callbacks: LocalHTTPServer, value: str) -> None:
        assert TRACE == trace_id_after(service, callbacks, [("traceparent", value)])

    @pytest.mark.parametrize(
        "value",
        [
            f"{VALID}.",
            f"{VALID}-what-the-future-will-be-like",
            f"cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like",
            f"ff-{TRACE}-{PARENT}-01",
            f".0-{TRACE}-{PARENT}-01",
            f"0.-{TRACE}-{PARENT}-01",
            f"000-{TRACE}-{PARENT}-01",
            f"0000-{TRACE}-{PARENT}-01",
            f"0-{TRACE}-{PARENT}-01",
            f"00-.{TRACE[1:]}-{PARENT}-01",
            f"00-{TRACE[:-1]}.-{PARENT}-01",
            f"00-{TRACE}3-{PARENT}-01",
            f"00-{TRACE[:-1]}-{PARENT}-01",
            f"00-{TRACE}-0000000000000000-01",
            f"00-{TRACE}-.{PARENT[1:]}-01",
            f"00-{TRACE}-{PARENT[:-1]}.-01",
            f"00-{TRACE}-{PARENT}7-01",
            f"00-{TRACE}-{PARENT[:-1]}-01",
            f"00-{TRACE}-{PARENT}-.0",
            f"00-{TRACE}-{PARENT}-0.",
            f"00-{TRACE}-{PARENT}-001",
            f"00-{TRACE}-{PARENT}-1",
        ],
    )
    def test_restarted(self, service: Service, callbacks: LocalHTTPServer, value: str) -> None:
        trace_id = trace_id_after(service, callbacks, [("traceparent", value)])
        assert TRACE != trace_id
        assert TRACE[:-1] + "3" != trace_id

    def test_all_zero_trace_id_restarts(self, service: Service, callbacks: LocalHTTPServer) -> None:
        value = f"00-{'0' * 32}-{PARENT}-01"
        assert "0" * 32 != trace_id_after(service, callbacks, [("traceparent", value)])

    @pytest.mark.parametrize(("received", "random"), [("03", True), ("01", False), ("02", True)])
    def test_random_trace_id_flag_is_kept(
        self, service: Service, callbacks: LocalHTTPServer, received: str, random: bool
    ) -> None:
        headers = [("traceparent", f"00-{TRACE}-{PARENT}-{received}")]
        (arrived,) = call(service, callbacks, headers)
        _, _, flags = traceparent(arrived)
        assert random == bool(int(flags, 16) & 0x02)

    def test_reserved_flags_are_not_sent(
        self, service: Service, callbacks: LocalHTTPServer
    ) -> None:
        (arrived,) = call(service, callbacks, [("traceparent", f"00-{TRACE}-{PARENT}-ff")])
        _, _, flags = traceparent(arrived)
        assert 0 == int(flags, 16) & ~0x03


class TestMultipleCalls:
    """Every outgoing call of one request carries the trace with its own parent id."""

    def test_valid_traceparent(self, service: Service, callbacks: LocalHTTPServer) -> None:
        arrived = call(service, callbacks, [("traceparent", VALID)], count=3)
        parents = [traceparent(r) for r in arrived]
        assert {TRACE} == {t for t, _, _ in parents}
        assert 3 == len({p for _, p, _ in parents})

    def test_without_traceparent(self, service: Service, callbacks: LocalHTTPServer) -> None:
        arrived = call(service, callbacks, [], count=3)
        parents = [traceparent(r) for r in arrived]
        assert 1 == len({t for t, _, _ in parents})
        assert 3 == len({p for _, p, _ in parents})

    def test_illegal_traceparent(self, service: Service, callbacks: LocalHTTPServer) -> None:
        headers = [("traceparent", f"00-{'0' * 32}-{PARENT}-01")]
        arrived = call(service, callbacks, headers, count=3)
        parents = [traceparent(r) for r in arrived]
        assert "0" * 32 not in {t for t, _, _ in parents}
        assert 3 == len({p for _, p, _ in parents})


# -- tracestate ------------------------------------------------------------------------------


class TestTracestate:
    """tracestate is carried on when valid, combined in order, and discarded whole when not."""

    def test_without_traceparent_it_is_discarded(
        self, service: Service, callbacks: LocalHTTPServer
    ) -> None:
        (received,) = call(service, callbacks, [("tracestate", "foo=1,bar=2")])
        assert {} == tracestate(received)

    def test_carried_on(self, service: Service, callbacks: LocalHTTPServer) -> None:
        assert ["foo", "bar"] == list(state_after(service, callbacks, "foo=1,bar=2"))

    @pytest.mark.parametrize("name", ["trace-state", "trace.state"])
    def test_other_header_names_are_ignored(
        self, service: Service, callbacks: LocalHTTPServer, name: str
    ) -> None:
        assert {} == state_after(service, callbacks, "foo=1", name=name)

    @pytest.mark.parametrize("values", [("",), ("foo=1", ""), ("", "foo=1")])
    def test_empty_fields(
        self, service: Service, callbacks: LocalHTTPServer, values: tuple[str, ...]
    ) -> None:
        expected = {"foo": "1"} if any(values) else {}
        assert expected == state_after(service, callbacks, *values)

    def test_several_fields_combine_in_order(
        self, service: Service, callbacks: LocalHTTPServer
    ) -> None:
        fields = ("foo=1,bar=2", "rojo=1,congo=2", "baz=3")
        state = state_after(service, callbacks, *fields)
        assert [("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3")] == list(
            state.items()
        )
        assert as_delivered(service, *fields) == service.delivered["tracestate"]

    @pytest.mark.parametrize(
        "values", [("foo=1,foo=1",), ("foo=1,foo=2",), ("foo=1", "foo=1"), ("foo=1", "foo=2")]
    )
    def test_duplicated_keys_pass_it_on_once(
        self, service: Service, callbacks: LocalHTTPServer, values: tuple[str, ...]
    ) -> None:
        # the harness: the list is inherited, duplicates kept or one of them dropped;
        # limelight keeps the left-most entry (tracestate() asserts each key is sent once)
        assert {"foo": "1"} == state_after(service, callbacks, *values)
        assert as_delivered(service, *values) == service.delivered["tracestate"]

    def test_every_allowed_character(self, service: Service, callbacks: LocalHTTPServer) -> None:
        key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
        value = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=").strip()
        assert {key: value} == state_after(service, callbacks, f"{key}={value}")
        vendor_key = key + "@a-z0-9_-*/"
        assert {vendor_key: value} == state_after(service, callbacks, f"{vendor_key}={value}")

    @pytest.mark.parametrize(
        "value",
        [
            "foo=1 \t , \t bar=2, \t baz=3",
            "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
            "foo=1 , \t , bar=2 ,baz=3",
        ],
    )
    def test_optional_whitespace_inside_the_list(
        self, service: Service, callbacks: LocalHTTPServer, value: str
    ) -> None:
        assert {"foo": "1", "bar": "2", "baz": "3"} == state_after(service, callbacks, value)
        # the server strips only the ends of a field: the spaces and tabs around
        # the commas reached the propagator
        assert [value] == service.delivered["tracestate"]

    @pytest.mark.parametrize(
        "value",
        [
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "@foo=1,bar=2",
            "_foo=1,bar=2",
            "foo=bar=baz",
            "foo=,bar=3",
        ],
    )
    def test_invalid_member_discards_it(
        self, service: Service, callbacks: LocalHTTPServer, value: str
    ) -> None:
        assert {} == state_after(service, callbacks, value)

    @pytest.mark.parametrize(
        "key", ["foo@", "foo@@bar", "foo@bar@baz", "1foo", "t" * 242 + "@v", "t@" + "v" * 15]
    )
    def test_keys_of_the_current_grammar_are_carried_on(
        self, service: Service, callbacks: LocalHTTPServer, key: str
    ) -> None:
        # the Level 2 key: ( lcalpha / DIGIT ) 0*255( keychar ), "@" a keychar
        assert {key: "1", "bar": "2"} == state_after(service, callbacks, f"{key}=1,bar=2")

    def test_member_count_limit(self, service: Service, callbacks: LocalHTTPServer) -> None:
        members = [f"bar{i:02d}={i:02d}" for i in range(1, 34)]
        kept = state_after(service, callbacks, ",".join(members[:16]), ",".join(members[16:32]))
        assert 32 == len(kept)
        assert {} == state_after(service, callbacks, ",".join(members[:16]), ",".join(members[16:]))

    @pytest.mark.parametrize(
        ("key", "kept"),
        [
            ("z" * 256, True),
            ("z" * 257, False),
            ("t" * 241 + "@" + "v" * 14, True),
            ("t" * 242 + "@" + "v" * 13, True),
            ("t" * 242 + "@" + "v" * 14, False),
            ("t@" + "v" * 254, True),
            ("t@" + "v" * 255, False),
        ],
    )
    def test_key_length_limits(
        self, service: Service, callbacks: LocalHTTPServer, key: str, kept: bool
    ) -> None:
        state = state_after(service, callbacks, "foo=1", f"{key}=1")
        assert ({"foo": "1", key: "1"} if kept else {}) == state
