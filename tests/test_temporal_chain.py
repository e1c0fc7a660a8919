"""Temporal with the other surfaces and both exporters: one trace from an HTTP request
through a workflow and its activity to the activity's outbound call, and the SDK's
metrics with the same values in a Prometheus scrape and in OTLP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import limelight_temporal
from limelight_http import instrument_starlette
from limelight_prometheus import PrometheusReader
from limelight_testsupport.httpserver import LocalHTTPServer
from limelight_testsupport.otlp import otlp_receiver
from limelight_testsupport.temporal import temporal_dev_server
from prometheus_client import parser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from limelight.testing import Harness

_PARSE: Any = parser.text_string_to_metric_families
_OUTBOUND: list[str] = []


@activity.defn
async def fetch(url: str) -> int:
    activity.metric_meter().create_counter("chain_fetches", "Fetches.").add(1)
    async with httpx.AsyncClient() as client:
        return (await client.get(url)).status_code


@workflow.defn(sandboxed=False)
class Fetching:
    @workflow.run
    async def run(self, url: str) -> int:
        return await workflow.execute_activity(
            fetch, url, start_to_close_timeout=timedelta(seconds=10)
        )


class TestChain:
    """HTTP request, workflow, activity and outbound call in one trace; metrics in both sinks."""

    def test_one_trace_and_the_same_metrics_everywhere(self) -> None:
        with (
            temporal_dev_server() as temporal,
            LocalHTTPServer() as outbound,
            otlp_receiver() as receiver,
        ):
            env = {
                "LIMELIGHT_PLUGINS": "http,httpclient,temporal,prometheus,otlp",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
                "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": "600000",
                "LIMELIGHT_TEMPORAL_METRICS_INTERVAL": "60",
            }
            runtime = limelight_temporal.runtime()
            harness = Harness(entry_points=True, env=env)
            harness.start()
            try:
                queue = f"chain-{uuid.uuid4().hex[:8]}"

                async def scenario() -> str:
                    client = await Client.connect(temporal.address, runtime=runtime)

                    async def start(request: Request) -> PlainTextResponse:
                        status = await client.execute_workflow(
                            Fetching.run,
                            outbound.url("/ok"),
                            id=f"chain-{uuid.uuid4().hex[:8]}",
                            task_queue=queue,
                        )
                        return PlainTextResponse(str(status))

                    app = instrument_starlette(
                        Starlette(routes=[Route("/orders", start, methods=["POST"])])
                    )
                    async with Worker(
                        client,
                        task_queue=queue,
                        workflows=[Fetching],
                        activities=[fetch],
                        workflow_runner=UnsandboxedWorkflowRunner(),
                    ):
                        transport = httpx.ASGITransport(app=app)
                        async with httpx.AsyncClient(
                            transport=transport, base_url="http://shop"
                        ) as http:
                            return (await http.post("/orders")).text

                assert "200" == asyncio.run(scenario())
                server = harness.span("POST /orders", kind="server")
                assert server.context is not None
                trace = harness.trace(server.context.trace_id)
                by_name = {s.name: s for s in trace}
                start = by_name["StartWorkflow:Fetching"]
                run = by_name["RunWorkflow:Fetching"]
                schedule = by_name["StartActivity:fetch"]
                attempt = by_name["RunActivity:fetch"]
                get = by_name["GET"]
                pairs = [
                    (server, start),
                    (start, run),
                    (run, schedule),
                    (schedule, attempt),
                    (attempt, get),
                ]
                for parent, child in pairs:
                    assert child.parent is not None and parent.context is not None
                    assert parent.context.span_id == child.parent.span_id, child.name
                # the outbound request carried the attempt's context
                assert get.context is not None
                [traceparent] = outbound.last().header("traceparent")
                assert f"{get.context.span_id:016x}" == traceparent.split("-")[2]

                reader = PrometheusReader.of(harness.telemetry)
                assert reader is not None and reader.url is not None
                limelight_temporal.bridge.drain()
                scraped = httpx.get(reader.url).text
            finally:
                harness.stop()  # the last drain and the last OTLP push
            completed = receiver.wait_for_metric("temporal_workflow_completed_total")
            custom = receiver.wait_for_metric("chain_fetches_total")

        assert completed is not None and custom is not None
        samples = {
            (s.name, s.labels.get("task_queue")): s.value
            for family in _PARSE(scraped)
            for s in family.samples
        }
        assert 1.0 == samples[("temporal_workflow_completed_total", queue)]
        assert 1.0 == samples[("chain_fetches_total", queue)]
        otlp_completed = {
            a.value.string_value: p.as_double or p.as_int
            for p in completed.sum.data_points
            for a in p.attributes
            if a.key == "task_queue"
        }
        otlp_custom = {
            a.value.string_value: p.as_double or p.as_int
            for p in custom.sum.data_points
            for a in p.attributes
            if a.key == "task_queue"
        }
        assert 1.0 == otlp_completed[queue] == otlp_custom[queue]
