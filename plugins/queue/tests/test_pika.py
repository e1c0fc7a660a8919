"""pika (BlockingConnection) against the local RabbitMQ: every delivery path, one trace."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import limelight_queue
import pika  # type: ignore[import-untyped]
import pika.exceptions  # type: ignore[import-untyped]
import pytest
from limelight_queue import plugin
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])

tracer = trace.get_tracer("test")


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    limelight_queue.instrument("pika")
    yield
    limelight_queue.uninstrument("pika")


def connect(host: str, port: int) -> Any:
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host, port, credentials=pika.PlainCredentials("guest", "guest"), heartbeat=0
        )
    )


@pytest.fixture
def channel(rabbit: tuple[str, int], names: str) -> Iterator[Any]:
    connection = connect(*rabbit)
    ch = connection.channel()
    ch.queue_declare(names)
    yield ch
    if connection.is_open:
        connection.close()


def sid(span: ReadableSpan) -> int | None:
    return span.context.span_id if span.context else None


def parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def count(telemetry: Harness, queue: str, result: str) -> float:
    return telemetry.value("queue_messages_total", queue=queue, result=result, default=0)


def in_flight(telemetry: Harness, queue: str) -> float:
    return telemetry.value("queue_in_flight", queue=queue, default=0)


def publish(channel: Any, queue: str, body: bytes, **properties: Any) -> None:
    channel.basic_publish("", queue, body, pika.BasicProperties(**properties))


class TestTrace:
    """Publisher and consumer share one trace; the handler runs inside the process span."""

    def test_basic_consume(self, telemetry: Harness, channel: Any, names: str) -> None:
        def handler(ch: Any, method: Any, properties: Any, body: bytes) -> None:
            with tracer.start_as_current_span("handle"):
                pass
            ch.basic_ack(method.delivery_tag)
            ch.stop_consuming()

        with tracer.start_as_current_span("request"):
            publish(channel, names, b"hello", message_id="m-1")
        channel.basic_consume(names, handler)
        channel.start_consuming()
        producer = telemetry.span(f"publish {names}", kind="producer")
        consumer = telemetry.span(f"process {names}", kind="consumer")
        handle = telemetry.span("handle")
        assert sid(telemetry.span("request")) == parent(producer)
        assert sid(producer) == parent(consumer)
        assert [sid(producer)] == [link.context.span_id for link in consumer.links]
        assert sid(consumer) == parent(handle)
        attributes = dict(producer.attributes or {})
        assert ("rabbitmq", names, "m-1", 5) == (
            attributes["messaging.system"],
            attributes["messaging.destination.name"],
            attributes["messaging.message.id"],
            attributes["messaging.message.body.size"],
        )
        assert ("127.0.0.1", 5672) == (attributes["server.address"], attributes["server.port"])
        assert 1 == count(telemetry, names, "ack")
        assert 0 == in_flight(telemetry, names)

    def test_publish_without_properties(self, telemetry: Harness, channel: Any, names: str) -> None:
        channel.basic_publish("", names, b"bare")
        _method, properties, body = channel.basic_get(names, auto_ack=True)
        assert b"bare" == body
        assert "traceparent" in properties.headers
        assert (None, None, None) == channel.basic_get(names)  # ends the delivery
        assert sid(telemetry.span(f"publish {names}")) == parent(telemetry.span(f"process {names}"))
        assert 1 == count(telemetry, names, "ack")


class TestSelectConnection:
    """The asynchronous adapters (``SelectConnection``): callbacks and settlements too."""

    def test_select_connection(
        self, telemetry: Harness, rabbit: tuple[str, int], names: str
    ) -> None:
        parameters = pika.ConnectionParameters(
            rabbit[0], rabbit[1], credentials=pika.PlainCredentials("guest", "guest")
        )
        state: dict[str, Any] = {}

        def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
            with tracer.start_as_current_span("handle"):
                pass
            ch.basic_ack(method.delivery_tag)
            state["connection"].close()

        def on_declared(frame: Any) -> None:
            channel = state["channel"]
            channel.basic_consume(names, on_message)
            channel.basic_publish("", names, b"async")

        def on_channel(channel: Any) -> None:
            state["channel"] = channel
            channel.queue_declare(names, callback=on_declared)

        def on_open(connection: Any) -> None:
            connection.channel(on_open_callback=on_channel)

        def on_close(connection: Any, reason: Any) -> None:
            connection.ioloop.stop()

        connection: Any = pika.SelectConnection(
            parameters, on_open_callback=on_open, on_close_callback=on_close
        )
        state["connection"] = connection
        timer = threading.Timer(10, connection.ioloop.stop)
        timer.start()
        try:
            connection.ioloop.start()
        finally:
            timer.cancel()
        producer = telemetry.span(f"publish {names}", kind="producer")
        consumer = telemetry.span(f"process {names}", kind="consumer")
        assert sid(producer) == parent(consumer)
        assert sid(consumer) == parent(telemetry.span("handle"))
        assert 1 == count(telemetry, names, "ack")
        assert 0 == in_flight(telemetry, names)


class TestGenerator:
    """``BlockingChannel.consume()``: the span lasts until the next message is asked for
    or the message is settled, and is current in the loop body meanwhile."""

    def test_consume_generator(self, telemetry: Harness, channel: Any, names: str) -> None:
        for body in (b"1", b"2", b"3"):
            publish(channel, names, body)
        seen = []
        for method, _properties, body in channel.consume(names, inactivity_timeout=5):
            assert method is not None
            seen.append(body)
            with tracer.start_as_current_span(f"handle {body.decode()}"):
                pass
            if body == b"1":
                channel.basic_ack(method.delivery_tag)
                assert not trace.get_current_span().is_recording()
            elif body == b"2":
                time.sleep(0.05)  # left unsettled: ends when the next message is asked for
            else:
                channel.basic_reject(method.delivery_tag, requeue=False)
                break
        channel.cancel()
        assert [b"1", b"2", b"3"] == seen
        processes = telemetry.find_spans(f"process {names}")
        assert 3 == len(processes)
        for number in ("1", "2", "3"):
            handle = telemetry.span(f"handle {number}")
            assert parent(handle) in {sid(p) for p in processes}
        assert not trace.get_current_span().is_recording()
        assert 1 == count(telemetry, names, "ack")
        assert 1 == count(telemetry, names, "reject")
        assert 0 == in_flight(telemetry, names)
        # "2" was left unsettled: the broker delivers it again once the channel closes
        assert 0 == count(telemetry, names, "nack")
        channel.close()
        assert 1 == count(telemetry, names, "nack")
        slow = telemetry.histogram("queue_process_duration_seconds", queue=names, result="nack")
        assert slow.sum >= 0.05

    def test_basic_get(self, telemetry: Harness, channel: Any, names: str) -> None:
        publish(channel, names, b"x")
        method, _properties, _body = channel.basic_get(names)
        with tracer.start_as_current_span("after get"):
            pass
        channel.basic_nack(method.delivery_tag, requeue=False)
        assert (None, None, None) == channel.basic_get(names)
        assert sid(telemetry.span(f"process {names}")) == parent(telemetry.span("after get"))
        assert 1 == count(telemetry, names, "nack")
        assert 0 == in_flight(telemetry, names)


class TestSettlement:
    """ack, nack and reject counted exactly, multiple acks included."""

    def test_each_settlement_and_raise(self, telemetry: Harness, channel: Any, names: str) -> None:
        bodies = [b"ack", b"nack", b"reject", b"raise"]
        for body in bodies:
            publish(channel, names, body)
        seen: list[bytes] = []

        def handler(ch: Any, method: Any, properties: Any, body: bytes) -> None:
            seen.append(body)
            if len(seen) == len(bodies):
                ch.stop_consuming()
            if body == b"ack":
                ch.basic_ack(method.delivery_tag)
            elif body == b"nack":
                ch.basic_nack(method.delivery_tag, requeue=False)
            elif body == b"reject":
                ch.basic_reject(method.delivery_tag, requeue=False)
            else:
                raise RuntimeError("handler failed")

        channel.basic_consume(names, handler)
        with pytest.raises(RuntimeError, match="handler failed"):
            channel.start_consuming()
        assert 1 == count(telemetry, names, "ack")
        assert 1 == count(telemetry, names, "reject")
        assert 1 == count(telemetry, names, "nack")
        assert 0 == in_flight(telemetry, names)
        # the one that raised is still unsettled: once its channel closes, the broker
        # delivers it again, and it counts as nack
        channel.close()
        assert 2 == count(telemetry, names, "nack")
        failed = telemetry.span(f"process {names}", status="error")
        assert "RuntimeError" == (failed.attributes or {})["error.type"]

    def test_multiple_ack(self, telemetry: Harness, channel: Any, names: str) -> None:
        for body in (b"1", b"2", b"3"):
            publish(channel, names, body)
        tags = [channel.basic_get(names)[0].delivery_tag for _ in range(3)]
        # each get ended the previous delivery unsettled, the last one is still open:
        # one acknowledgement settles all three
        assert 0 == count(telemetry, names, "ack") + count(telemetry, names, "nack")
        channel.basic_ack(tags[-1], multiple=True)
        assert 3 == count(telemetry, names, "ack")
        assert 0 == count(telemetry, names, "nack")


class TestInFlight:
    """In flight is 0 again after a connection dropped mid-delivery."""

    def test_dropped_connection(
        self, telemetry: Harness, channel: Any, names: str, rabbit_link: Any
    ) -> None:
        publish(channel, names, b"x")
        proxied = connect("127.0.0.1", rabbit_link.port)
        consumer = proxied.channel()
        raised: list[BaseException] = []

        def handler(ch: Any, method: Any, properties: Any, body: bytes) -> None:
            rabbit_link.cut()
            time.sleep(0.1)
            ch.basic_ack(method.delivery_tag)

        consumer.basic_consume(names, handler)
        try:
            consumer.start_consuming()
        except (pika.exceptions.AMQPError, OSError) as exc:
            raised.append(exc)
        assert raised
        assert 0 == in_flight(telemetry, names)
        # the broker delivers it again
        deadline = time.monotonic() + 10
        method = None
        while method is None and time.monotonic() < deadline:
            method, _properties, _body = channel.basic_get(names, auto_ack=True)
        assert method is not None and method.redelivered
        channel.basic_get(names)  # ends the delivery of the redelivered message
        assert 1 == count(telemetry, names, "nack")  # cut off before its ack reached the broker
        assert 1 == count(telemetry, names, "ack")  # the redelivery, auto-acked


class TestBoundaries:
    """A publisher that is not instrumented, bad headers, the instrument contract."""

    def test_uninstrumented_publisher(self, telemetry: Harness, channel: Any, names: str) -> None:
        limelight_queue.uninstrument("pika")
        publish(channel, names, b"plain")
        publish(channel, names, b"odd", headers={"traceparent": 12, "tracestate": ["a"]})
        limelight_queue.instrument("pika")
        for _ in range(2):
            method, _properties, _body = channel.basic_get(names, auto_ack=True)
            assert method is not None
        channel.basic_get(names)  # ends the second delivery
        for span in telemetry.find_spans(f"process {names}"):
            assert span.parent is None
            assert span.status.is_unset
        assert 2 == count(telemetry, names, "ack")

    def test_threads_do_not_share_deliveries(self, rabbit: tuple[str, int], names: str) -> None:
        """Without telemetry running, instrumented pika behaves exactly as plain pika."""
        results: list[bytes] = []

        def work() -> None:
            connection = connect(*rabbit)
            ch = connection.channel()
            ch.queue_declare(names)
            ch.basic_publish("", names, b"t", pika.BasicProperties(headers={"k": "v"}))
            _method, properties, body = ch.basic_get(names, auto_ack=True)
            assert {"k": "v"} == properties.headers
            results.append(body)
            connection.close()

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(10)
        assert [b"t"] == results

    def test_restore(self) -> None:
        from pika.adapters.blocking_connection import (  # type: ignore[import-untyped]
            BlockingChannel,
        )

        limelight_queue.uninstrument("pika")
        before = {name: vars(BlockingChannel).get(name) for name in ("basic_publish", "consume")}
        limelight_queue.instrument("pika")
        assert BlockingChannel.basic_publish is not before["basic_publish"]
        limelight_queue.uninstrument("pika")
        assert before == {name: vars(BlockingChannel).get(name) for name in before}
        limelight_queue.instrument("pika")
