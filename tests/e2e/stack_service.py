"""The fulfilment service of the end-to-end stack: every surface in one process.

Run by ``test_every_surface.py`` as ``python stack_service.py`` with its addresses in
the environment (``STACK_*``) and limelight configured by the OTEL_*/LIMELIGHT_*
variables, as any service would be. What one order does:

``POST /orders/{order_id}`` (limelight-http) calls ``stack.accept`` (an
``@limelight.instrument`` function), which publishes the order to RabbitMQ with
aio-pika (limelight-queue). The service's own consumer takes it and runs the
``Ship`` workflow on the Temporal dev server (limelight-temporal); its activity
asks the courier endpoint of this service for a tracking number with httpx
(limelight-httpclient), prints a label in a child process (limelight-process) and
writes the shipment to PostgreSQL with psycopg (limelight-sql) and announces it
on a blinker signal (limelight-eventbus). The service logs each order accepted and
shipped through the standard ``logging`` module (limelight-logs: the trace ids in
each line, ``log_emissions_total`` by level, OTLP log records). A logical
replication consumer on psycopg2 (limelight-cdc) decodes the write from the WAL,
and the slot monitor watches the slot. Everything goes to /metrics
(limelight-prometheus, its own port) and over OTLP (limelight-otlp).

Telemetry is ``limelight.start()``, which lets the installed plugins instrument
their libraries, plus ``limelight_sql.instrument()`` and ``limelight_cdc.instrument()``
(SQL drivers and the replication cursor are instrumented on request) and
``instrument_starlette`` around the app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import sys
import threading
import uuid
from datetime import timedelta

import aio_pika
import blinker
import httpx
import limelight_cdc
import limelight_sql
import limelight_temporal
import psycopg
import psycopg2
import psycopg2.extras
import uvicorn
from limelight_cdc import SlotMonitor
from limelight_http import instrument_starlette
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import limelight

PORT = int(os.environ["STACK_PORT"])
AMQP_URL = os.environ["STACK_AMQP_URL"]
ORDERS = os.environ["STACK_QUEUE"]
TEMPORAL = os.environ["STACK_TEMPORAL"]
TASK_QUEUE = os.environ["STACK_TASK_QUEUE"]
DSN = os.environ["STACK_PG_DSN"]
SLOT = os.environ["STACK_SLOT"]
BASE_URL = f"http://127.0.0.1:{PORT}"
BOOKED = blinker.signal("shipment.booked")
SHIPPED: list[str] = []
LOG = logging.getLogger("fulfilment")


@BOOKED.connect
def _remember(sender: object, *, tracking: str) -> None:
    SHIPPED.append(tracking)


# -- the workflow and its activity --------------------------------------------------------


@activity.defn
async def book_courier(order_id: int) -> str:
    """Book the courier, print the label, record the shipment; the tracking number."""
    async with httpx.AsyncClient(base_url=BASE_URL) as http:
        response = await http.get(f"/courier/{order_id}")
        response.raise_for_status()
        tracking: str = response.json()["tracking"]
    printer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"print('label {tracking}')", stdout=asyncio.subprocess.PIPE
    )
    await printer.communicate()
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as db:
        await db.execute(
            "INSERT INTO shipments (order_id, tracking) VALUES (%s, %s)", (order_id, tracking)
        )
    BOOKED.send(None, tracking=tracking)
    LOG.info("order %d shipped: %s", order_id, tracking)
    return tracking


@workflow.defn(sandboxed=False)
class Ship:
    @workflow.run
    async def run(self, order_id: int) -> str:
        return await workflow.execute_activity(
            book_courier, order_id, start_to_close_timeout=timedelta(seconds=30)
        )


# -- change data capture ------------------------------------------------------------------


def capture_changes(ready: threading.Event, stop: threading.Event) -> None:
    """Decode the WAL of the slot (test_decoding), confirming as it goes, until *stop*."""
    connection = psycopg2.connect(
        DSN, connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    cursor = connection.cursor()
    cursor.create_replication_slot(SLOT, output_plugin="test_decoding")
    cursor.start_replication(slot_name=SLOT, decode=True)
    ready.set()
    try:
        while not stop.is_set():
            message = cursor.read_message()
            if message is None:
                select.select([cursor], [], [], 0.2)
                continue
            cursor.send_feedback(flush_lsn=message.data_start)  # type: ignore[no-untyped-call]
    finally:
        connection.close()


# -- the HTTP API -------------------------------------------------------------------------


class Fulfilment:
    def __init__(self) -> None:
        self.channel: aio_pika.abc.AbstractChannel | None = None

    @limelight.instrument(name="stack.accept")
    async def accept(self, order_id: int) -> None:
        assert self.channel is not None
        await self.channel.default_exchange.publish(
            aio_pika.Message(json.dumps({"order_id": order_id}).encode()), routing_key=ORDERS
        )


FULFILMENT = Fulfilment()


async def place_order(request: Request) -> JSONResponse:
    await FULFILMENT.accept(request.path_params["order_id"])
    LOG.info("order %d accepted", request.path_params["order_id"])
    return JSONResponse({"accepted": request.path_params["order_id"]}, status_code=202)


async def courier(request: Request) -> JSONResponse:
    LOG.debug("courier asked for order %d", request.path_params["order_id"])  # below INFO
    return JSONResponse({"tracking": f"TRK{request.path_params['order_id']:06d}"})


def build_app() -> Starlette:
    app = Starlette(
        routes=[
            Route("/orders/{order_id:int}", place_order, methods=["POST"]),
            Route("/courier/{order_id:int}", courier),
        ]
    )
    return instrument_starlette(app)


async def serve() -> None:
    client = await Client.connect(TEMPORAL, runtime=limelight_temporal.runtime())
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with (
        connection,
        Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[Ship],
            activities=[book_courier],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ),
    ):
        FULFILMENT.channel = await connection.channel()
        queue = await FULFILMENT.channel.declare_queue(ORDERS, auto_delete=True)

        async def on_order(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                order_id = json.loads(message.body)["order_id"]
                await client.execute_workflow(
                    Ship.run,
                    order_id,
                    id=f"ship-{order_id}-{uuid.uuid4().hex[:8]}",
                    task_queue=TASK_QUEUE,
                )

        await queue.consume(on_order)
        config = uvicorn.Config(
            build_app(), host="127.0.0.1", port=PORT, log_level="warning", access_log=False
        )
        await uvicorn.Server(config).serve()  # until SIGTERM


def main() -> int:
    # the service's own lines at INFO, with their trace ids (limelight-logs stamps them)
    logging.basicConfig(format="%(levelname)s %(name)s %(message)s trace_id=%(trace_id)s")
    LOG.setLevel(logging.INFO)
    limelight.start()
    limelight_sql.instrument("psycopg")
    limelight_cdc.instrument()
    with psycopg.connect(DSN, autocommit=True) as db:
        db.execute("CREATE TABLE shipments (order_id integer PRIMARY KEY, tracking text)")
    ready, stop = threading.Event(), threading.Event()
    capture = threading.Thread(target=capture_changes, args=(ready, stop), name="cdc")
    capture.start()
    try:
        if not ready.wait(30):
            print("the replication stream did not start", file=sys.stderr)
            return 1
        with SlotMonitor(DSN, interval=0.5, slots=[SLOT]):
            asyncio.run(serve())
    finally:
        stop.set()
        capture.join(10)
        limelight.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
