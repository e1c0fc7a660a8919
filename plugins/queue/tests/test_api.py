"""The generic API and the in-memory broker: spans, links, context, metrics, bad input."""

from __future__ import annotations

import asyncio

import limelight_queue
import pytest
import structlog.testing
from limelight_queue import MemoryBroker, plugin, process, publish
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan

import limelight
import limelight.plugins
from limelight.testing import Harness
from limelight_hookspecs import MetricKind

pytestmark = pytest.mark.limelight(plugins=[plugin])


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def links(span: ReadableSpan) -> list[int]:
    return [link.context.span_id for link in span.links]


def messages(telemetry: Harness, queue: str, result: str) -> float:
    return telemetry.value("queue_messages_total", queue=queue, result=result, default=0)


class TestPublishProcess:
    """publish() and process() make the PRODUCER and CONSUMER spans of one trace."""

    def test_one_trace_parent_and_link(self, telemetry: Harness) -> None:
        headers: dict[str, str] = {}
        tracer = trace.get_tracer("test")
        with (
            tracer.start_as_current_span("request") as request,
            publish("orders", headers, system="redis", message_id="m-1", body_size=3),
        ):
            pass
        assert "traceparent" in headers
        with process("orders", headers, system="redis") as delivery:
            inner = trace.get_current_span()
            delivery.ack()
        producer = telemetry.span("publish orders", kind="producer")
        consumer = telemetry.span("process orders", kind="consumer")
        assert request.get_span_context().span_id == parent_id(producer)
        assert trace_id(producer) == trace_id(consumer)
        assert span_id(producer) == parent_id(consumer)
        assert [span_id(producer)] == links(consumer)
        assert inner.get_span_context().span_id == span_id(consumer)
        assert {
            "messaging.system": "redis",
            "messaging.operation.name": "publish",
            "messaging.operation.type": "send",
            "messaging.destination.name": "orders",
            "messaging.message.id": "m-1",
            "messaging.message.body.size": 3,
        } == dict(producer.attributes or {})
        assert "process" == (consumer.attributes or {})["messaging.operation.type"]
        assert 1 == telemetry.value("queue_published_total", queue="orders", result="ok")
        assert 1 == messages(telemetry, "orders", "ack")
        assert (
            1
            == telemetry.histogram(
                "queue_process_duration_seconds", queue="orders", result="ack"
            ).count
        )
        assert 0 == telemetry.value("queue_in_flight", queue="orders")

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_QUEUE_PROCESS_PARENT": "link"})
    def test_link_only(self, telemetry: Harness) -> None:
        headers: dict[str, str] = {}
        with publish("orders", headers, system="redis"):
            pass
        with process("orders", headers, system="redis"):
            pass
        producer = telemetry.span("publish orders")
        consumer = telemetry.span("process orders")
        assert consumer.parent is None
        assert trace_id(producer) != trace_id(consumer)
        assert [span_id(producer)] == links(consumer)

    def test_the_global_propagator_is_used(self, telemetry: Harness) -> None:
        from opentelemetry import propagate
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        class Renamed(TraceContextTextMapPropagator):
            """Trace context under another header name: neither side may assume the default."""

            def extract(self, carrier, context=None, getter=None):  # type: ignore[no-untyped-def]
                value = carrier.get("x-trace") if isinstance(carrier, dict) else None
                return super().extract({} if value is None else {"traceparent": value}, context)

            def inject(self, carrier, context=None, setter=None):  # type: ignore[no-untyped-def]
                sent: dict[str, str] = {}
                super().inject(sent, context)
                if "traceparent" in sent:
                    carrier["x-trace"] = sent["traceparent"]

        previous = propagate.get_global_textmap()
        propagate.set_global_textmap(Renamed())
        try:
            headers: dict[str, str] = {}
            with publish("orders", headers, system="redis"):
                pass
            assert ["x-trace"] == list(headers)
            with process("orders", headers, system="redis"):
                pass
            # a default header is not read when the propagator does not read it
            with process("orders", {"traceparent": headers["x-trace"]}, system="redis"):
                pass
        finally:
            propagate.set_global_textmap(previous)
        producer = telemetry.span("publish orders")
        consumers = telemetry.find_spans("process orders")
        assert [span_id(producer), None] == [parent_id(c) for c in consumers]
        assert [[span_id(producer)], []] == [links(c) for c in consumers]

    def test_baggage_travels(self, telemetry: Harness) -> None:
        headers: dict[str, str] = {}
        token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            with publish("orders", headers, system="redis"):
                pass
        finally:
            otel_context.detach(token)
        with process("orders", headers, system="redis"):
            assert "acme" == baggage.get_baggage("tenant")

    @pytest.mark.parametrize(
        "headers",
        [
            None,
            {},
            {"traceparent": "garbage"},
            {"traceparent": b"\xff\xfe"},
            {"traceparent": 42},
            {"traceparent": "00-" + "a" * 2000},
            [1, 2, 3],
            "not a table",
            {b"traceparent": {"nested": [1]}},
        ],
    )
    def test_no_or_garbled_context_gives_a_root_consumer(
        self, telemetry: Harness, headers: object
    ) -> None:
        with process("orders", headers, system="redis") as delivery:  # type: ignore[arg-type]
            delivery.reject()
        span = telemetry.span("process orders", kind="consumer", status="unset")
        assert span.parent is None
        assert [] == list(span.links)
        assert 1 == messages(telemetry, "orders", "reject")

    def test_binary_header_values_are_read(self, telemetry: Harness) -> None:
        headers: dict[str, str] = {}
        with publish("orders", headers, system="redis"):
            pass
        binary = {k: v.encode() for k, v in headers.items()}
        with process("orders", binary, system="redis"):
            pass
        assert span_id(telemetry.span("publish orders")) == parent_id(
            telemetry.span("process orders")
        )

    def test_headers_that_are_not_a_mapping_are_reported_once(self, telemetry: Harness) -> None:
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                with publish("orders", [("a", "b")], system="redis"):  # type: ignore[arg-type]
                    pass
        assert 3 == telemetry.value("queue_published_total", queue="orders", result="ok")
        assert 1 == len([e for e in logs if "not a mapping" in str(e.get("error"))])

    def test_failures_and_unsettled_messages(self, telemetry: Harness) -> None:
        with pytest.raises(ConnectionError), publish("orders", {}, system="redis"):
            raise ConnectionError("broker gone")
        assert 1 == telemetry.value("queue_published_total", queue="orders", result="error")
        failed = telemetry.span("publish orders", status="error")
        assert "ConnectionError" == (failed.attributes or {})["error.type"]

        with pytest.raises(ValueError, match="bad message"), process("orders", {}, system="redis"):
            raise ValueError("bad message")
        with process("orders", {}, system="redis", auto_ack=True):
            pass
        assert 1 == messages(telemetry, "orders", "nack")  # left for the broker to redeliver
        assert 1 == messages(telemetry, "orders", "ack")  # auto-ack
        assert 0 == telemetry.value("queue_in_flight", queue="orders")
        assert 1 == len(telemetry.find_spans("process orders", status="error"))

    def test_first_settlement_counts(self, telemetry: Harness) -> None:
        with process("orders", {}, system="redis") as delivery:
            delivery.nack()
            delivery.ack()
        assert 1 == messages(telemetry, "orders", "nack")
        assert 0 == messages(telemetry, "orders", "ack")

    def test_queue_label_and_async_with(self, telemetry: Harness) -> None:
        async def run() -> None:
            headers: dict[str, str] = {}
            async with publish("a.b.c", headers, system="custom", queue="abc"):
                pass
            async with process("a.b.c", headers, system="custom", queue="abc") as delivery:
                delivery.ack()

        asyncio.run(run())
        assert 1 == telemetry.value("queue_published_total", queue="abc", result="ok")
        assert 1 == messages(telemetry, "abc", "ack")


