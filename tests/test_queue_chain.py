"""One trace from an HTTP request to a function run by a queue consumer in another process.

The chain: an HTTP request (with a ``traceparent`` from its caller) reaches a
WSGI service behind limelight-http; the request handler calls an
``@limelight.instrument`` function that publishes a message to the local
RabbitMQ through pika; a consumer in another process (its own telemetry,
limelight-queue loaded) processes the message and calls an instrumented
function. Every span shares the caller's trace id, and each one's parent is
the span before it: caller → SERVER → function → PRODUCER → CONSUMER (also
linked to the PRODUCER) → function.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import limelight_http
import limelight_queue
import pika  # type: ignore[import-untyped]
import pytest
from limelight_testsupport import free_port, require_tcp

import limelight
from limelight.testing import Harness

RABBIT = ("127.0.0.1", 5672)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"

CONSUMER = textwrap.dedent(
    """
    import json, sys
    import pika
    import limelight
    import limelight_queue
    from limelight.testing import Harness

    queue = sys.argv[1]

    @limelight.instrument
    def fulfil(body):
        return body.upper()

    with Harness(plugins=[limelight_queue.plugin]) as harness:
        limelight_queue.instrument("pika")
        connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
        channel = connection.channel()
        channel.queue_declare(queue)

        def handle(ch, method, properties, body):
            fulfil(body)
            ch.basic_ack(method.delivery_tag)
            ch.stop_consuming()

        channel.basic_consume(queue, handle)
        print("ready", flush=True)
        channel.start_consuming()
        connection.close()
        spans = [
            {
                "name": s.name,
                "kind": s.kind.name,
                "trace_id": f"{s.context.trace_id:032x}",
                "span_id": f"{s.context.span_id:016x}",
                "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
                "links": [f"{link.context.span_id:016x}" for link in s.links],
            }
            for s in harness.spans()
        ]
        limelight_queue.uninstrument("pika")
    print(json.dumps(spans), flush=True)
    """
)


@limelight.instrument
def place_order(queue: str, order: bytes) -> None:
    """Publish the order (the instrumented function between the request and the broker)."""
    connection = pika.BlockingConnection(pika.ConnectionParameters(*RABBIT))
    try:
        connection.channel().basic_publish("", queue, order)
    finally:
        connection.close()


def make_app(queue: str) -> Callable[..., Iterable[bytes]]:
    def app(
        environ: MutableMapping[str, Any], start_response: Callable[..., object]
    ) -> Iterable[bytes]:
        place_order(queue, b"order-42")
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def queue() -> Iterator[str]:
    require_tcp("RabbitMQ", *RABBIT)
    name = f"limelight-chain.{uuid.uuid4().hex[:12]}"
    yield name
    connection = pika.BlockingConnection(pika.ConnectionParameters(*RABBIT))
    try:
        connection.channel().queue_delete(name)
    finally:
        connection.close()


def test_http_to_function_to_queue_to_another_process(queue: str) -> None:
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, queue],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert consumer.stdout is not None
        assert "ready" == consumer.stdout.readline().strip(), consumer.stderr

        with Harness(plugins=[limelight_http.plugin, limelight_queue.plugin]) as harness:
            limelight_queue.instrument("pika")
            port = free_port()
            server = make_server(
                "127.0.0.1",
                port,
                limelight_http.WSGIMiddleware(make_app(queue)),
                handler_class=_Quiet,
            )
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                client.request(
                    "POST", "/orders", headers={"traceparent": f"00-{TRACE}-{CALLER}-01"}
                )
                assert 202 == client.getresponse().status
                client.close()
                server_span = harness.wait_for_span(kind="server")
            finally:
                server.shutdown()
                server.server_close()
                limelight_queue.uninstrument("pika")
            [function] = [s for s in harness.spans() if s.name.endswith(".place_order")]
            producer = harness.span(f"publish {queue}", kind="producer")

        out, err = consumer.communicate(timeout=30)
        assert 0 == consumer.returncode, err
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()

    remote = {s["name"]: s for s in json.loads(out.strip().splitlines()[-1])}
    process = remote[f"process {queue}"]
    fulfil = next(s for name, s in remote.items() if name.endswith(".fulfil"))

    def hex_id(span: Any) -> str:
        return f"{span.context.span_id:016x}"

    def hex_parent(span: Any) -> str | None:
        return f"{span.parent.span_id:016x}" if span.parent else None

    # one trace id, the caller's, across both processes
    for span in (server_span, function, producer):
        assert TRACE == f"{span.context.trace_id:032x}"
    assert TRACE == process["trace_id"] == fulfil["trace_id"]
    # every parent link
    assert CALLER == hex_parent(server_span)
    assert hex_id(server_span) == hex_parent(function)
    assert hex_id(function) == hex_parent(producer)
    assert ("CONSUMER", hex_id(producer)) == (process["kind"], process["parent_id"])
    assert [hex_id(producer)] == process["links"]
    assert process["span_id"] == fulfil["parent_id"]
    assert "INTERNAL" == fulfil["kind"]
