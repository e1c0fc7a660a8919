"""A real HTTP server on a free local port that records what it receives.

For tests of HTTP clients and of services that call out: it answers over real
sockets (HTTP/1.1 keep-alive, chunked bodies, slow responses, any status) and
keeps every request's method, path, headers (repeated ones included) and
client port::

    with LocalHTTPServer() as server:
        httpx.get(server.url("/ok"))
        assert ["00-..."] == server.last().header("traceparent")
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import free_port

__all__ = ["LocalHTTPServer", "Received"]


class Received:
    """What the server saw of one request."""

    def __init__(
        self, method: str, path: str, headers: list[tuple[str, str]], client_port: int
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.client_port = client_port

    def header(self, name: str) -> list[str]:
        """Every value of header *name* (any case)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _record(self) -> dict[str, list[str]]:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.received.append(
            Received(self.command, self.path, list(self.headers.items()), self.client_address[1])
        )
        return parse_qs(urlsplit(self.path).query)

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        query = self._record()
        path = urlsplit(self.path).path
        if path.startswith("/status/"):
            self._reply(int(path.rsplit("/", 1)[1]), b"status")
        elif path == "/slow":
            time.sleep(float(query.get("delay", ["1"])[0]))
            self._reply(200, b"slow")
        elif path == "/stream":
            chunks = int(query.get("chunks", ["3"])[0])
            delay = float(query.get("delay", ["0.05"])[0])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(chunks):
                time.sleep(delay)
                data = f"chunk{i};".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/headers":
            body = json.dumps([list(p) for p in self.headers.items()]).encode()
            self._reply(200, body, "application/json")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(200, b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[Received]

    def handle_error(self, request: object, client_address: object) -> None:
        # a client that hangs up early (timeouts, closed streams) is expected here
        return None


class LocalHTTPServer:
    """A threaded HTTP/1.1 (keep-alive) server on 127.0.0.1 recording every request.

    Paths: ``/ok`` (200, ``ok``), ``/status/<code>``, ``/slow?delay=<s>``,
    ``/stream?chunks=<n>&delay=<s>`` (a chunked body sent slowly),
    ``/headers`` (the request headers as a JSON list of pairs),
    ``/redirect`` (302 to ``/ok``); anything else answers like ``/ok``.
    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.server = _Server(("127.0.0.1", self.port), _Handler)
        self.server.received = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def received(self) -> list[Received]:
        """Every request received so far, in arrival order."""
        return self.server.received

    def url(self, path: str = "/ok") -> str:
        """The absolute URL of *path* on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def last(self) -> Received:
        """The latest request received."""
        return self.server.received[-1]

    def start(self) -> LocalHTTPServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