class TestDisabled:
    """Without running telemetry the API passes through and records nothing."""

    def test_no_telemetry(self) -> None:
        headers: dict[str, str] = {}
        with publish("orders", headers, system="redis") as publication:
            assert not publication.span.get_span_context().is_valid
        with process("orders", headers, system="redis") as delivery:
            delivery.ack()
        assert {} == headers

    @pytest.mark.limelight(plugins=[plugin], env={"OTEL_SDK_DISABLED": "true"})
    def test_sdk_disabled(self, telemetry: Harness) -> None:
        headers: dict[str, str] = {}
        with publish("orders", headers, system="redis"):
            pass
        assert {} == headers
        assert [] == telemetry.spans()

    @pytest.mark.limelight(plugins=[])
    def test_plugin_not_loaded(self, telemetry: Harness) -> None:
        headers: dict[str, str] = {}
        with publish("orders", headers, system="redis"):
            pass
        assert {} == headers
        assert "queue_published_total" not in telemetry.store


class TestMemoryBroker:
    """The in-memory broker continues the publisher's trace into every handler."""

    def test_publish_consume_settle(self, telemetry: Harness) -> None:
        seen: list[tuple[bytes, int]] = []
        tracer = trace.get_tracer("test")

        async def handler(message: limelight_queue.MemoryMessage) -> None:
            with tracer.start_as_current_span("work") as work:
                seen.append((message.body, work.get_span_context().trace_id))
            if message.body == b"bad":
                raise ValueError("cannot handle")
            if message.body == b"later":
                message.nack(requeue=False)

        async def run() -> None:
            broker = MemoryBroker()
            broker.consume("emails", handler)
            with tracer.start_as_current_span("signup"):
                for body in (b"hello", b"bad", b"later"):
                    await broker.publish("emails", body)
            await broker.join("emails")
            await broker.close()

        asyncio.run(run())
        signup = telemetry.span("signup")
        assert {trace_id(signup)} == {t for _, t in seen}
        assert 3 == len(telemetry.find_spans("process emails", trace_id=trace_id(signup)))
        for work in telemetry.find_spans("work"):
            process_span = next(
                s for s in telemetry.find_spans("process emails") if span_id(s) == parent_id(work)
            )
            assert process_span.kind == trace.SpanKind.CONSUMER
        assert 1 == messages(telemetry, "emails", "ack")
        assert 1 == messages(telemetry, "emails", "reject")
        assert 1 == messages(telemetry, "emails", "nack")
        assert 3 == telemetry.value("queue_published_total", queue="emails", result="ok")
        assert 0 == telemetry.value("queue_in_flight", queue="emails")

    def test_requeue_and_cancel(self, telemetry: Harness) -> None:
        attempts: list[int] = []

        async def run() -> None:
            broker = MemoryBroker()
            blocked = asyncio.Event()

            async def handler(message: limelight_queue.MemoryMessage) -> None:
                attempts.append(1)
                if len(attempts) == 1:
                    message.nack(requeue=True)
                    return
                blocked.set()
                await asyncio.sleep(30)

            broker.consume("jobs", handler)
            await broker.publish("jobs", b"x")
            await asyncio.wait_for(blocked.wait(), 5)
            await broker.close()  # cancels the delivery being processed

        asyncio.run(run())
        assert 2 == len(attempts)
        assert 2 == len(telemetry.find_spans("process jobs"))
        cancelled = telemetry.span("process jobs", status="error")
        assert "asyncio.exceptions.CancelledError" == (cancelled.attributes or {})["error.type"]
        # the requeued attempt, and the cancelled one (left for the broker to deliver again)
        assert 2 == messages(telemetry, "jobs", "nack")
        assert 0 == telemetry.value("queue_in_flight", queue="jobs")


