"""aio-pika against the local RabbitMQ: every delivery path, one trace, settlements counted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aio_pika
import limelight_queue
import pytest
from limelight_queue import plugin
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from limelight.testing import Harness

pytestmark = [pytest.mark.limelight(plugins=[plugin]), pytest.mark.asyncio]

tracer = trace.get_tracer("test")


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    limelight_queue.instrument("aio_pika")
    yield
    limelight_queue.uninstrument("aio_pika")


def sid(span: ReadableSpan | None) -> int | None:
    return span.context.span_id if span is not None and span.context else None


def parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def count(telemetry: Harness, queue: str, result: str) -> float:
    return telemetry.value("queue_messages_total", queue=queue, result=result, default=0)


def in_flight(telemetry: Harness, queue: str) -> float:
    return telemetry.value("queue_in_flight", queue=queue, default=0)


async def setup(url: str, name: str) -> tuple[Any, Any, Any]:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    queue = await channel.declare_queue(name, auto_delete=False)
    return connection, channel, queue


async def wait_for(probe: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


class TestTrace:
    """Publisher and consumer share one trace; the handler runs inside the process span."""

    async def test_consume_callback(self, telemetry: Harness, amqp_url: str, names: str) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        inner: list[trace.Span] = []

        async def handler(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            with tracer.start_as_current_span("handle") as span:
                inner.append(span)
            await message.ack()

        async with connection:
            await queue.consume(handler)
            with tracer.start_as_current_span("request"):
                await channel.default_exchange.publish(
                    aio_pika.Message(b"hello", message_id="m-1", correlation_id="c-1"), names
                )
            await wait_for(lambda: count(telemetry, names, "ack") == 1)
        producer = telemetry.span(f"publish {names}", kind="producer")
        consumer = telemetry.span(f"process {names}", kind="consumer")
        handle = telemetry.span("handle")
        assert sid(telemetry.span("request")) == parent(producer)
        assert producer.context and consumer.context and handle.context
        assert producer.context.trace_id == consumer.context.trace_id == handle.context.trace_id
        assert sid(producer) == parent(consumer)
        assert [sid(producer)] == [link.context.span_id for link in consumer.links]
        assert sid(consumer) == parent(handle)
        assert {
            "messaging.system": "rabbitmq",
            "messaging.operation.name": "publish",
            "messaging.operation.type": "send",
            "messaging.destination.name": names,
            "messaging.rabbitmq.destination.routing_key": names,
            "messaging.message.id": "m-1",
            "messaging.message.conversation_id": "c-1",
            "messaging.message.body.size": 5,
            "server.address": "127.0.0.1",
            "server.port": 5672,
        } == dict(producer.attributes or {})
        attributes = dict(consumer.attributes or {})
        assert "process" == attributes["messaging.operation.type"]
        assert names == attributes["messaging.destination.name"]
        assert 1 == attributes["messaging.rabbitmq.message.delivery_tag"]
        assert 1 == telemetry.value("queue_published_total", queue=names, result="ok")
        assert 0 == in_flight(telemetry, names)

    async def test_exchange_and_routing_key(
        self, telemetry: Harness, amqp_url: str, names: str
    ) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        async with connection:
            exchange = await channel.declare_exchange(names + ".x", aio_pika.ExchangeType.TOPIC)
            await queue.bind(exchange, "orders.#")
            await exchange.publish(aio_pika.Message(b"x"), "orders.created")
            message = await queue.get(timeout=5)
            await message.ack()
            await exchange.delete()
        producer = telemetry.span(f"publish {names}.x:orders.created")
        consumer = telemetry.span(f"process {names}.x:orders.created:{names}")
        assert sid(producer) == parent(consumer)
        assert 1 == telemetry.value(
            "queue_published_total", queue=f"{names}.x:orders.created", result="ok"
        )
        assert 1 == count(telemetry, names, "ack")  # the consumer side is labelled by queue

    async def test_iterator(self, telemetry: Harness, amqp_url: str, names: str) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        async with connection:
            for body in (b"1", b"2", b"3"):
                await channel.default_exchange.publish(aio_pika.Message(body), names)
            bodies = []
            async with queue.iterator() as iterator:
                async for message in iterator:
                    with tracer.start_as_current_span(f"handle {message.body.decode()}"):
                        pass
                    bodies.append(message.body)
                    if message.body == b"1":
                        await message.ack()
                        # settled: the process span is no longer current
                        assert not trace.get_current_span().is_recording()
                    elif message.body == b"2":
                        async with message.process():
                            with tracer.start_as_current_span("inside process()"):
                                pass
                    else:
                        await message.reject()
                        break
        assert [b"1", b"2", b"3"] == bodies
        publishes = telemetry.find_spans(f"publish {names}")
        processes = telemetry.find_spans(f"process {names}")
        assert 3 == len(publishes) == len(processes)
        for number in ("1", "2", "3"):
            handle = telemetry.span(f"handle {number}")
            process = next(p for p in processes if sid(p) == parent(handle))
            assert parent(process) in {sid(p) for p in publishes}
        inside = telemetry.span("inside process()")
        assert parent(inside) in {sid(p) for p in processes}
        assert 2 == count(telemetry, names, "ack")
        assert 1 == count(telemetry, names, "reject")
        assert 0 == in_flight(telemetry, names)
        assert not trace.get_current_span().is_recording()

    async def test_get_and_process(self, telemetry: Harness, amqp_url: str, names: str) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        async with connection:
            await channel.default_exchange.publish(aio_pika.Message(b"x"), names)
            await channel.default_exchange.publish(aio_pika.Message(b"y"), names)
            message = await queue.get(timeout=5)
            with tracer.start_as_current_span("after get"):
                pass
            async with message.process():
                with tracer.start_as_current_span("in process"):
                    pass
            auto = await queue.get(no_ack=True, timeout=5)
            with tracer.start_as_current_span("after no-ack get"):
                pass
            assert auto.body == b"y"
            assert None is await queue.get(fail=False, timeout=5)  # ends the no-ack delivery
        first, second = telemetry.find_spans(f"process {names}")
        assert sid(first) == parent(telemetry.span("after get"))
        assert sid(first) == parent(telemetry.span("in process"))
        assert sid(second) == parent(telemetry.span("after no-ack get"))
        assert 2 == count(telemetry, names, "ack")
        assert 0 == in_flight(telemetry, names)

    async def test_robust_connection(self, telemetry: Harness, amqp_url: str, names: str) -> None:
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(names)
            done = asyncio.Event()

            async def handler(message: Any) -> None:
                with tracer.start_as_current_span("callback"):
                    await message.ack()
                done.set()

            tag = await queue.consume(handler)
            await channel.default_exchange.publish(aio_pika.Message(b"1"), names)
            await asyncio.wait_for(done.wait(), 5)
            await queue.cancel(tag)
            await channel.default_exchange.publish(aio_pika.Message(b"2"), names)
            async with queue.iterator() as iterator:
                async for message in iterator:
                    with tracer.start_as_current_span("loop body"):
                        pass
                    await message.ack()
                    break
        processes = telemetry.find_spans(f"process {names}")
        assert 2 == len(processes)
        for name in ("callback", "loop body"):
            assert parent(telemetry.span(name)) in {sid(p) for p in processes}
        assert {parent(p) for p in processes} == {
            sid(p) for p in telemetry.find_spans(f"publish {names}")
        }
        assert 2 == count(telemetry, names, "ack")

    async def test_uninstrumented_publisher_gives_a_root_consumer(
        self, telemetry: Harness, amqp_url: str, names: str
    ) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        async with connection:
            limelight_queue.uninstrument("aio_pika")
            await channel.default_exchange.publish(aio_pika.Message(b"plain"), names)
            await channel.default_exchange.publish(
                aio_pika.Message(
                    b"garbled",
                    headers={"traceparent": "00-" + "f" * 1000, "tracestate": 7, "x": [1, "a"]},
                ),
                names,
            )
            limelight_queue.instrument("aio_pika")
            got = []
            with tracer.start_as_current_span("poller"):
                for _ in range(2):
                    message = await queue.get(timeout=5)
                    got.append(message.body)
                    await message.ack()
        assert [b"plain", b"garbled"] == got
        for span in telemetry.find_spans(f"process {names}"):
            assert span.parent is None
            assert span.status.is_unset
            # pulled inside another span: linked to it, never its child
            assert [sid(telemetry.span("poller"))] == [link.context.span_id for link in span.links]
        assert 2 == count(telemetry, names, "ack")


class TestSettlement:
    """ack, nack and reject are counted exactly, as the broker was told."""

    async def test_each_settlement(self, telemetry: Harness, amqp_url: str, names: str) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        done = asyncio.Event()
        seen: list[bytes] = []

        async def handler(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            seen.append(message.body)
            if len(seen) == 6:
                done.set()
            if message.body.startswith(b"ack"):
                await message.ack()
            elif message.body == b"nack":
                await message.nack(requeue=False)
            elif message.body == b"reject":
                await message.reject()
            elif message.body == b"raise":
                raise RuntimeError("handler failed")

        async with connection:
            await channel.set_qos(prefetch_count=1)
            for body in (b"ack1", b"nack", b"reject", b"ack2", b"ack3", b"raise"):
                await channel.default_exchange.publish(aio_pika.Message(body), names)
            tag = await queue.consume(handler)
            await asyncio.wait_for(done.wait(), 10)
            await queue.cancel(tag)
        assert 3 == count(telemetry, names, "ack")
        assert 1 == count(telemetry, names, "reject")
        # the nack, and the one that raised, left unsettled: its process span failed
        # and the broker delivers it again, so it counts as nack once the handler ended
        assert 2 == count(telemetry, names, "nack")
        failed = telemetry.span(f"process {names}", status="error")
        assert "RuntimeError" == (failed.attributes or {})["error.type"]
        assert 0 == in_flight(telemetry, names)

    async def test_process_context_in_a_callback(
        self, telemetry: Harness, amqp_url: str, names: str
    ) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        seen: list[bytes] = []
        done = asyncio.Event()

        async def handler(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            seen.append(message.body)
            if len(seen) == 2:
                done.set()
            async with message.process():
                with tracer.start_as_current_span(f"work {message.body.decode()}"):
                    if message.body == b"bad":
                        raise ValueError("bad message")

        async with connection:
            await queue.consume(handler)
            for body in (b"good", b"bad"):
                await channel.default_exchange.publish(aio_pika.Message(body), names)
            await asyncio.wait_for(done.wait(), 5)
            await wait_for(lambda: count(telemetry, names, "reject") == 1)
        assert 1 == count(telemetry, names, "ack")
        processes = {sid(p): p for p in telemetry.find_spans(f"process {names}")}
        assert parent(telemetry.span("work good")) in processes
        bad = processes[parent(telemetry.span("work bad"))]
        assert "ValueError" == (bad.attributes or {})["error.type"]
        assert 0 == in_flight(telemetry, names)

    async def test_multiple_ack(self, telemetry: Harness, amqp_url: str, names: str) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        async with connection:
            for body in (b"1", b"2", b"3"):
                await channel.default_exchange.publish(aio_pika.Message(body), names)
            held: list[aio_pika.abc.AbstractIncomingMessage] = []
            async with message_scope(queue) as get:
                for _ in range(3):
                    held.append(await get())
                assert 3 == in_flight(telemetry, names)
                await held[-1].ack(multiple=True)
        assert 3 == count(telemetry, names, "ack")
        assert 0 == in_flight(telemetry, names)


class message_scope:  # noqa: N801 - used as a context manager
    """Three deliveries open at once on one channel (callbacks that park their messages)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.release = asyncio.Event()
        self.tag: str | None = None

    async def __aenter__(self) -> Any:
        async def handler(message: Any) -> None:
            await self.inbox.put(message)
            await self.release.wait()

        self.tag = await self.queue.consume(handler)

        async def get() -> Any:
            return await asyncio.wait_for(self.inbox.get(), 5)

        return get

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        await asyncio.sleep(0.05)
        await self.queue.cancel(self.tag)


