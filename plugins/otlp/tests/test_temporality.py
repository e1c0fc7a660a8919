"""OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: cumulative, delta and lowmemory from the
one store, push by push equal to the OpenTelemetry SDK's at a real OTLP receiver."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from limelight_otlp import (
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
    OtlpConverter,
    OtlpMetricsReader,
    Temporality,
    plugin,
)
from limelight_testsupport.otlp import OtlpReceiver, otlp_receiver
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    PeriodicExportingMetricReader,
    Sum,
)
from opentelemetry.sdk.resources import Resource

from limelight.metrics import MetricStore
from limelight.testing import Harness
from limelight_hookspecs import MetricDeclaration, MetricKind

NAMES = ("jobs_total", "jobs_running", "queue_depth", "job_duration_seconds", "cpu_seconds_total")
BOUNDS = (0.1, 1.0)
DELTA, CUMULATIVE = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE


@pytest.fixture
def receivers() -> Iterator[tuple[OtlpReceiver, OtlpReceiver]]:
    """One receiver for limelight, one for the OpenTelemetry SDK."""
    with otlp_receiver() as ours, otlp_receiver() as theirs:
        yield ours, theirs


class _Sides:
    """The same instruments in limelight's store and in an OpenTelemetry SDK
    MeterProvider, each side pushing to its own receiver when told."""

    def __init__(self, ours: OtlpReceiver, theirs: OtlpReceiver, preference: str) -> None:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": ours.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "3600000",  # pushes only when told
            "OTEL_TRACES_EXPORTER": "none",
            "LIMELIGHT_RUNTIME_METRICS": "false",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": preference,
        }
        self.harness = Harness(plugins=[plugin], env=env).start()
        store = self.harness.store
        self.reader = next(
            r for _, r in self.harness.telemetry.readers if isinstance(r, OtlpMetricsReader)
        )
        self.cpu = 0
        jobs = store.counter("jobs_total", "Jobs.", ["queue"])
        running = store.gauge_add("jobs_running", "Running.")
        depth = store.gauge_set("queue_depth", "Depth.")
        duration = store.histogram(
            "job_duration_seconds", "Time.", ["queue"], unit="s", buckets=BOUNDS
        )
        cpu = store.declare(
            MetricDeclaration(
                "cpu_seconds_total", MetricKind.COUNTER, "CPU.", unit="s", observed=True
            )
        )
        seen = [0]

        def observe_cpu() -> None:  # an observed total, as the runtime metrics are
            cpu.labels().inc(self.cpu - seen[0])
            seen[0] = self.cpu

        store.add_observer(observe_cpu)

        # the SDK's exporter reads the same variable from its environment
        exporter = _with_env(
            {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": preference},
            lambda: OTLPMetricExporter(endpoint=theirs.metrics_endpoint),
        )
        self.sdk_reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
        self.provider = MeterProvider(
            metric_readers=[self.sdk_reader], resource=Resource({"service.name": "sdk"})
        )
        meter = self.provider.get_meter("sdk")
        sdk_jobs = meter.create_counter("jobs_total")
        sdk_running = meter.create_up_down_counter("jobs_running")
        sdk_depth = meter.create_gauge("queue_depth")
        sdk_duration = meter.create_histogram(
            "job_duration_seconds", unit="s", explicit_bucket_boundaries_advisory=list(BOUNDS)
        )

        def sdk_cpu(options: CallbackOptions) -> list[Observation]:
            return [Observation(self.cpu)]

        meter.create_observable_counter("cpu_seconds_total", [sdk_cpu])
        mark = store.counter("mark_total", "The push after the workload's.")
        sdk_mark = meter.create_counter("mark_total")

        def marked() -> None:
            mark.inc()
            sdk_mark.add(1)

        self.marked = marked

        def count(queue: str, n: int) -> None:
            jobs.labels(queue).inc(n)
            sdk_jobs.add(n, {"queue": queue})

        def run(n: int) -> None:
            running.inc(n)
            sdk_running.add(n)

        def level(value: int) -> None:
            depth.set(value)
            sdk_depth.set(value)

        def took(queue: str, value: float) -> None:
            duration.labels(queue).observe(value)
            sdk_duration.record(value, {"queue": queue})

        self.count, self.run, self.level, self.took = count, run, level, took

    def push(self) -> None:
        assert self.reader.export_once()
        assert self.sdk_reader.force_flush(10_000)

    def close(self) -> None:
        self.harness.stop()
        self.provider.shutdown()


def _with_env(env: dict[str, str], make: Callable[[], Any]) -> Any:
    import os

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return make()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _workload(sides: _Sides) -> None:
    """Four pushes: work, nothing, more work, nothing (binary fractions: exact sums)."""
    sides.count("mail", 5)
    sides.run(3)
    sides.level(7)
    sides.took("mail", 0.25)
    sides.took("mail", 3.0)
    sides.cpu = 10
    sides.push()
    sides.push()
    sides.count("mail", 2)
    sides.count("sms", 1)
    sides.run(-1)
    sides.level(4)
    sides.took("mail", 0.5)
    sides.took("sms", 0.125)
    sides.cpu = 25
    sides.push()
    sides.push()


def _received(receiver: OtlpReceiver) -> tuple[list[Any], int]:
    """Every metric message up to the marking push, and that push's time (pushes
    arrive in order: once its mark is in, every earlier push is)."""
    mark = receiver.wait_for_metric("mark_total", lambda m: _value(m.sum.data_points[0]) == 1)
    assert mark is not None, "the marking push never arrived"
    return receiver.metrics(), mark.sum.data_points[0].time_unix_nano


def _value(point: Any) -> float:
    return float(point.as_int if point.WhichOneof("value") == "as_int" else point.as_double)


def _points(metric: Any) -> list[tuple[int, Any]]:
    """(time, comparable value) per data point of one metric message."""
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind)
    out = []
    for p in data.data_points:
        attributes = tuple(sorted((a.key, a.value.string_value) for a in p.attributes))
        if kind == "histogram":
            value: Any = (
                p.count,
                p.sum,
                tuple(p.bucket_counts),
                tuple(p.explicit_bounds),
                p.min if p.HasField("min") else None,
                p.max if p.HasField("max") else None,
            )
            temporality: Any = data.aggregation_temporality
        elif kind == "sum":
            value, temporality = _value(p), (data.aggregation_temporality, data.is_monotonic)
        else:
            value, temporality = _value(p), None
        out.append((p.time_unix_nano, (metric.name, kind, temporality, attributes, value)))
    return out


def _pushes(receiver: OtlpReceiver) -> list[list[Any]]:
    """The workload's points, grouped by push (the time every point of one push shares)."""
    by_time: dict[int, list[Any]] = {}
    messages, marked = _received(receiver)
    for metric in messages:
        if metric.name in NAMES:
            for at, point in _points(metric):
                if at != marked:
                    by_time.setdefault(at, []).append(point)
    return [sorted(by_time[t]) for t in sorted(by_time)]


