"""Fixtures: reachable brokers, fresh names per test (deleted afterwards), a cuttable link."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
from limelight_testsupport import require_tcp

RABBIT_HOST = os.environ.get("LIMELIGHT_TEST_RABBITMQ_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("LIMELIGHT_TEST_RABBITMQ_PORT", "5672"))
NATS_HOST = os.environ.get("LIMELIGHT_TEST_NATS_HOST", "127.0.0.1")
NATS_PORT = int(os.environ.get("LIMELIGHT_TEST_NATS_PORT", "4222"))


@pytest.fixture
def rabbit() -> tuple[str, int]:
    """(host, port) of the RabbitMQ the tests use (guest/guest)."""
    require_tcp("RabbitMQ", RABBIT_HOST, RABBIT_PORT)
    return RABBIT_HOST, RABBIT_PORT


@pytest.fixture
def amqp_url(rabbit: tuple[str, int]) -> str:
    return f"amqp://guest:guest@{rabbit[0]}:{rabbit[1]}/"


@pytest.fixture
def names(rabbit: tuple[str, int]) -> Iterator[str]:
    """A prefix for this test's queues and exchanges; every one is deleted afterwards."""
    import pika  # type: ignore[import-untyped]

    prefix = f"limelight-queue-test.{uuid.uuid4().hex[:12]}"
    yield prefix
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            rabbit[0], rabbit[1], credentials=pika.PlainCredentials("guest", "guest")
        )
    )
    try:
        channel = connection.channel()
        for suffix in ("", ".a", ".b", ".c"):
            channel.queue_delete(prefix + suffix)
            channel.exchange_delete(prefix + ".x" + suffix)
    finally:
        connection.close()


@pytest.fixture
def nats_server() -> tuple[str, int]:
    """(host, port) of the NATS server (JetStream enabled) the tests use."""
    require_tcp("NATS", NATS_HOST, NATS_PORT)
    return NATS_HOST, NATS_PORT


class Link:
    """A TCP relay to a server that a test can cut, as a broker closing the connection would."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every relayed connection from the server's side."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.cut()
        self._server.close()


@pytest.fixture
def rabbit_link(rabbit: tuple[str, int]) -> Iterator[Link]:
    link = Link(*rabbit)
    yield link
    link.close()


@pytest.fixture
def nats_link(nats_server: tuple[str, int]) -> Iterator[Link]:
    link = Link(*nats_server)
    yield link
    link.close()
