"""OTLP export of spans and of the metric store, against real receivers."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc  # type: ignore[import-untyped]
import limelight_otlp
import pytest
import structlog
from limelight_otlp import (
    OtlpMetricsReader,
    plugin,
    to_metrics_data,
)
from limelight_testsupport import free_port
from limelight_testsupport.otlp import OtlpReceiver, otlp_receiver
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum
from opentelemetry.sdk.resources import Resource

import limelight
import limelight.metrics
from limelight.testing import Harness
from limelight_hookspecs import hookimpl

STOP_TIMEOUT = 1.5
SCHEDULING_MARGIN = 0.5
"""Seconds past its timeout a bounded stop may take to return: the process scheduling
its threads on a loaded two-core machine, not work stop may do after its deadline."""


def _env(receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        **extra,
    }


def _reader(harness: Harness) -> OtlpMetricsReader:
    for name, reader in harness.telemetry.readers:
        if name == "otlp" and isinstance(reader, OtlpMetricsReader):
            return reader
    raise AssertionError("no OTLP metric reader")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as rx:
        yield rx


class TestStoreAsOtlp:
    """A store snapshot becomes cumulative OTLP data of the matching type, with the same buckets."""

    def test_kinds_buckets_and_exemplars(self) -> None:
        store = limelight.metrics.MetricStore()
        store.counter("jobs_total", "Jobs.", ["queue"]).labels("mail").inc(2)
        store.gauge_add("jobs_running", "Running.").inc()
        store.gauge_set("queue_depth", "Depth.").set(12)
        latency = store.histogram(
            "job_duration_seconds", "Time.", ["queue"], unit="s", buckets=(0.1, 1.0)
        )
        with (
            Harness() as harness,
            harness.telemetry.tracer("t").start_as_current_span("job") as span,
        ):
            latency.labels("mail").observe(0.5)
        data = to_metrics_data(store.snapshot(), Resource({"service.name": "x"}))
        metrics = {m.name: m for m in data.resource_metrics[0].scope_metrics[0].metrics}

        jobs = metrics["jobs_total"].data
        assert isinstance(jobs, Sum)
        assert jobs.is_monotonic
        assert [(p.attributes, p.value) for p in jobs.data_points] == [({"queue": "mail"}, 2.0)]
        running = metrics["jobs_running"].data
        assert isinstance(running, Sum)
        assert not running.is_monotonic
        assert isinstance(metrics["queue_depth"].data, Gauge)
        hist = metrics["job_duration_seconds"].data
        assert isinstance(hist, Histogram)
        point = hist.data_points[0]
        assert list(point.explicit_bounds) == [0.1, 1.0]
        assert list(point.bucket_counts) == [0, 1, 0]
        assert metrics["job_duration_seconds"].unit == "s"
        ctx = span.get_span_context()
        assert [(ctx.trace_id, ctx.span_id, 0.5)] == [
            (e.trace_id, e.span_id, e.value) for e in point.exemplars
        ]
        # a metric without series is not sent
        assert "limelight_export_errors_total" not in metrics


class TestExportToReceiver:
    """Spans and the store reach a real OTLP/HTTP receiver."""

    def test_spans_and_metrics_arrive(self, receiver: OtlpReceiver) -> None:
        with Harness(plugins=[plugin], env=_env(receiver)) as harness:
            harness.store.counter("jobs_total", "Jobs.", ["queue"]).labels("mail").inc()

            @limelight.instrument(name="jobs.run")
            def run() -> None:
                return None

            run()
        spans = receiver.wait_for_spans(1)
        assert [s.name for s in spans] == ["jobs.run"]
        metric = receiver.wait_for_metric("jobs_total")
        assert metric is not None
        assert metric.sum.is_monotonic
        assert metric.sum.data_points[0].as_double == 1.0
        calls = receiver.wait_for_metric("function_calls_total")
        assert calls is not None
        assert calls.sum.data_points[0].as_double == 1.0

    def test_opentelemetry_api_instruments_travel_with_the_store(
        self, receiver: OtlpReceiver
    ) -> None:
        with Harness(plugins=[plugin], env=_env(receiver)) as harness:
            harness.store.counter("jobs_total", "Jobs.").inc()
            meter = harness.telemetry.meter_provider.get_meter("some.library", "1.0")
            meter.create_counter("library.requests", unit="1").add(3, {"route": "/a"})
        metric = receiver.wait_for_metric("library.requests")
        assert metric is not None
        assert [3] == [p.as_int for p in metric.sum.data_points]
        assert receiver.wait_for_metric("jobs_total") is not None

    def test_metrics_are_pushed_periodically(self, receiver: OtlpReceiver) -> None:
        env = _env(receiver, OTEL_METRIC_EXPORT_INTERVAL="200")
        with Harness(plugins=[plugin], env=env) as harness:
            counter = harness.store.counter("ticks_total", "Ticks.")
            counter.inc()
            first = receiver.wait_for_metric("ticks_total")
            counter.inc()
            second = receiver.wait_for_metric(
                "ticks_total", lambda m: m.sum.data_points[0].as_double == 2.0
            )
        assert first is not None
        assert second is not None

    def test_stop_pushes_the_store_once(
        self, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        harness = Harness(plugins=[plugin], env=_env(receiver)).start()
        harness.store.counter("jobs_total", "Jobs.").inc()
        exporter = _reader(harness).exporter
        export = exporter.export
        pushed: list[object] = []

        def counting(data: Any, **kwargs: Any) -> Any:
            pushed.append(data)
            return export(data, **kwargs)

        monkeypatch.setattr(exporter, "export", counting)
        assert harness.telemetry.stop()
        assert len(pushed) == 1
        assert receiver.wait_for_metric("jobs_total") is not None

    def test_stop_drains_every_queued_batch(
        self, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        count, batch = 2_500, 512  # five batches, four and a half of them queued at stop
        stopping, exporting = threading.Event(), threading.Event()

        class StopSignal:
            """Tells when stop has begun (lifecycle_stop runs before the processors close)."""

            limelight_name = "test.stop_signal"

            @hookimpl
            def limelight_lifecycle_stop(self, telemetry: object, timeout: float) -> None:
                stopping.set()

        env = _env(
            receiver,
            OTEL_BSP_SCHEDULE_DELAY="600000",
            OTEL_BSP_MAX_QUEUE_SIZE="4096",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE=str(batch),
        )
        harness = Harness(plugins=[plugin, StopSignal()], env=env).start()
        [processor] = harness.telemetry.span_processors
        export = processor.exporter.export
        batches: list[int] = []

        def held_until_stop(spans: Any) -> Any:
            # the first full batch wakes the worker: hold it there until stop begins,
            # so every other span is still queued when stop is called
            exporting.set()
            stopping.wait(10)
            batches.append(len(spans))
            return export(spans)

        monkeypatch.setattr(processor.exporter, "export", held_until_stop)
        tracer = harness.telemetry.tracer("t")
        for i in range(count):
            tracer.start_span(f"queued-{i}").end()
        assert exporting.wait(10)
        assert receiver.spans() == [], "every span must still be queued before stop"
        assert harness.telemetry.stop(timeout=30)
        spans = receiver.wait_for_spans(count, timeout=10)
        assert count == len({s.name for s in spans})
        assert count == len(spans)
        assert [batch] * 4 + [count - 4 * batch] == batches
        assert harness.value("limelight_spans_dropped_total") == 0.0


class TestEndpointDown:
    """A down or silent endpoint never blocks the service; failures are counted, warned once."""

    def test_service_keeps_serving_and_stop_returns_within_its_timeout(self) -> None:
        port = free_port()  # nothing listens there
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }

        @limelight.instrument(name="work")
        def work(i: int) -> int:
            return i * 2

        harness = Harness(plugins=[plugin], env=env).start()
        [processor] = harness.telemetry.span_processors
        with structlog.testing.capture_logs() as logs:
            assert [i * 2 for i in range(100)] == [work(i) for i in range(100)]
            reader = _reader(harness)
            flushed = [reader.force_flush(5.0) for _ in range(3)]
            assert processor.flush(5.0)  # every span export attempted (and failed)
            started = time.monotonic()
            harness.telemetry.stop(timeout=STOP_TIMEOUT)
            took = time.monotonic() - started
        assert flushed == [False, False, False]
        assert took <= STOP_TIMEOUT + SCHEDULING_MARGIN
        assert harness.value("limelight_export_errors_total", exporter="otlp") >= 4
        assert harness.value("limelight_spans_dropped_total") == 100.0
        failing = [e for e in logs if "failing" in e["event"]]
        assert sorted(e["exporter"] for e in failing) == ["otlp", "otlp"], failing

    def test_a_silent_endpoint_does_not_hold_stop(self) -> None:
        with socket.socket() as silent:  # accepts connections, never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(64)
            env = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "30000",
            }
            harness = Harness(plugins=[plugin], env=env).start()
            harness.store.counter("jobs_total", "Jobs.").inc()
            harness.telemetry.tracer("t").start_span("s").end()
            started = time.monotonic()
            harness.telemetry.stop(timeout=STOP_TIMEOUT)
            took = time.monotonic() - started
        assert took <= STOP_TIMEOUT + SCHEDULING_MARGIN

    def test_exporter_logs_once_per_failure_episode(self, caplog: pytest.LogCaptureFixture) -> None:
        port = free_port()
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "200",
            "OTEL_TRACES_EXPORTER": "none",
        }
        with caplog.at_level(logging.WARNING), Harness(plugins=[plugin], env=env) as harness:
            reader = _reader(harness)
            for _ in range(4):
                reader.force_flush(5.0)
        exporter_records = [r for r in caplog.records if r.name.endswith(".metric_exporter")]
        assert len(exporter_records) == 1, [r.getMessage() for r in exporter_records]
        assert harness.value("limelight_export_errors_total", exporter="otlp") >= 5


class _Collector(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    """The OTLP gRPC services, recording requests and their metadata."""

    def __init__(self) -> None:
        self.spans: list[str] = []
        self.metrics: list[str] = []
        self.metadata: list[tuple[str, str]] = []

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.metadata.extend((k, v) for k, v in context.invocation_metadata())
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    self.spans.extend(s.name for s in ss.spans)
            return trace_service_pb2.ExportTraceServiceResponse()
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                self.metrics.extend(m.name for m in sm.metrics)
        return metrics_service_pb2.ExportMetricsServiceResponse()


@contextmanager
def _grpc_collector(port: int = 0) -> Iterator[tuple[_Collector, int]]:
    """A real OTLP gRPC receiver on a loopback *port* (a free one by default)."""
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield collector, bound
    finally:
        server.stop(0).wait(5)


def _exporter_records(caplog: pytest.LogCaptureFixture, signal: str) -> list[str]:
    """The OpenTelemetry OTLP exporters' warnings and errors about *signal* (``traces`` or
    ``metrics``: the gRPC exporters name it in every failure they log)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("opentelemetry.exporter.otlp")
        and r.levelno >= logging.WARNING
        and signal in r.getMessage()
    ]