class TestInFlight:
    """In flight returns to 0 after raising, cancelled and dropped-connection deliveries."""

    async def test_cancelled_delivery(self, telemetry: Harness, amqp_url: str, names: str) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        running: asyncio.Queue[asyncio.Task[Any]] = asyncio.Queue()

        async def handler(message: Any) -> None:
            task = asyncio.current_task()
            assert task is not None
            await running.put(task)
            await asyncio.sleep(30)

        async with connection:
            await queue.consume(handler)
            await channel.default_exchange.publish(aio_pika.Message(b"slow"), names)
            task = await asyncio.wait_for(running.get(), 5)
            assert 1 == in_flight(telemetry, names)
            task.cancel()
            await wait_for(lambda: in_flight(telemetry, names) == 0)
        assert 1 == count(telemetry, names, "nack")
        assert "CancelledError" in str(
            (telemetry.span(f"process {names}").attributes or {})["error.type"]
        )

    async def test_cancelled_iterator_task(
        self, telemetry: Harness, amqp_url: str, names: str
    ) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        got = asyncio.Event()

        async def loop() -> None:
            async for _message in queue.iterator():
                got.set()
                await asyncio.sleep(30)

        async with connection:
            await channel.default_exchange.publish(aio_pika.Message(b"x"), names)
            task = asyncio.create_task(loop())
            await asyncio.wait_for(got.wait(), 5)
            assert 1 == in_flight(telemetry, names)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert 0 == in_flight(telemetry, names)
        assert 1 == count(telemetry, names, "nack")

    async def test_dropped_connection(
        self, telemetry: Harness, names: str, rabbit_link: Any, amqp_url: str
    ) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        proxied = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{rabbit_link.port}/")
        proxied_channel = await proxied.channel()
        proxied_queue = await proxied_channel.get_queue(names)
        started = asyncio.Event()
        release = asyncio.Event()
        errors: list[BaseException] = []

        async def handler(message: Any) -> None:
            started.set()
            await release.wait()
            try:
                await message.ack()
            except BaseException as exc:
                errors.append(exc)
                raise

        async with connection:
            await proxied_queue.consume(handler)
            await channel.default_exchange.publish(aio_pika.Message(b"x"), names)
            await asyncio.wait_for(started.wait(), 5)
            rabbit_link.cut()
            await wait_for(lambda: proxied_channel.is_closed)
            release.set()
            await wait_for(lambda: in_flight(telemetry, names) == 0)
            # the broker delivers the message again (to this connection's consumer)
            message = await queue.get(timeout=5)
            assert message.redelivered
            await message.ack()
        # the delivery that was cut off ended with an error (the ack failed, or the
        # handler was cancelled as the channel closed), and counts as nack
        cut = telemetry.span(f"process {names}", status="error")
        assert "error.type" in (cut.attributes or {})
        assert 1 == count(telemetry, names, "nack")
        assert 1 == count(telemetry, names, "ack")

    async def test_publish_to_a_missing_exchange(
        self, telemetry: Harness, amqp_url: str, names: str
    ) -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = aio_pika.Exchange(channel, names + ".x.missing", passive=True)
            with pytest.raises(aio_pika.exceptions.AMQPError):
                await exchange.publish(aio_pika.Message(b"x"), "key")
        assert 1 == telemetry.value(
            "queue_published_total", queue=f"{names}.x.missing:key", result="error"
        )
        span = telemetry.span(f"publish {names}.x.missing:key", status="error")
        assert "error.type" in (span.attributes or {})


