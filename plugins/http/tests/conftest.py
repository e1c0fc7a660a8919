"""Real servers on loopback for the HTTP surface tests: uvicorn (ASGI) and cheroot (WSGI),
each in a thread of the test process so the ``telemetry`` fixture sees their spans."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from limelight_testsupport import free_port, wait_for_port


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
