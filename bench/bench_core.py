"""Emission, span and function-decorator cost, side by side with prometheus_client and the OTel SDK.

Run with ``nox -s "bench(core)"``. Every row is measured in this
one process run; the ratio column compares with prometheus_client's bound
child (the floor) for emission, and with the bare call for the decorator.
The span rows end spans into each side's own batch processor (limelight's
bounded one, the SDK's ``BatchSpanProcessor``); the burst rows make 5000
spans as fast as each side can into an exporter that encodes every batch
for OTLP (``encode_spans``, what the OTLP exporters do before sending) and
report how many were exported.
This is a benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import os
import platform
import time
import timeit
from collections.abc import Callable, Sequence

import prometheus_client
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import limelight
from limelight_hookspecs import TelemetryView, hookimpl

BURST = 5000

NUMBER = int(os.environ.get("BENCH_NUMBER", "200000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))


def measure(fn: Callable[[], object], number: int = NUMBER) -> float:
    """Best-of-REPEAT microseconds per call (the least disturbed run)."""
    times = timeit.repeat(fn, number=number, repeat=REPEAT)
    return min(times) / number * 1e6


def empty() -> None:
    return None


def report(title: str, rows: list[tuple[str, float]], baseline: str, overhead: float) -> None:
    base = dict(rows)[baseline] - overhead
    print(f"\n{title}")
    print(f"  {'':44s} {'µs/op':>8s} {'x ' + baseline:>28s}")
    for name, value in rows:
        net = value - overhead
        print(f"  {name:44s} {net:8.3f} {net / base:27.2f}x")


class _Discard(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _DiscardPlugin:
    """Ends every span in the same processor the OTel SDK side uses."""

    limelight_name = "bench.discard"

    @hookimpl
    def limelight_spans_provide_processors(self, telemetry: TelemetryView) -> list[SpanProcessor]:
        return [SimpleSpanProcessor(_Discard())]


class _Encoding(SpanExporter):
    """Encodes every batch as the OTLP exporters do, then drops it; counts the spans."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


class _ExporterPlugin:
    limelight_name = "bench.exporter"

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> list[SpanExporter]:
        return [self.exporter]


def _limelight_burst(environ: dict[str, str]) -> tuple[int, float]:
    exporter = _Encoding()
    telemetry = limelight.Telemetry(
        plugins=[_ExporterPlugin(exporter)],
        entry_points=False,
        handle_signals=False,
        environ={"OTEL_TRACES_SAMPLER": "always_on", **environ},
    )
    with telemetry:
        tracer = telemetry.tracer("bench")
        started = time.perf_counter()
        for _ in range(BURST):
            tracer.start_span("burst").end()
        took = time.perf_counter() - started
    return exporter.exported, took


def _sdk_burst() -> tuple[int, float]:
    exporter = _Encoding()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    started = time.perf_counter()
    for _ in range(BURST):
        tracer.start_span("burst").end()
    took = time.perf_counter() - started
    provider.shutdown()
    return exporter.exported, took