def _side_by_side(receivers: tuple[OtlpReceiver, OtlpReceiver], preference: str) -> Any:
    ours, theirs = receivers
    sides = _Sides(ours, theirs, preference)
    try:
        _workload(sides)
        sides.marked()
        sides.push()
        return _pushes(ours), _pushes(theirs)
    finally:
        sides.close()


class TestSideBySideWithTheSdk:
    """Every push of the same workload carries the points the OpenTelemetry SDK sends."""

    @pytest.mark.parametrize("preference", ["cumulative", "delta", "lowmemory", "Delta"])
    def test_each_push_equals_the_sdks(
        self, receivers: tuple[OtlpReceiver, OtlpReceiver], preference: str
    ) -> None:
        ours, theirs = _side_by_side(receivers, preference)
        assert theirs == ours
        assert 4 == len(ours) if preference == "cumulative" else len(ours) >= 2

    def test_delta_counts_what_changed_between_pushes(
        self, receivers: tuple[OtlpReceiver, OtlpReceiver]
    ) -> None:
        ours, _ = _side_by_side(receivers, "delta")
        jobs = [
            [(dict(p[3]), p[4]) for p in push if p[0] == "jobs_total"]
            for push in ours
            if any(p[0] == "jobs_total" for p in push)
        ]
        # 5, then 2 and 1: not 5, 5, 7, 7 (the cumulative totals)
        first = [({"queue": "mail"}, 5.0)]
        third = [({"queue": "mail"}, 2.0), ({"queue": "sms"}, 1.0)]
        assert [first, third] == jobs
        kinds = {p[0]: p[2] for push in ours for p in push}
        assert (DELTA, True) == kinds["jobs_total"]
        assert (CUMULATIVE, False) == kinds["jobs_running"]  # up-down counters stay cumulative
        assert DELTA == kinds["job_duration_seconds"]
        assert (DELTA, True) == kinds["cpu_seconds_total"]
        mail = [p[4] for push in ours for p in push if p[0] == "job_duration_seconds"]
        # the interval's own count, sum, buckets, min and max
        assert (2, 3.25, (0, 1, 1), BOUNDS, 0.25, 3.0) == mail[0]

    def test_lowmemory_keeps_observed_counters_cumulative(
        self, receivers: tuple[OtlpReceiver, OtlpReceiver]
    ) -> None:
        ours, _ = _side_by_side(receivers, "lowmemory")
        cpu = [p for push in ours for p in push if p[0] == "cpu_seconds_total"]
        assert [((CUMULATIVE, True), 10.0)] * 2 + [((CUMULATIVE, True), 25.0)] * 2 == [
            (p[2], p[4]) for p in cpu
        ]
        jobs = {p[2] for push in ours for p in push if p[0] == "jobs_total"}
        assert {(DELTA, True)} == jobs


