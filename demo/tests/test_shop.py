"""The shop service: every surface is recorded, and a request is one trace across its own call."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import limelight_eventbus
import limelight_http
import limelight_httpclient
import limelight_kv
import limelight_process
import limelight_queue
import limelight_sql
import pytest
from limelight_demo import Sent, Service, send
from opentelemetry.sdk.trace import ReadableSpan

from limelight.testing import Harness

SURFACE_PLUGINS = [
    limelight_http.plugin,
    limelight_httpclient.plugin,
    limelight_kv.plugin,
    limelight_sql.plugin,
    limelight_queue.plugin,
    limelight_process.plugin,
    limelight_eventbus.plugin,
]
pytestmark = pytest.mark.limelight(
    plugins=SURFACE_PLUGINS, env={"LIMELIGHT_EVENTBUS_SPANS": "true"}
)


@pytest.fixture
def service(telemetry: Harness) -> Iterator[Service]:
    """The shop served on a free port (telemetry started first)."""
    service = Service().start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def shop(service: Service) -> Iterator[http.client.HTTPConnection]:
    """A connection to the shop."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        yield connection
    finally:
        connection.close()


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    span_id: int = span.context.span_id
    return span_id


def _request(telemetry: Harness, shop: http.client.HTTPConnection, method: str, path: str) -> Sent:
    sent = send(shop, method, path)
    trace_id = sent.trace_id
    assert trace_id is not None
    # the root span ends right after the response is written: wait for it
    assert telemetry.wait_until(lambda: any(s.parent is None for s in telemetry.trace(trace_id)))
    return sent


class TestOneTrace:
    """One request to the shop is one trace: its server span, its functions, its cache and
    database calls, and its call to the pricing endpoint, whose server span joins the trace."""

    def test_tree_of_a_first_order_lookup(
        self, telemetry: Harness, shop: http.client.HTTPConnection
    ) -> None:
        sent = _request(telemetry, shop, "GET", "/orders/1")
        assert 200 == sent.status
        trace = telemetry.trace(sent.trace_id or 0)

        def one(name: str, kind: str, parent: ReadableSpan | None) -> ReadableSpan:
            found = [
                s
                for s in trace
                if s.name == name
                and s.kind.name == kind
                and _parent_id(s) == (None if parent is None else _id(parent))
            ]
            assert 1 == len(found), (name, kind, [(s.name, s.kind.name) for s in trace])
            return found[0]

        root = one("GET /orders/{order_id}", "SERVER", None)
        load = one("shop.load_order", "INTERNAL", root)
        one("get", "CLIENT", load)
        one("SELECT orders", "CLIENT", load)
        one("set", "CLIENT", load)
        price = one("shop.price_order", "INTERNAL", root)
        client = one("GET", "CLIENT", price)
        pricing = one("GET /prices/{sku}", "SERVER", client)
        one("SELECT products", "CLIENT", pricing)
        assert 9 == len(trace)
        assert str((client.attributes or {})["url.full"]).endswith("/prices/sencha?quantity=2")

    def test_a_cached_order_skips_the_database(
        self, telemetry: Harness, shop: http.client.HTTPConnection
    ) -> None:
        _request(telemetry, shop, "GET", "/orders/2")
        sent = _request(telemetry, shop, "GET", "/orders/2")
        names = [s.name for s in telemetry.trace(sent.trace_id or 0)]
        assert "SELECT orders" not in names
        assert 1 == names.count("get")

    def test_failed_payment_is_an_error_in_the_function_and_the_server_span(
        self, telemetry: Harness, shop: http.client.HTTPConnection
    ) -> None:
        sent = _request(telemetry, shop, "POST", "/orders/4/pay")
        assert 500 == sent.status
        server = telemetry.span("POST /orders/{order_id}/pay", trace_id=sent.trace_id or 0)
        charge = telemetry.span("shop.charge", trace_id=sent.trace_id or 0)
        assert "ERROR" == server.status.status_code.name
        assert 500 == (server.attributes or {})["http.response.status_code"]
        assert "ERROR" == charge.status.status_code.name
        assert _parent_id(charge) == _id(server)
        assert ["exception"] == [e.name for e in charge.events]
        assert "limelight_demo._shop.PaymentError" == (charge.attributes or {})["error.type"]

    def test_unknown_order_is_a_404_without_error_status(
        self, telemetry: Harness, shop: http.client.HTTPConnection
    ) -> None:
        sent = _request(telemetry, shop, "GET", "/orders/42")
        assert 404 == sent.status
        server = telemetry.span("GET /orders/{order_id}", trace_id=sent.trace_id or 0)
        assert "UNSET" == server.status.status_code.name
        assert [] == telemetry.find_spans("shop.price_order")


