"""The demo service: a small tea shop, instrumented the way you would instrument yours.

Every line that is about limelight carries a ``# limelight:`` comment; the rest
is an ordinary Starlette application. With telemetry started
(``limelight.start()``, see ``_run.py``), each request gets:

- a SERVER span and ``http_requests_*`` metrics (limelight-http, around the app);
- a span and ``function_*`` metrics for each ``@limelight.instrument``-ed function;
- ``kv_*`` metrics for the in-memory cache (limelight-kv's ``MemoryStore``);
- ``sql_*`` metrics for the SQLite database (limelight-sql);
- a CLIENT span and ``http_client_*`` metrics for the call the shop makes to its
  own pricing endpoint with httpx (limelight-httpclient instruments every httpx
  client when telemetry starts), the trace context travelling in the
  ``traceparent`` header so that the pricing request joins the same trace;
- for a paid order, an ``eventbus_*`` count and a span for the ``shop.payment``
  blinker signal the shop sends, and the receiver that books it (limelight-eventbus
  instruments blinker when telemetry starts; dispatch spans are opt-in, on in the
  demo's environment);
- for a paid order, a PRODUCER span and ``queue_*`` metrics for the ``orders.paid``
  event published on limelight-queue's in-memory broker, and a CONSUMER span for
  the fulfilment worker that takes it, in the same trace (the context travels in
  the message headers);
- a CLIENT span and ``process_*`` metrics for the receipt printer the worker
  spawns (limelight-process instruments every spawn when telemetry starts); the
  printer (``receipt.py``) starts telemetry itself and continues the trace from
  its environment;
- log lines through the standard ``logging`` module (``limelight_demo.shop``) that
  carry the ``trace_id`` and ``span_id`` of the span they were written in, and a
  ``log_emissions_total`` count by level (limelight-logs instruments ``logging``
  when telemetry starts; nothing in the logging configuration changes).

``/metrics`` serves all of it to Prometheus (limelight-prometheus).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import blinker
import httpx
from limelight_http import instrument_starlette
from limelight_kv import MemoryStore
from limelight_prometheus import make_asgi_app
from limelight_queue import MemoryBroker, MemoryMessage
from limelight_sql import instrument_connection
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import limelight

__all__ = [
    "LOG",
    "PAID_QUEUE",
    "PAYMENT",
    "RECEIPT_ENVIRONMENT",
    "PaymentError",
    "Shop",
    "build_app",
]

LOG = logging.getLogger("limelight_demo.shop")
"""The shop's logger: an ordinary ``logging`` logger (limelight-logs stamps its records)."""

PAYMENT = blinker.signal("shop.payment")
"""Sent for every successful charge: the shop's own in-process event."""

PAID_QUEUE = "orders.paid"
"""The queue a paid order's event goes to; the fulfilment worker consumes it."""

RECEIPT_ENVIRONMENT: Mapping[str, str] = {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "LIMELIGHT_PROMETHEUS_SERVER": "false",
}
"""What the receipt printer's environment adds by default: telemetry that exports
nothing (the demo points its traces at its own receiver instead)."""

SCHEMA = """
CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, quantity INTEGER NOT NULL);
INSERT INTO products VALUES
    ('sencha', 'Sencha, 100 g', 650),
    ('cup', 'Stoneware cup', 1800),
    ('teapot', 'Cast-iron teapot', 5400);
INSERT INTO orders VALUES
    (1, 'sencha', 2), (2, 'cup', 4), (3, 'teapot', 1), (4, 'teapot', 3), (5, 'cup', 2);
"""


class PaymentError(Exception):
    """The payment provider failed."""


