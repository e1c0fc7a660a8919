"""nats-py against the local NATS server: core subscriptions and JetStream push and pull."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import limelight_queue
import nats
import nats.errors
import nats.js.api
import nats.js.errors
import pytest
import pytest_asyncio
from limelight_queue import plugin
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from limelight.testing import Harness

pytestmark = [pytest.mark.limelight(plugins=[plugin]), pytest.mark.asyncio]

tracer = trace.get_tracer("test")


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    limelight_queue.instrument("nats")
    yield
    limelight_queue.uninstrument("nats")


@pytest.fixture
def subject() -> str:
    return f"limelight-test.{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def nc(nats_server: tuple[str, int]) -> AsyncIterator[Any]:
    client = await nats.connect(f"nats://{nats_server[0]}:{nats_server[1]}")
    yield client
    await client.close()


@pytest_asyncio.fixture
async def stream(nc: Any, subject: str) -> AsyncIterator[str]:
    """A fresh JetStream stream over *subject*, deleted afterwards."""
    name = subject.replace(".", "-")
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[subject])
    yield name
    await js.delete_stream(name)


def sid(span: ReadableSpan) -> int | None:
    return span.context.span_id if span.context else None


def parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def count(telemetry: Harness, queue: str, result: str) -> float:
    return telemetry.value("queue_messages_total", queue=queue, result=result, default=0)


def in_flight(telemetry: Harness, queue: str) -> float:
    return telemetry.value("queue_in_flight", queue=queue, default=0)


async def wait_for(probe: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def assert_chain(telemetry: Harness, subject: str, handle: str) -> ReadableSpan:
    producer = telemetry.span(f"publish {subject}", kind="producer")
    consumer = telemetry.span(f"process {subject}", kind="consumer")
    inner = telemetry.span(handle)
    assert producer.context and consumer.context
    assert producer.context.trace_id == consumer.context.trace_id
    assert sid(producer) == parent(consumer)
    assert [sid(producer)] == [link.context.span_id for link in consumer.links]
    assert sid(consumer) == parent(inner)
    return consumer


class TestCore:
    """Core NATS: callbacks, next_msg and the message iterator."""

    async def test_callback(self, telemetry: Harness, nc: Any, subject: str) -> None:
        done = asyncio.Event()

        async def handler(msg: Any) -> None:
            with tracer.start_as_current_span("handle"):
                done.set()

        await nc.subscribe(subject, queue="workers", cb=handler)
        with tracer.start_as_current_span("request"):
            await nc.publish(subject, b"hello", headers={"Nats-Msg-Id": "m-1"})
        await asyncio.wait_for(done.wait(), 5)
        await wait_for(lambda: count(telemetry, subject, "ack") == 1)
        consumer = assert_chain(telemetry, subject, "handle")
        producer = telemetry.span(f"publish {subject}")
        assert sid(telemetry.span("request")) == parent(producer)
        assert {
            "messaging.system": "nats",
            "messaging.operation.name": "publish",
            "messaging.operation.type": "send",
            "messaging.destination.name": subject,
            "messaging.message.id": "m-1",
            "messaging.message.body.size": 5,
            "server.address": "127.0.0.1",
            "server.port": 4222,
        } == dict(producer.attributes or {})
        assert "workers" == (consumer.attributes or {})["messaging.consumer.group.name"]
        assert 0 == in_flight(telemetry, subject)

    async def test_next_msg_and_iterator(self, telemetry: Harness, nc: Any, subject: str) -> None:
        sub = await nc.subscribe(subject)
        await nc.publish(subject, b"1")
        await nc.publish(subject, b"2")
        await nc.publish(subject, b"3")
        await sub.next_msg(timeout=5)
        with tracer.start_as_current_span("after next_msg"):
            pass
        seen = []
        async for msg in sub.messages:
            with tracer.start_as_current_span(f"handle {msg.data.decode()}"):
                pass
            seen.append(msg.data)
            if len(seen) == 2:
                break
        await sub.unsubscribe()
        await asyncio.sleep(0)
        processes = telemetry.find_spans(f"process {subject}")
        ids = {sid(p) for p in processes}
        for name in ("after next_msg", "handle 2", "handle 3"):
            assert parent(telemetry.span(name)) in ids
        assert {parent(p) for p in processes} == {
            sid(p) for p in telemetry.find_spans(f"publish {subject}")
        }

    async def test_request_reply(self, telemetry: Harness, nc: Any, subject: str) -> None:
        async def responder(msg: Any) -> None:
            await msg.respond(b"pong")

        await nc.subscribe(subject, cb=responder)
        reply = await nc.request(subject, b"ping", timeout=5)
        assert b"pong" == reply.data
        await wait_for(lambda: count(telemetry, subject, "ack") == 1)
        # the reply goes to an inbox: its span leaves the name out
        reply_span = telemetry.span("publish", kind="producer")
        assert parent(reply_span) == sid(telemetry.span(f"process {subject}"))
        assert 1 == telemetry.value("queue_published_total", queue="_INBOX", result="ok")

    async def test_uninstrumented_publisher(
        self, telemetry: Harness, nc: Any, subject: str
    ) -> None:
        sub = await nc.subscribe(subject)
        limelight_queue.uninstrument("nats")
        await nc.publish(subject, b"plain")
        await nc.publish(subject, b"odd", headers={"traceparent": "00-" + "z" * 60})
        limelight_queue.instrument("nats")
        for _ in range(2):
            await sub.next_msg(timeout=5)
        await sub.unsubscribe()
        for span in telemetry.find_spans(f"process {subject}"):
            assert span.parent is None
            assert span.status.is_unset


class TestJetStream:
    """JetStream push and pull subscriptions: settlements counted exactly."""

    async def test_push_callback_auto_ack(
        self, telemetry: Harness, nc: Any, subject: str, stream: str
    ) -> None:
        js = nc.jetstream()
        done = asyncio.Event()

        async def handler(msg: Any) -> None:
            with tracer.start_as_current_span("handle"):
                done.set()

        await js.subscribe(subject, cb=handler)
        ack = await js.publish(subject, b"x")
        assert stream == ack.stream
        await asyncio.wait_for(done.wait(), 5)
        await wait_for(lambda: count(telemetry, subject, "ack") == 1)
        assert_chain(telemetry, subject, "handle")
        # the acknowledgement is not a message of its own
        assert 1 == len(telemetry.find_spans(kind="producer"))

    async def test_publish_without_a_stream_is_an_error(
        self, telemetry: Harness, nc: Any, subject: str
    ) -> None:
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await nc.jetstream().publish(subject + ".nostream", b"x", timeout=2)
        assert 1 == telemetry.value(
            "queue_published_total", queue=subject + ".nostream", result="error"
        )
        span = telemetry.span(f"publish {subject}.nostream", kind="producer", status="error")
        assert "error.type" in (span.attributes or {})
        assert 1 == len(telemetry.find_spans(kind="producer"))  # the request inside is not another

    async def test_push_manual_settlements(
        self, telemetry: Harness, nc: Any, subject: str, stream: str
    ) -> None:
        js = nc.jetstream()
        seen: list[bytes] = []

        async def handler(msg: Any) -> None:
            seen.append(msg.data)
            if msg.data == b"ack":
                await msg.ack()
            elif msg.data == b"nak" and msg.metadata.num_delivered == 1:
                await msg.nak()
            elif msg.data == b"term":
                await msg.term()
            elif msg.data == b"nak":
                await msg.ack_sync()

        await js.subscribe(subject, cb=handler, manual_ack=True)
        for body in (b"ack", b"nak", b"term"):
            await js.publish(subject, body)
        await wait_for(lambda: count(telemetry, subject, "ack") == 2)
        assert 1 == count(telemetry, subject, "nack")
        assert 1 == count(telemetry, subject, "reject")
        assert 0 == in_flight(telemetry, subject)
        assert sorted(seen) == sorted([b"ack", b"nak", b"term", b"nak"])

    async def test_push_next_msg(
        self, telemetry: Harness, nc: Any, subject: str, stream: str
    ) -> None:
        js = nc.jetstream()
        sub = await js.subscribe(subject)
        await js.publish(subject, b"x")
        msg = await sub.next_msg(timeout=5)
        with tracer.start_as_current_span("handle"):
            pass
        await msg.ack()
        assert not trace.get_current_span().is_recording()
        assert_chain(telemetry, subject, "handle")
        assert 1 == count(telemetry, subject, "ack")

    async def test_pull(self, telemetry: Harness, nc: Any, subject: str, stream: str) -> None:
        js = nc.jetstream()
        psub = await js.pull_subscribe(subject, durable="worker")
        for body in (b"1", b"2", b"3"):
            await js.publish(subject, body)
        [single] = await psub.fetch(1, timeout=5)
        with tracer.start_as_current_span("handle 1"):
            pass
        await single.ack()
        batch = await psub.fetch(2, timeout=5)
        assert [b"2", b"3"] == [m.data for m in batch]
        assert not trace.get_current_span().is_recording()  # several: none is current
        await batch[0].nak()
        await batch[1].term()
        processes = telemetry.find_spans(f"process {subject}")
        assert 3 == len(processes)
        assert parent(telemetry.span("handle 1")) in {sid(p) for p in processes}
        assert 1 == count(telemetry, subject, "ack")
        assert 1 == count(telemetry, subject, "nack")
        assert 1 == count(telemetry, subject, "reject")
        assert 0 == in_flight(telemetry, subject)

    async def test_unsettled_message_counts_as_nack_when_the_connection_closes(
        self, telemetry: Harness, nats_server: tuple[str, int], subject: str, stream: str
    ) -> None:
        client = await nats.connect(f"nats://{nats_server[0]}:{nats_server[1]}")
        js = client.jetstream()
        done = asyncio.Event()

        async def handler(msg: Any) -> None:
            done.set()  # never settled

        await js.subscribe(subject, cb=handler, manual_ack=True)
        await js.publish(subject, b"x")
        await asyncio.wait_for(done.wait(), 5)
        await wait_for(lambda: in_flight(telemetry, subject) == 0)
        assert 0 == count(telemetry, subject, "nack")  # it may still be settled
        await client.close()
        assert 1 == count(telemetry, subject, "nack")


class TestInFlight:
    """In flight is 0 after raising, cancelled and dropped-connection deliveries."""

    async def test_raising_and_cancelled(self, telemetry: Harness, nc: Any, subject: str) -> None:
        started = asyncio.Event()

        async def failing(msg: Any) -> None:
            raise RuntimeError("handler failed")

        async def slow(msg: Any) -> None:
            started.set()
            await asyncio.sleep(30)

        await nc.subscribe(subject + ".fail", cb=failing)
        sub = await nc.subscribe(subject + ".slow", cb=slow)
        await nc.publish(subject + ".fail", b"x")
        await nc.publish(subject + ".slow", b"x")
        await asyncio.wait_for(started.wait(), 5)
        await wait_for(lambda: count(telemetry, subject + ".fail", "ack") == 1)
        assert 1 == in_flight(telemetry, subject + ".slow")
        await sub.unsubscribe()  # cancels the running callback
        await wait_for(lambda: in_flight(telemetry, subject + ".slow") == 0)
        failed = telemetry.span(f"process {subject}.fail", status="error")
        assert "RuntimeError" == (failed.attributes or {})["error.type"]

    async def test_dropped_connection(
        self, telemetry: Harness, nc: Any, subject: str, stream: str, nats_link: Any
    ) -> None:
        proxied = await nats.connect(f"nats://127.0.0.1:{nats_link.port}", allow_reconnect=False)
        js = proxied.jetstream()
        started = asyncio.Event()
        release = asyncio.Event()

        async def handler(msg: Any) -> None:
            started.set()
            await release.wait()
            await msg.ack()

        await js.subscribe(subject, cb=handler, manual_ack=True, durable="dropped")
        await nc.jetstream().publish(subject, b"x")
        await asyncio.wait_for(started.wait(), 5)
        nats_link.cut()
        await wait_for(lambda: proxied.is_closed)
        release.set()
        await wait_for(lambda: in_flight(telemetry, subject) == 0)
        await wait_for(lambda: count(telemetry, subject, "nack") == 1)
        assert 0 == count(telemetry, subject, "ack")
