"""The SDK's own metrics, drained from the runtime's buffer into the store."""

from __future__ import annotations

from typing import Any

import limelight_temporal
import pytest
from conftest import run, unique, worker
from limelight_testsupport.temporal import TemporalDevServer
from temporal_workflows import Flaky, Greeting
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(
    plugins=[limelight_temporal.plugin], env={"LIMELIGHT_TEMPORAL_INSTRUMENT": "false"}
)


def greet_twice(temporal: TemporalDevServer, runtime: Runtime, queue_holder: list[str]) -> None:
    async def scenario() -> None:
        async with worker(temporal, runtime, interceptors=[]) as (client, queue):
            queue_holder.append(queue)
            for n in range(2):
                await client.execute_workflow(
                    Greeting.run, f"n{n}", id=unique("m"), task_queue=queue
                )

    run(scenario)


class TestSdkMetrics:
    """Counters, gauges and histograms of the SDK land in the store with their tags as labels."""

    def test_workflow_and_activity_metrics(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        queues: list[str] = []
        greet_twice(temporal, runtime, queues)
        limelight_temporal.bridge.drain()
        labels: dict[str, Any] = {
            "namespace": "default",
            "task_queue": queues[0],
            "service_name": "temporal-core-sdk",
        }
        assert 2 == telemetry.value(
            "temporal_workflow_completed_total", workflow_type="Greeting", **labels
        )
        latency = telemetry.histogram(
            "temporal_activity_execution_latency_seconds",
            activity_type="greet",
            workflow_type="Greeting",
            **labels,
        )
        assert 4 == latency.count
        assert limelight_temporal.ACTIVITY_EXECUTION_BUCKETS == latency.bounds
        assert 0 < latency.sum < 10  # seconds, not milliseconds
        slots = telemetry.value(
            "temporal_worker_task_slots_available", worker_type="ActivityWorker", **labels
        )
        assert slots > 0
        # a client request has no task queue: exported empty
        operations = {s["operation"] for s in telemetry.series("temporal_request_total")}
        assert "StartWorkflowExecution" in operations

    def test_custom_metric_meter_metrics(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        queues: list[str] = []
        greet_twice(temporal, runtime, queues)
        limelight_temporal.bridge.drain()
        # two activities per run, each adding 2, in a counter first seen at run time
        assert 8 == telemetry.value(
            "greetings_total",
            greeting="hello",
            activity_type="greet",
            namespace="default",
            task_queue=queues[0],
            service_name="temporal-core-sdk",
        )
        runs: list[dict[str, Any]] = [dict(s) for s in telemetry.series("greeting_runs_total")]
        assert 2.0 == sum(
            telemetry.value("greeting_runs_total", **s)
            for s in runs
            if s["task_queue"] == queues[0]
        )

    def test_nothing_is_lost_at_stop(self, temporal: TemporalDevServer, runtime: Runtime) -> None:
        harness = Harness(
            plugins=[limelight_temporal.plugin], env={"LIMELIGHT_TEMPORAL_METRICS_INTERVAL": "60"}
        )
        harness.start()
        limelight_temporal.bridge.drain()  # what earlier tests left
        queues: list[str] = []
        try:
            greet_twice(temporal, runtime, queues)
        finally:
            harness.stop()  # no drain in between: the stop's own drain brings them in
        assert 2 == harness.value(
            "temporal_workflow_completed_total",
            workflow_type="Greeting",
            namespace="default",
            task_queue=queues[0],
            service_name="temporal-core-sdk",
        )

    @pytest.mark.limelight(
        plugins=[limelight_temporal.plugin],
        env={"LIMELIGHT_TEMPORAL_INSTRUMENT": "false"},
        series_limit=3,
    )
    def test_series_from_the_sdk_respect_the_limit(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> None:
            async with worker(temporal, runtime, interceptors=[]) as (client, queue):
                await client.execute_workflow(Flaky.run, 0, id=unique("lim"), task_queue=queue)

        run(scenario)
        limelight_temporal.bridge.drain()
        # requests of many operations: three series, the rest in the overflow one
        series = telemetry.series("temporal_request_total")
        assert 4 == len(series)  # the limit's three and the overflow series
        assert {"_overflow"} == {s["operation"] for s in series} - {
            s["operation"] for s in series[:3]
        }
        assert (
            telemetry.value("limelight_series_overflow_total", metric="temporal_request_total") >= 1
        )

    def test_a_full_buffer_is_counted(
        self, telemetry: Harness, temporal: TemporalDevServer
    ) -> None:
        small = limelight_temporal.new_runtime(buffer_size=20)
        limelight_temporal.bridge.drain()

        async def scenario() -> None:
            async with worker(temporal, small, interceptors=[]) as (client, queue):
                await client.execute_workflow(
                    Greeting.run, "full", id=unique("full"), task_queue=queue
                )

        run(scenario)
        telemetry.wait_until(
            lambda: (
                limelight_temporal.bridge.drain() >= 0
                and telemetry.value(
                    "limelight_temporal_metric_updates_dropped_total",
                    default=0,
                    reason="buffer_full",
                )
                > 0
            ),
            timeout=10,
        )
        assert 0 < telemetry.value(
            "limelight_temporal_metric_updates_dropped_total", reason="buffer_full"
        )


class TestRuntimeHelper:
    """runtime() gives the bridged runtime and refuses what cannot be bridged."""

    def test_the_same_runtime_every_time(self, runtime: Runtime) -> None:
        assert limelight_temporal.runtime() is runtime

    def test_a_config_with_its_own_metrics_is_refused(self) -> None:
        config = TelemetryConfig(metrics=PrometheusConfig(bind_address="127.0.0.1:0"))
        with pytest.raises(ValueError, match="already sends its metrics to PrometheusConfig"):
            limelight_temporal.new_runtime(config)

    def test_another_config_after_the_first_is_refused(self, runtime: Runtime) -> None:
        with pytest.raises(ValueError, match="built already"):
            limelight_temporal.runtime(TelemetryConfig(global_tags={"a": "b"}))
