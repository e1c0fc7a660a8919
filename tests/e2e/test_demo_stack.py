"""End to end against the real tools: the demo service as its own process, scraped by a
Prometheus server (Debian package) and exporting over OTLP/HTTP to oteltap.

The traffic below is sent once; the expected counts follow from what the shop does
for each request (see limelight_demo/_shop.py): an order lookup reads the cache,
goes to the database on a miss and caches the order, then asks the pricing
endpoint for the total over HTTP; a payment also charges, which fails above 100.00.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from limelight_demo import send
from limelight_testsupport import console_script, free_port, wait_for_port
from limelight_testsupport.otlp import OtlpReceiver, otlp_receiver
from limelight_testsupport.prometheus import PrometheusServer, prometheus_server
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

TRAFFIC = [
    ("GET", "/orders/1"),  # cache miss: database, cache set
    ("GET", "/orders/1"),  # cache hit
    ("GET", "/orders/1"),  # cache hit
    ("GET", "/orders/2"),  # cache miss
    ("GET", "/orders/42"),  # cache miss, not in the database: 404, no pricing call
    ("POST", "/orders/3/pay"),  # cache miss, charged: 200
    ("POST", "/orders/4/pay"),  # cache miss, the charge fails: 500
    ("POST", "/orders/4/pay"),  # cache hit, the charge fails: 500
]
PRICED = 7  # every request but the 404 asks the pricing endpoint once

EXPECTED: dict[str, dict[tuple[str, ...], float]] = {
    "http_requests_total": {  # method, route, status_code
        ("GET", "/orders/{order_id}", "200"): 4,
        ("GET", "/orders/{order_id}", "404"): 1,
        ("POST", "/orders/{order_id}/pay", "200"): 1,
        ("POST", "/orders/{order_id}/pay", "500"): 2,
        ("GET", "/prices/{sku}", "200"): PRICED,
    },
    "http_client_requests_total": {("GET", "127.0.0.1", "200"): PRICED},  # method, host, status
    "function_calls_total": {  # function, result
        ("shop.load_order", "ok"): 8,
        ("shop.load_order", "error"): 0,
        ("shop.price_order", "ok"): PRICED,
        ("shop.price_order", "error"): 0,
        ("shop.charge", "ok"): 1,
        ("shop.charge", "error"): 2,
    },
    "kv_ops_total": {  # namespace, op, result
        ("orders", "get", "ok"): 3,
        ("orders", "get", "not_found"): 5,
        ("orders", "get", "error"): 0,
        ("orders", "set", "ok"): 4,
        ("orders", "set", "error"): 0,
    },
    "sql_ops_total": {  # db_system, op, result: 5 orders from the database, every price
        ("sqlite", "query", "ok"): 5 + PRICED,
        ("sqlite", "query", "error"): 0,
        ("sqlite", "exec", "ok"): 0,
        ("sqlite", "exec", "error"): 0,
    },
}
LABELS = {
    "http_requests_total": ("method", "route", "status_code"),
    "http_client_requests_total": ("method", "host", "status_code"),
    "function_calls_total": ("function", "result"),
    "kv_ops_total": ("namespace", "op", "result"),
    "sql_ops_total": ("db_system", "op", "result"),
}
IN_FLIGHT = {
    "http_requests_in_flight": 2,  # GET, POST
    "http_client_requests_in_flight": 1,  # 127.0.0.1
    "function_in_flight": 3,  # load_order, price_order, charge
}


class Stack:
    """The demo process, the Prometheus server scraping it and the OTLP receiver it sends to."""

    def __init__(
        self,
        demo: subprocess.Popen[str],
        port: int,
        prometheus: PrometheusServer,
        otlp: OtlpReceiver,
    ) -> None:
        self.demo = demo
        self.port = port
        self.prometheus = prometheus
        self.otlp = otlp
        self.trace_ids: dict[tuple[str, str], list[str]] = {}

    def send(self, method: str, path: str) -> None:
        """One request on a connection of its own; its trace id is kept by (method, path)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            sent = send(connection, method, path)
        finally:
            connection.close()
        trace_id = "" if sent.trace_id is None else f"{sent.trace_id:032x}"
        self.trace_ids.setdefault((method, path), []).append(trace_id)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    port = free_port()
    with otlp_receiver() as otlp, tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        demo = subprocess.Popen(
            [console_script("limelight"), "demo", "--serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            if not wait_for_port("127.0.0.1", port, 30):
                log.seek(0)
                pytest.fail(f"the demo service did not listen on {port}:\n{log.read()}")
            with prometheus_server(
                [f"127.0.0.1:{port}"], metrics_path="/metrics", scrape_interval=0.5
            ) as prometheus:
                yield Stack(demo, port, prometheus, otlp)
        finally:
            if demo.poll() is None:
                demo.send_signal(signal.SIGTERM)
                try:
                    demo.wait(30)
                except subprocess.TimeoutExpired:
                    demo.kill()
                    demo.wait()


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Stack:
    for method, path in TRAFFIC:
        stack.send(method, path)
    return stack


def _series(result: list[dict[str, Any]], labels: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(n, "") for n in labels): float(r["value"][1]) for r in result}


def _total(metric: Metric) -> float:
    """The sum of an OTLP counter's data points."""
    return float(sum(p.as_double for p in metric.sum.data_points))


def _trace(
    otlp: OtlpReceiver, trace_id: str, done: Callable[[list[Span]], bool], timeout: float = 15.0
) -> list[Span]:
    """The spans of one trace received so far, once *done* accepts them (or time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in otlp.spans() if s.trace_id.hex() == trace_id]
        if done(spans) or time.monotonic() > deadline:
            return spans
        otlp.wait_for_spans(len(otlp.spans()) + 1, timeout=0.2)


class TestPrometheus:
    """A real Prometheus scraping the demo's /metrics sees every surface's series with the
    counts the traffic produced, and every in-flight gauge back at 0."""

    def test_the_target_is_up(self, traffic: Stack) -> None:
        up = traffic.prometheus.wait_for_query(
            f'up{{instance="127.0.0.1:{traffic.port}"}}',
            lambda r: bool(r) and r[0]["value"][1] == "1",
        )
        assert "1" == up[0]["value"][1], traffic.prometheus.scrape_targets()

    @pytest.mark.parametrize("metric", list(EXPECTED))
    def test_counts(self, traffic: Stack, metric: str) -> None:
        expected = EXPECTED[metric]
        result = traffic.prometheus.wait_for_query(
            metric, lambda r: _series(r, LABELS[metric]) == expected
        )
        assert expected == _series(result, LABELS[metric])

    @pytest.mark.parametrize("gauge", list(IN_FLIGHT))
    def test_in_flight_gauges_are_back_to_zero(self, traffic: Stack, gauge: str) -> None:
        # a scrape taken during the traffic may still be the latest sample: wait for one after
        result = traffic.prometheus.wait_for_query(
            gauge,
            lambda r: len(r) == IN_FLIGHT[gauge] and all(x["value"][1] == "0" for x in r),
        )
        assert IN_FLIGHT[gauge] == len(result), result
        assert [0.0] * IN_FLIGHT[gauge] == [float(r["value"][1]) for r in result]

    def test_latency_histograms_count_every_request(self, traffic: Stack) -> None:
        result = traffic.prometheus.wait_for_query(
            "sum(http_request_duration_seconds_count)",
            lambda r: bool(r) and float(r[0]["value"][1]) == len(TRAFFIC) + PRICED,
        )
        assert float(len(TRAFFIC) + PRICED) == float(result[0]["value"][1])


class TestOtlp:
    """The OTLP receiver gets one trace per request, across the shop's call to itself, and the
    same metric values Prometheus scrapes."""

    def test_one_trace_from_server_to_function_to_client_to_second_server(
        self, traffic: Stack
    ) -> None:
        trace_id = traffic.trace_ids[("GET", "/orders/2")][0]
        found = _trace(traffic.otlp, trace_id, lambda spans: len(spans) >= 9)
        names = [(s.name, Span.SpanKind.Name(s.kind)) for s in found]

        def one(name: str, kind: str) -> Span:
            matching = [s for s in found if s.name == name and Span.SpanKind.Name(s.kind) == kind]
            assert 1 == len(matching), names
            return matching[0]

        server = one("GET /orders/{order_id}", "SPAN_KIND_SERVER")
        function = one("shop.price_order", "SPAN_KIND_INTERNAL")
        client = one("GET", "SPAN_KIND_CLIENT")
        second = one("GET /prices/{sku}", "SPAN_KIND_SERVER")
        assert b"" == server.parent_span_id
        assert server.span_id == function.parent_span_id
        assert function.span_id == client.parent_span_id
        assert client.span_id == second.parent_span_id
        assert {trace_id} == {s.trace_id.hex() for s in (server, function, client, second)}
        # the request's other spans are in the same trace, each under a parent of it
        assert 9 == len(found), names
        ids = {s.span_id for s in found}
        assert [server] == [s for s in found if s.parent_span_id not in ids]

    def test_the_error_is_on_the_function_and_the_server_span(self, traffic: Stack) -> None:
        trace_id = traffic.trace_ids[("POST", "/orders/4/pay")][0]

        def failed(spans: list[Span]) -> list[str]:
            return sorted(s.name for s in spans if s.status.code == s.status.STATUS_CODE_ERROR)

        found = _trace(traffic.otlp, trace_id, lambda spans: len(failed(spans)) >= 2)
        assert ["POST /orders/{order_id}/pay", "shop.charge"] == failed(found)

    def test_metrics_match_prometheus(self, traffic: Stack) -> None:
        expected = sum(EXPECTED["http_requests_total"].values())
        pushed = traffic.otlp.wait_for_metric(
            "http_requests_total", lambda m: _total(m) == expected, timeout=15
        )
        assert pushed is not None, "no OTLP push of http_requests_total with every request"
        scraped = traffic.prometheus.wait_for_query(
            "sum(http_requests_total)", lambda r: bool(r) and float(r[0]["value"][1]) == expected
        )
        assert _total(pushed) == float(scraped[0]["value"][1])


class TestShutdown:
    """SIGTERM stops the demo process cleanly (exit status 0), and what it recorded last
    still reaches the receiver. Runs last: the stack is gone afterwards."""

    def test_sigterm(self, traffic: Stack) -> None:
        traffic.send("GET", "/orders/3")
        traffic.demo.send_signal(signal.SIGTERM)
        assert 0 == traffic.demo.wait(30)
        expected = sum(EXPECTED["http_requests_total"].values()) + 2  # /orders/3 and its price
        assert traffic.otlp.wait_for_metric(
            "http_requests_total", lambda m: _total(m) == expected, timeout=5
        ), "the last push at shutdown did not arrive"