class TestConverter:
    """The delta rules on store snapshots, without a receiver."""

    def test_a_failed_push_is_folded_into_the_next(self) -> None:
        store = MetricStore()
        jobs = store.counter("jobs_total", "Jobs.")
        latency = store.histogram("wait_seconds", "Wait.", buckets=[1.0])
        interval = store.interval_reader()
        converter = OtlpConverter(Temporality.DELTA)
        jobs.inc(3)
        latency.observe(0.5)
        first = converter.convert(interval.snapshot())
        converter.failed(first)  # the backend never got it
        jobs.inc(4)
        latency.observe(2.0)
        second = converter.convert(interval.snapshot())
        converter.sent(second)
        jobs.inc(1)
        third = converter.convert(interval.snapshot())
        metrics = {m.name: m.data for m in second.data.resource_metrics[0].scope_metrics[0].metrics}
        counter, histogram = metrics["jobs_total"], metrics["wait_seconds"]
        assert isinstance(counter, Sum) and isinstance(histogram, Histogram)
        assert [7.0] == [p.value for p in counter.data_points]
        [point] = histogram.data_points
        assert (2, 2.5, [1, 1], 0.5, 2.0) == (
            point.count,
            point.sum,
            list(point.bucket_counts),
            point.min,
            point.max,
        )
        # the interval runs from the last push that was sent
        assert first.time_ns > point.start_time_unix_nano
        [later] = third.data.resource_metrics[0].scope_metrics[0].metrics
        assert [1.0] == [p.value for p in later.data.data_points]  # type: ignore[union-attr]
        assert second.time_ns == later.data.data_points[0].start_time_unix_nano

    def test_a_series_made_again_after_removal_starts_from_zero(self) -> None:
        store = MetricStore()
        jobs = store.counter("jobs_total", "Jobs.", ["queue"])
        converter = OtlpConverter(Temporality.DELTA)
        jobs.labels("a").inc(10)
        converter.sent(converter.convert(store.snapshot()))
        jobs.remove("a")
        jobs.labels("a").inc(2)
        data = converter.convert(store.snapshot()).data
        [metric] = data.resource_metrics[0].scope_metrics[0].metrics
        assert [2.0] == [p.value for p in metric.data.data_points]  # type: ignore[union-attr]

    def test_a_delta_exemplar_belongs_to_its_interval(self) -> None:
        with Harness() as harness:
            store = MetricStore()
            jobs = store.counter("jobs_total", "Jobs.")
            converter = OtlpConverter(Temporality.DELTA)
            with harness.telemetry.tracer("t").start_as_current_span("job"):
                jobs.inc()
            first = converter.convert(store.snapshot())
            converter.sent(first)
            jobs.inc()  # outside the span: the exemplar of the first push is not sent again
            second = converter.convert(store.snapshot())

        def exemplars(conversion: Any) -> int:
            [metric] = conversion.data.resource_metrics[0].scope_metrics[0].metrics
            return sum(len(p.exemplars) for p in metric.data.data_points)

        assert (1, 0) == (exemplars(first), exemplars(second))

    def test_an_invalid_preference_is_reported_with_the_fallback(self) -> None:
        with structlog.testing.capture_logs() as logs:
            harness = Harness(
                plugins=[plugin],
                env={
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "sometimes",
                    "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
                    "OTEL_TRACES_EXPORTER": "none",
                },
            ).start()
            try:
                [reader] = [
                    r for _, r in harness.telemetry.readers if isinstance(r, OtlpMetricsReader)
                ]
            finally:
                harness.stop()
        assert Temporality.CUMULATIVE is reader.temporality
        variable = OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.name
        reports = [str(e) for e in logs if variable in str(e)]
        assert reports, logs
        assert "'sometimes'" in reports[0] and "cumulative" in reports[0]


class TestExemplarsAtTheReceiver:
    """A counter incremented in a sampled span reaches the receiver with that span's ids."""

    def test_counter_and_histogram_exemplars_arrive(self, receivers: Any) -> None:
        ours, _ = receivers
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": ours.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
            "OTEL_TRACES_EXPORTER": "none",
        }
        with Harness(plugins=[plugin], env=env) as harness:
            jobs = harness.store.counter("jobs_total", "Jobs.")
            wait = harness.store.histogram("wait_seconds", "Wait.", unit="s", buckets=[1.0])
            with harness.telemetry.tracer("t").start_as_current_span("job") as span:
                jobs.inc()
                wait.observe(0.5)
        ctx = span.get_span_context()
        for name in ("jobs_total", "wait_seconds"):
            metric = ours.wait_for_metric(name)
            assert metric is not None
            data = getattr(metric, metric.WhichOneof("data"))
            [exemplar] = [e for p in data.data_points for e in p.exemplars]
            assert (ctx.trace_id.to_bytes(16, "big"), ctx.span_id.to_bytes(8, "big")) == (
                exemplar.trace_id,
                exemplar.span_id,
            )
        histogram = ours.wait_for_metric("wait_seconds")
        assert histogram is not None
        [point] = histogram.histogram.data_points
        assert (0.5, 0.5) == (point.min, point.max)