class TestPlugin:
    """The installed plugin is found through its entry point and declares the catalog."""

    def test_discovered_through_the_entry_point(self) -> None:
        manager = limelight.plugins.discover(limelight.load_config({}))
        info = next(i for i in manager.infos() if i.name == "queue")
        assert ("loaded", 240, "limelight-queue") == (
            info.status,
            info.priority,
            info.distribution,
        )
        assert "limelight_metrics_declare" in info.hooks

    def test_declares_the_catalog_metrics(self, telemetry: Harness) -> None:
        expected = {
            "queue_published_total": (MetricKind.COUNTER, ("queue", "result")),
            "queue_messages_total": (MetricKind.COUNTER, ("queue", "result")),
            "queue_process_duration_seconds": (MetricKind.HISTOGRAM, ("queue", "result")),
            "queue_in_flight": (MetricKind.GAUGE_ADD, ("queue",)),
        }
        for name, (kind, labels) in expected.items():
            declaration = telemetry.store.get(name).declaration
            assert (kind, labels) == (declaration.kind, declaration.label_names)
        duration = telemetry.store.get("queue_process_duration_seconds").declaration
        assert ("s", limelight_queue.QUEUE_BUCKETS) == (duration.unit, duration.bucket_bounds)

    def test_variables_are_declared(self) -> None:
        names = [v.name for v in plugin.limelight_config_declare()]
        assert ["LIMELIGHT_QUEUE_INSTRUMENT", "LIMELIGHT_QUEUE_PROCESS_PARENT"] == names

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_QUEUE_PROCESS_PARENT": "sideways"})
    def test_invalid_parent_setting_falls_back(self, telemetry: Harness) -> None:
        headers: dict[str, str] = {}
        with publish("orders", headers, system="redis"):
            pass
        with process("orders", headers, system="redis"):
            pass
        assert span_id(telemetry.span("publish orders")) == parent_id(
            telemetry.span("process orders")
        )


class TestInstrumentContract:
    """The libraries are instrumented at telemetry start as configured, or by hand."""

    def test_start_instruments_the_configured_libraries(self) -> None:
        limelight_queue.uninstrument()
        try:
            with Harness(plugins=[plugin], env={"LIMELIGHT_QUEUE_INSTRUMENT": "pika"}):
                assert limelight_queue.is_instrumented("pika")
                assert not limelight_queue.is_instrumented("aio_pika")
                assert not limelight_queue.is_instrumented("nats")
            with Harness(plugins=[plugin], env={"LIMELIGHT_QUEUE_INSTRUMENT": "none"}):
                assert not limelight_queue.is_instrumented("aio_pika")
        finally:
            limelight_queue.uninstrument()

    def test_by_hand(self) -> None:
        limelight_queue.uninstrument()
        try:
            assert ("aio_pika", "pika", "nats") == limelight_queue.instrument()
            assert () == limelight_queue.instrument()
            assert ("pika",) == limelight_queue.uninstrument("pika")
            assert limelight_queue.is_instrumented()
            with pytest.raises(ValueError, match="kafka"):
                limelight_queue.instrument("kafka")
        finally:
            limelight_queue.uninstrument()
        assert not limelight_queue.is_instrumented()


class TestPublicApi:
    """The package exports exactly its documented names."""

    def test_all(self) -> None:
        assert sorted(limelight_queue.__all__) == sorted(
            name
            for name in dir(limelight_queue)
            if not name.startswith("_") and name != "annotations"
        )