class TestInstrumentContract:
    """instrument() is idempotent and uninstrument() restores aio-pika exactly."""

    async def test_restore(self) -> None:
        limelight_queue.uninstrument("aio_pika")
        before = {
            (owner, name): vars(owner).get(name)
            for owner, name in [
                (aio_pika.Exchange, "publish"),
                (aio_pika.queue.Queue, "consume"),
                (aio_pika.queue.Queue, "get"),
                (aio_pika.IncomingMessage, "ack"),
                (aio_pika.queue.QueueIterator, "__anext__"),
            ]
        }
        assert ("aio_pika",) == limelight_queue.instrument("aio_pika")
        assert () == limelight_queue.instrument("aio_pika")
        assert limelight_queue.is_instrumented("aio_pika")
        assert aio_pika.Exchange.publish is not before[(aio_pika.Exchange, "publish")]
        limelight_queue.uninstrument("aio_pika")
        assert not limelight_queue.is_instrumented("aio_pika")
        for (owner, name), value in before.items():
            assert value is vars(owner).get(name)
        limelight_queue.instrument("aio_pika")

    async def test_consumers_wrapped_before_uninstrument_pass_through(
        self, telemetry: Harness, amqp_url: str, names: str
    ) -> None:
        connection, channel, queue = await setup(amqp_url, names)
        got = asyncio.Event()

        async def handler(message: Any) -> None:
            await message.ack()
            got.set()

        async with connection:
            await queue.consume(handler)
            limelight_queue.uninstrument("aio_pika")
            await channel.default_exchange.publish(aio_pika.Message(b"x"), names)
            await asyncio.wait_for(got.wait(), 5)
        assert [] == telemetry.spans()
        assert 0 == count(telemetry, names, "ack")

    async def test_no_telemetry_passes_through(self, amqp_url: str, names: str) -> None:
        """Outside a started telemetry the message goes exactly as without limelight."""
        connection, channel, queue = await setup(amqp_url, names)
        async with connection:
            await channel.default_exchange.publish(aio_pika.Message(b"x", headers={"a": 1}), names)
            message = await queue.get(timeout=5)
            assert {"a": 1} == message.headers
            await message.ack()