class TestGrpcEndpointDown:
    """Over gRPC, an endpoint refusing connections never blocks the service; each signal
    counts its failures and its exporter logs once per failure episode."""

    def test_service_keeps_working_and_each_signal_warns_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        port = free_port()  # nothing listens there: connections are refused
        env = {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }

        @limelight.instrument(name="work")
        def work(i: int) -> int:
            return i * 2

        harness = Harness(plugins=[plugin], env=env).start()
        [processor] = harness.telemetry.span_processors
        reader = _reader(harness)
        with caplog.at_level(logging.WARNING), structlog.testing.capture_logs() as logs:
            for _ in range(3):  # alternate span and metric exports: neither frees the other
                assert [i * 2 for i in range(20)] == [work(i) for i in range(20)]
                assert processor.flush(5.0)
                assert not reader.force_flush(5.0)
            started = time.monotonic()
            harness.telemetry.stop(timeout=STOP_TIMEOUT)
            took = time.monotonic() - started
        assert took <= STOP_TIMEOUT + SCHEDULING_MARGIN
        # 3 span exports; 3 metric exports and the last push at stop
        assert harness.value("limelight_export_errors_total", exporter="otlp") >= 7
        assert harness.value("limelight_spans_dropped_total") == 60.0
        assert 1 == len(_exporter_records(caplog, "traces")), caplog.text
        assert 1 == len(_exporter_records(caplog, "metrics")), caplog.text
        failing = sorted(e["event"].split()[0] for e in logs if "failing" in e["event"])
        assert ["metric", "span"] == failing

    def test_an_episode_ends_per_signal_when_that_signal_exports_again(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        metrics_port = free_port()  # refused until a receiver listens there
        with _grpc_collector() as (collector, traces_port):
            env = {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{traces_port}",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{metrics_port}",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "300",
                "OTEL_METRIC_EXPORT_INTERVAL": "60000",
            }
            with caplog.at_level(logging.WARNING), Harness(plugins=[plugin], env=env) as harness:
                [processor] = harness.telemetry.span_processors
                reader = _reader(harness)
                tracer = harness.telemetry.tracer("t")
                for i in range(3):  # span exports succeed between the metric failures
                    tracer.start_span(f"s{i}").end()
                    assert processor.flush(5.0)
                    assert not reader.force_flush(5.0)
                first_episode = _exporter_records(caplog, "metrics")
                with _grpc_collector(metrics_port):
                    assert reader.force_flush(5.0)
                assert not reader.force_flush(5.0)  # a new episode
                assert not reader.force_flush(5.0)
                second_episode = _exporter_records(caplog, "metrics")
        assert ["s0", "s1", "s2"] == collector.spans
        assert 1 == len(first_episode), caplog.text
        assert 2 == len(second_episode), caplog.text
        assert [] == _exporter_records(caplog, "traces")


class TestGrpc:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc sends both signals over gRPC with the configured headers."""

    def test_spans_and_metrics_over_grpc(self) -> None:
        with _grpc_collector() as (collector, port):
            env = {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme",
            }
            with Harness(plugins=[plugin], env=env) as harness:
                harness.store.counter("jobs_total", "Jobs.").inc()
                harness.telemetry.tracer("t").start_span("over-grpc").end()
        assert collector.spans == ["over-grpc"]
        assert "jobs_total" in collector.metrics
        assert ("x-tenant", "acme") in collector.metadata


class TestSelection:
    """OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER choose what the plugin exports."""

    def test_not_selected_means_not_exported(self) -> None:
        env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "prometheus"}
        with Harness(plugins=[plugin], env=env) as harness:
            assert harness.telemetry.span_processors == ()
            assert [p for p, _ in harness.telemetry.readers if p == "otlp"] == []

    def test_http_json_falls_back_to_protobuf(self, receiver: OtlpReceiver) -> None:
        env = _env(receiver, OTEL_EXPORTER_OTLP_PROTOCOL="http/json")
        with structlog.testing.capture_logs() as logs, Harness(plugins=[plugin], env=env) as h:
            h.telemetry.tracer("t").start_span("json-asked").end()
        assert [s.name for s in receiver.wait_for_spans(1)] == ["json-asked"]
        problems = [e for e in logs if e.get("variable") == "OTEL_EXPORTER_OTLP_PROTOCOL"]
        assert len(problems) >= 1
        assert "http/protobuf" in problems[0]["fallback"]


def test_public_api() -> None:
    assert sorted(limelight_otlp.__all__) == sorted(
        n for n in dir(limelight_otlp) if not n.startswith("_") and n != "annotations"
    )