class Shop:
    """The shop's state and business logic: an order cache, a database, an HTTP client.

    :param base_url: where the shop's own HTTP API listens (it calls its pricing endpoint).
    :param receipt_environment: variables the receipt printer's environment adds to
        this process's (:data:`RECEIPT_ENVIRONMENT` by default).
    """

    def __init__(
        self, base_url: str, receipt_environment: Mapping[str, str] = RECEIPT_ENVIRONMENT
    ) -> None:
        database = sqlite3.connect(":memory:", check_same_thread=False)
        database.executescript(SCHEMA)
        # limelight: the connection wrapped by limelight-sql; spans are opt-in (off by
        # default: a busy database floods traces), on here to show them.
        self.db = instrument_connection(database, spans=True)
        # limelight: an in-memory key-value store that records kv_* metrics (and spans).
        self.cache: MemoryStore[dict[str, Any]] = MemoryStore("orders", spans=True)
        self.http = httpx.AsyncClient(base_url=base_url, timeout=5.0)
        # limelight: an in-process broker built on limelight-queue's publish()/process()
        self.broker = MemoryBroker()
        self.receipts: dict[int, str] = {}
        self.ledger: list[tuple[int, int]] = []
        # a receiver of the payment signal, counted in eventbus_subscribers_active
        PAYMENT.connect(self.book_payment)
        self._receipt_environment = {**os.environ, **receipt_environment}
        self.loop: asyncio.AbstractEventLoop | None = None

    def book_payment(self, sender: Shop, *, order_id: int, total_cents: int) -> None:
        """The payment signal's receiver: this shop's payments go into its ledger."""
        if sender is self:
            self.ledger.append((order_id, total_cents))

    def start_worker(self) -> None:
        """Start the fulfilment worker on the running event loop."""
        self.loop = asyncio.get_running_loop()
        self.broker.consume(PAID_QUEUE, self.fulfil)

    async def order_paid(self, order: dict[str, Any], total_cents: int, payment: str) -> None:
        """Publish the paid order's event for the fulfilment worker."""
        event = {**order, "total_cents": total_cents, "payment": payment}
        await self.broker.publish(PAID_QUEUE, json.dumps(event).encode())

    async def fulfil(self, message: MemoryMessage) -> None:
        """The fulfilment worker's handler: print the paid order's receipt."""
        order = json.loads(message.body)
        self.receipts[order["id"]] = await self.print_receipt(order)
        LOG.info("receipt printed for order %d", order["id"])

    async def print_receipt(self, order: dict[str, Any]) -> str:
        """The receipt, printed by a child process (``python -m limelight_demo.receipt``)."""
        printer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "limelight_demo.receipt",
            json.dumps(order),
            env=self._receipt_environment,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await printer.communicate()
        if printer.returncode != 0:
            raise RuntimeError(f"the receipt printer exited with {printer.returncode}")
        return out.decode()

    async def drain(self) -> None:
        """Wait until every paid order's event has been handled."""
        await self.broker.join(PAID_QUEUE)

    @limelight.instrument(name="shop.load_order")  # limelight: span + function_* metrics
    def load_order(self, order_id: int) -> dict[str, Any] | None:
        """The order, from the cache or else from the database (then cached)."""
        order = self.cache.get(f"order:{order_id}")
        if order is None:
            row = self.db.execute(
                "SELECT id, sku, quantity FROM orders WHERE id = ?", (order_id,)
            ).fetchone()
            if row is None:
                return None
            order = {"id": row[0], "sku": row[1], "quantity": row[2]}
            self.cache.set(f"order:{order_id}", order, ttl=60)
            LOG.info("order %d loaded from the database", order_id)
        else:
            LOG.info("order %d found in the cache", order_id)
        return order

    @limelight.instrument(name="shop.price_order")
    async def price_order(self, order: dict[str, Any]) -> int:
        """The order's total in cents, asked from the pricing endpoint over HTTP."""
        response = await self.http.get(
            f"/prices/{order['sku']}", params={"quantity": order["quantity"]}
        )
        response.raise_for_status()
        total: int = response.json()["total_cents"]
        return total

    @limelight.instrument(name="shop.charge")
    def charge(self, order: dict[str, Any], total_cents: int) -> str:
        """Charge the order; the (pretend) payment provider fails above 100.00."""
        if total_cents > 10_000:
            raise PaymentError(f"payment provider timed out charging {total_cents / 100:.2f}")
        return f"paid-{order['id']}"

    def price(self, sku: str, quantity: int) -> int | None:
        """The price of *quantity* units of *sku* in cents, or ``None`` for an unknown sku."""
        row = self.db.execute("SELECT price_cents FROM products WHERE sku = ?", (sku,)).fetchone()
        return None if row is None else int(row[0]) * quantity

    async def aclose(self) -> None:
        PAYMENT.disconnect(self.book_payment)
        await self.broker.close()
        await self.http.aclose()
        self.db.close()


# -- HTTP endpoints --------------------------------------------------------------------


def _shop(request: Request) -> Shop:
    shop: Shop = request.app.state.shop
    return shop


async def get_order(request: Request) -> JSONResponse:
    shop = _shop(request)
    order = shop.load_order(request.path_params["order_id"])
    if order is None:
        LOG.warning("no order %d", request.path_params["order_id"])
        raise HTTPException(404, "no such order")
    total = await shop.price_order(order)
    return JSONResponse({**order, "total_cents": total})


async def pay_order(request: Request) -> JSONResponse:
    shop = _shop(request)
    order = shop.load_order(request.path_params["order_id"])
    if order is None:
        LOG.warning("no order %d", request.path_params["order_id"])
        raise HTTPException(404, "no such order")
    total = await shop.price_order(order)
    payment = shop.charge(order, total)
    LOG.info("order %d charged %.2f, payment %s", order["id"], total / 100, payment)
    PAYMENT.send(shop, order_id=order["id"], total_cents=total)
    await shop.order_paid(order, total, payment)
    return JSONResponse({"order": order["id"], "payment": payment})


async def get_price(request: Request) -> JSONResponse:
    quantity = int(request.query_params.get("quantity", "1"))
    total = _shop(request).price(request.path_params["sku"], quantity)
    if total is None:
        raise HTTPException(404, "no such product")
    return JSONResponse({"sku": request.path_params["sku"], "total_cents": total})


async def payment_failed(request: Request, exc: Exception) -> JSONResponse:
    LOG.error("payment failed for %s: %s", request.url.path, exc)
    return JSONResponse({"error": str(exc)}, status_code=500)


def build_app(
    base_url: str, receipt_environment: Mapping[str, str] = RECEIPT_ENVIRONMENT
) -> Starlette:
    """The shop as a Starlette application whose own API listens at *base_url*.

    :param receipt_environment: what the receipt printer's environment adds.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.shop = Shop(base_url, receipt_environment)
        app.state.shop.start_worker()
        yield
        await app.state.shop.aclose()

    app = Starlette(
        routes=[
            Route("/orders/{order_id:int}", get_order),
            Route("/orders/{order_id:int}/pay", pay_order, methods=["POST"]),
            Route("/prices/{sku}", get_price),
            # limelight: the Prometheus exposition of the metric store, on the app's own port
            Route("/metrics", make_asgi_app()),
        ],
        exception_handlers={PaymentError: payment_failed},
        lifespan=lifespan,
    )
    # limelight: a SERVER span and http_requests_* metrics for every request but the scrapes
    return instrument_starlette(app, exclude_paths=["/metrics"])