class TestPaidOrder:
    """A paid order's event crosses the in-memory broker to the fulfilment worker, which
    spawns the receipt printer: the trace goes on through both hops."""

    def test_the_worker_and_the_printer_continue_the_request_trace(
        self, telemetry: Harness, service: Service, shop: http.client.HTTPConnection
    ) -> None:
        sent = _request(telemetry, shop, "POST", "/orders/5/pay")
        assert 200 == sent.status
        service.drain()
        trace_id = sent.trace_id or 0
        server = telemetry.span("POST /orders/{order_id}/pay", trace_id=trace_id)
        publish = telemetry.span("publish orders.paid", trace_id=trace_id)
        process = telemetry.span("process orders.paid", trace_id=trace_id)
        printer = telemetry.span("python", trace_id=trace_id)
        signal = telemetry.span("send shop.payment", trace_id=trace_id)
        assert _parent_id(signal) == _id(server)
        assert ("PRODUCER", "CONSUMER", "CLIENT") == tuple(
            s.kind.name for s in (publish, process, printer)
        )
        assert _parent_id(publish) == _id(server)
        assert _parent_id(process) == _id(publish)
        assert [_id(publish)] == [link.context.span_id for link in process.links]
        assert _parent_id(printer) == _id(process)
        assert 0 == (printer.attributes or {})["process.exit.code"]
        shop_state = service.app.state.shop
        assert [(5, 3600)] == shop_state.ledger  # the payment signal's receiver ran
        assert 1 == telemetry.value("eventbus_subscribers_active", topic="shop.payment")
        assert shop_state.receipts[5].startswith("Receipt for order 5\n  2 x cup\n  total 36.00")
        assert 1 == telemetry.value("queue_published_total", queue="orders.paid", result="ok")
        assert 1 == telemetry.value("queue_messages_total", queue="orders.paid", result="ack")
        assert 0 == telemetry.value("queue_in_flight", queue="orders.paid")
        assert 1 == telemetry.value(
            "process_terminated_total", kind="subprocess", result="completed"
        )
        assert 0 == telemetry.value("process_active", kind="subprocess")

    def test_a_failed_payment_publishes_nothing(
        self, telemetry: Harness, service: Service, shop: http.client.HTTPConnection
    ) -> None:
        sent = _request(telemetry, shop, "POST", "/orders/4/pay")
        assert 500 == sent.status
        service.drain()
        assert [] == telemetry.find_spans("publish orders.paid")
        assert [] == telemetry.find_spans("send shop.payment")
        assert 0 == telemetry.value("process_started_total", 0.0, kind="subprocess")


class TestMetrics:
    """Each surface counts what the requests did, and every in-flight gauge is back to 0."""

    def test_counts_per_surface(self, telemetry: Harness, shop: http.client.HTTPConnection) -> None:
        for method, path in [
            ("GET", "/orders/1"),
            ("GET", "/orders/1"),
            ("GET", "/orders/42"),
            ("POST", "/orders/4/pay"),
        ]:
            _request(telemetry, shop, method, path)

        def http_count(method: str, route: str, status: int) -> float:
            return telemetry.value(
                "http_requests_total", method=method, route=route, status_code=status
            )

        assert 2 == http_count("GET", "/orders/{order_id}", 200)
        assert 1 == http_count("GET", "/orders/{order_id}", 404)
        assert 1 == http_count("POST", "/orders/{order_id}/pay", 500)
        assert 3 == http_count("GET", "/prices/{sku}", 200)
        assert 3 == telemetry.value(
            "http_client_requests_total", method="GET", host="127.0.0.1", status_code="200"
        )
        assert 4 == telemetry.value("function_calls_total", function="shop.load_order", result="ok")
        assert 1 == telemetry.value("function_calls_total", function="shop.charge", result="error")
        assert 1 == telemetry.value("kv_ops_total", namespace="orders", op="get", result="ok")
        assert 3 == telemetry.value(
            "kv_ops_total", namespace="orders", op="get", result="not_found"
        )
        assert 2 == telemetry.value("kv_ops_total", namespace="orders", op="set", result="ok")
        # orders 1, 42 and 4 from the database, three prices
        assert 6 == telemetry.value("sql_ops_total", db_system="sqlite", op="query", result="ok")
        for gauge in (
            "http_requests_in_flight",
            "http_client_requests_in_flight",
            "function_in_flight",
        ):
            values = [telemetry.value(gauge, None, **labels) for labels in telemetry.series(gauge)]
            assert values, gauge
            assert [0.0] * len(values) == values, gauge

    def test_metrics_endpoint_serves_the_store_and_is_not_recorded(
        self, telemetry: Harness, shop: http.client.HTTPConnection
    ) -> None:
        _request(telemetry, shop, "GET", "/orders/3")
        shop.request("GET", "/metrics")
        response = shop.getresponse()
        body = response.read().decode()
        assert 200 == response.status
        assert (
            'http_requests_total{method="GET",route="/orders/{order_id}",status_code="200"} 1.0'
            in body
        )
        assert ["/orders/{order_id}", "/prices/{sku}"] == sorted(
            s["route"] for s in telemetry.series("http_requests_total")
        )
