"""Real servers on loopback for the HTTP surface tests: uvicorn (ASGI) and cheroot (WSGI),
each in a thread of the test process so the ``telemetry`` fixture sees their spans."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from limelight_testsupport import free_port, wait_for_port
from opentelemetry.trace import StatusCode

from limelight.testing import Harness
from limelight_hookspecs import NumberPoint

BrokenStreamCheck = Callable[[str, str], None]
"""``check(url, route)``: see the ``broken_stream`` fixture."""


class UvicornServer:
    """uvicorn serving an ASGI app on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class CherootServer:
    """cheroot (the CherryPy WSGI server) serving a WSGI app, in a thread."""

    def __init__(self, app: Any) -> None:
        from cheroot import wsgi

        self.port = free_port()
        self.server = wsgi.Server(("127.0.0.1", self.port), app, numthreads=4)
        self.thread = threading.Thread(target=self.server.safe_start, name="cheroot", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CherootServer:
        self.thread.start()
        if not wait_for_port("127.0.0.1", self.port, 15):
            raise RuntimeError("cheroot did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.thread.join(10)


@pytest.fixture
def serve_asgi() -> Iterator[Callable[[Any], UvicornServer]]:
    """Start uvicorn for an app; stopped after the test."""
    servers: list[UvicornServer] = []

    def start(app: Any) -> UvicornServer:
        server = UvicornServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[Any], CherootServer]]:
    """Start cheroot for an app; stopped after the test."""
    servers: list[CherootServer] = []

    def start(app: Any) -> CherootServer:
        server = CherootServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture
def broken_stream(telemetry: Harness) -> BrokenStreamCheck:
    """``check(url, route)`` for a streamed response that fails after its first chunk.

    The client gets a 200 and then a body cut short. The request keeps the status
    it went out with (200, on the span and in ``http_requests_total``), and its span
    is an error carrying the exception that ended the stream (``RuntimeError: feed
    lost``). The in-flight count is back to 0.
    """

    def in_flight() -> float:
        points = telemetry.metric("http_requests_in_flight").points
        return sum(p.value for p in points if isinstance(p, NumberPoint))

    def check(url: str, route: str) -> None:
        with httpx.Client(timeout=5) as client, client.stream("GET", url) as response:
            assert 200 == response.status_code
            with pytest.raises(httpx.RemoteProtocolError):
                response.read()  # the server cut the body short
        span = telemetry.wait_for_span(f"GET {route}", kind="server")
        assert StatusCode.ERROR == span.status.status_code
        assert "RuntimeError: feed lost" == span.status.description
        attributes = span.attributes or {}
        assert 200 == attributes["http.response.status_code"]
        assert "RuntimeError" == attributes["error.type"]
        [event] = [e for e in span.events if e.name == "exception"]
        assert "feed lost" == (event.attributes or {})["exception.message"]
        assert [{"method": "GET", "route": route, "status_code": "200"}] == telemetry.series(
            "http_requests_total"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight())

    return check