def spans() -> None:
    """A span ended into each side's batch processor, and a burst into an OTLP encoder."""
    # each side's own batch processor, with the default queue and batch sizes, into an
    # exporter that drops the batches: the cost of making and queueing a span
    sdk_provider = TracerProvider()
    sdk_provider.add_span_processor(BatchSpanProcessor(_Discard()))
    sdk_tracer = sdk_provider.get_tracer("bench")
    telemetry = limelight.Telemetry(
        plugins=[_ExporterPlugin(_Discard())],
        entry_points=False,
        handle_signals=False,
        environ={"OTEL_TRACES_SAMPLER": "always_on"},
    )
    number = max(NUMBER // 10, 1000)
    with telemetry:
        tracer = telemetry.tracer("bench")

        def sdk_span() -> None:
            sdk_tracer.start_span("span").end()

        def limelight_span() -> None:
            tracer.start_span("span").end()

        rows = [
            ("OTel SDK span into BatchSpanProcessor", measure(sdk_span, number)),
            ("limelight span into its batch processor", measure(limelight_span, number)),
        ]
    sdk_provider.shutdown()
    print("\nspan started and ended into the batch processor (µs per span)")
    base = rows[0][1]
    for name, value in rows:
        print(f"  {name:44s} {value:8.3f} µs  ({value / base:.2f}x)")

    print(
        f"\nburst of {BURST} spans into an OTLP-encoding exporter, default queue (2048) "
        "and batch (512): exported / made, and the time to make them"
    )
    for name, run in (
        ("OTel SDK BatchSpanProcessor", _sdk_burst),
        (
            "limelight, LIMELIGHT_BSP_QUEUE_FULL_WAIT=0",
            lambda: _limelight_burst({"LIMELIGHT_BSP_QUEUE_FULL_WAIT": "0"}),
        ),
        ("limelight, default (waits on a full queue)", lambda: _limelight_burst({})),
    ):
        exported, took = run()
        print(f"  {name:44s} {exported:5d} / {BURST}  in {took * 1000:6.1f} ms")


def main() -> None:
    print(
        f"limelight core bench: Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, best of {REPEAT} x {NUMBER}"
    )
    call_overhead = measure(empty)
    print(f"(a Python call costs {call_overhead:.3f} µs here and is subtracted from every row)")

    # -- the peers ---------------------------------------------------------------------
    registry = prometheus_client.CollectorRegistry()
    p_counter = prometheus_client.Counter("p_total", "p", ["a", "b"], registry=registry)
    p_child = p_counter.labels("GET", "/items")
    p_hist = prometheus_client.Histogram("p_seconds", "p", ["a"], registry=registry)
    p_hist_child = p_hist.labels("GET")
    p_gauge = prometheus_client.Gauge("p_in_flight", "p", ["a"], registry=registry).labels("GET")

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
    o_counter = meter.create_counter("o_total")
    o_hist = meter.create_histogram("o_seconds")
    o_updown = meter.create_up_down_counter("o_in_flight")
    attrs = {"a": "GET", "b": "/items"}
    attrs1 = {"a": "GET"}

    # -- limelight (running telemetry, so the store is the one exporters read) -------------
    telemetry = limelight.Telemetry(
        plugins=[_DiscardPlugin()],
        entry_points=False,
        handle_signals=False,
        environ={"OTEL_TRACES_SAMPLER": "always_on"},
    )
    with telemetry:
        store = telemetry.store
        counter = store.counter("l_total", "l", ["a", "b"])
        child = counter.labels("GET", "/items")
        hist = store.histogram("l_seconds", "l", ["a"])
        hist_child = hist.labels("GET")
        gauge = store.gauge_add("l_in_flight", "l", ["a"]).labels("GET")

        def p_unbound() -> None:
            p_counter.labels("GET", "/items").inc()

        def l_unbound() -> None:
            counter.labels("GET", "/items").inc()

        def o_add() -> None:
            o_counter.add(1, attrs)

        def p_inflight() -> None:
            p_gauge.inc()
            p_gauge.dec()

        def l_inflight() -> None:
            gauge.inc()
            gauge.dec()

        def o_inflight() -> None:
            o_updown.add(1, attrs1)
            o_updown.add(-1, attrs1)

        def p_observe() -> None:
            p_hist_child.observe(0.042)

        def l_observe() -> None:
            hist_child.observe(0.042)

        def o_record() -> None:
            o_hist.record(0.042, attrs1)

        rows = [
            ("prometheus_client bound child .inc()", measure(p_child.inc)),
            ("limelight bound child .inc()", measure(child.inc)),
            ("prometheus_client .labels(a, b).inc()", measure(p_unbound)),
            ("limelight .labels(a, b).inc()", measure(l_unbound)),
            ("OTel SDK counter.add(1, attributes)", measure(o_add)),
        ]
        report("counter with 2 labels", rows, "prometheus_client bound child .inc()", call_overhead)

        rows = [
            ("prometheus_client bound .observe()", measure(p_observe)),
            ("limelight bound .observe() (exemplar check)", measure(l_observe)),
            ("OTel SDK histogram.record(v, attributes)", measure(o_record)),
        ]
        report("histogram with 1 label", rows, "prometheus_client bound .observe()", call_overhead)

        rows = [
            ("prometheus_client Gauge inc()+dec()", measure(p_inflight)),
            ("limelight gauge_add inc()+dec()", measure(l_inflight)),
            ("OTel SDK UpDownCounter add(+1)+add(-1)", measure(o_inflight)),
        ]
        report(
            "in-flight (gauge_add) with 1 label",
            rows,
            "prometheus_client Gauge inc()+dec()",
            call_overhead,
        )

        # -- the function decorator ------------------------------------------------------
        def bare(x: int) -> int:
            return x + 1

        instrumented = limelight.instrument(name="bench.fn")(bare)

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_Discard()))
        tracer = provider.get_tracer("bench")
        otel_decorated = tracer.start_as_current_span("bench.fn")(bare)

        p_calls = prometheus_client.Counter(
            "pf_total", "f", ["function", "result"], registry=registry
        ).labels("bench.fn", "ok")
        p_dur = prometheus_client.Histogram(
            "pf_seconds", "f", ["function", "result"], registry=registry
        ).labels("bench.fn", "ok")

        @p_dur.time()
        def prom_decorated(x: int) -> int:
            p_calls.inc()
            return x + 1

        number = max(NUMBER // 10, 1000)
        rows = [
            ("bare call", measure(lambda: bare(1), number)),
            (
                "prometheus_client Histogram.time() + counter",
                measure(lambda: prom_decorated(1), number),
            ),
            (
                "OTel SDK start_as_current_span decorator",
                measure(lambda: otel_decorated(1), number),
            ),
            ("limelight @instrument (metrics + span)", measure(lambda: instrumented(1), number)),
        ]
        base = rows[0][1]
        print("\nfunction decorator (added µs per call over the bare call)")
        for name, value in rows:
            print(f"  {name:44s} {value:8.3f} µs  (+{value - base:.3f})")


if __name__ == "__main__":
    main()
    spans()
