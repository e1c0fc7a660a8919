"""Exporters: scraping 10,000 series, and emission cost with one or two exporters.

Both sides of every comparison run in this one process, one after the other;
the figures are ratios from one run (timings on a shared machine are noisy).

1. A scrape of 10,000 series over HTTP, limelight's standalone server against
   prometheus_client's own server over a plain registry holding the same series;
   and the same 10,000 series read for OTLP (snapshot, conversion, protobuf
   encoding) against the OpenTelemetry SDK's collection and encoding,
   cumulative, and delta with a tenth of the series changed between two pushes.
2. The hot path: a bound counter with two labels and a histogram, with
   Prometheus alone and with Prometheus and OTLP both exporting (one store:
   the second exporter must not add to the emission cost), against
   prometheus_client's bound child (the floor) and the OTel SDK (the incumbent).
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
import timeit
from collections.abc import Callable

import httpx
import prometheus_client
import structlog
from limelight_otlp import OtlpConverter, OtlpMetricsReader, Temporality, to_metrics_data
from limelight_otlp import plugin as otlp_plugin
from limelight_prometheus import PrometheusReader
from limelight_prometheus import plugin as prometheus_plugin
from limelight_testsupport.otlp import OtlpReceiver, OtlpReceiverError
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

import limelight

SERIES = 10_000
SCRAPES = 7


def _median(fn: Callable[[], object], runs: int = SCRAPES) -> float:
    fn()  # warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _per_op(stmt: Callable[[], object], number: int = 200_000) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number


def _telemetry(plugins: list[object], env: dict[str, str]) -> limelight.Telemetry:
    environ = {"OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": "0"}
    environ.update(env)
    return limelight.Telemetry(
        plugins=plugins,
        entry_points=False,
        environ=environ,
        handle_signals=False,
        install_globals=False,
        series_limit=SERIES * 2,
    ).start()


def bench_scrape() -> list[tuple[str, str, str]]:
    rows = []
    telemetry = _telemetry([prometheus_plugin], {})
    counter = telemetry.store.counter("bench_requests_total", "Requests.", ["route", "status"])
    for i in range(SERIES):
        counter.labels(f"/route/{i // 10}", str(200 + i % 10)).inc(i)
    reader = PrometheusReader.of(telemetry)
    url = reader.url if reader is not None else None
    assert url is not None, "the Prometheus server is not running"

    peer_registry = prometheus_client.CollectorRegistry()
    peer = prometheus_client.Counter(
        "bench_requests", "Requests.", ["route", "status"], registry=peer_registry
    )
    for i in range(SERIES):
        peer.labels(f"/route/{i // 10}", str(200 + i % 10)).inc(i)
    httpd, _thread = prometheus_client.start_http_server(0, "127.0.0.1", peer_registry)
    peer_url = f"http://127.0.0.1:{httpd.server_address[1]}/metrics"

    with httpx.Client() as client:
        om = {"Accept": "application/openmetrics-text; version=1.0.0"}
        ours = _median(lambda: client.get(url).raise_for_status())
        theirs = _median(lambda: client.get(peer_url).raise_for_status())
        ours_om = _median(lambda: client.get(url, headers=om).raise_for_status())
        theirs_om = _median(lambda: client.get(peer_url, headers=om).raise_for_status())
    rows.append(("scrape 10k series, text", f"{ours * 1e3:.1f} ms", f"{theirs * 1e3:.1f} ms"))
    rows.append(
        ("scrape 10k series, OpenMetrics", f"{ours_om * 1e3:.1f} ms", f"{theirs_om * 1e3:.1f} ms")
    )
    httpd.shutdown()

    resource = Resource({"service.name": "bench"})
    store = telemetry.store

    def otlp_ours() -> None:
        encode_metrics(to_metrics_data(store.snapshot(), resource)).SerializeToString()

    sdk_reader = InMemoryMetricReader(cardinality_limits={Counter: SERIES * 2})
    provider = MeterProvider(metric_readers=[sdk_reader], resource=resource)
    sdk_counter = provider.get_meter("bench").create_counter("bench_requests")
    for i in range(SERIES):
        sdk_counter.add(i, {"route": f"/route/{i // 10}", "status": str(200 + i % 10)})

    def otlp_sdk() -> None:
        data = sdk_reader.get_metrics_data()
        assert data is not None
        encode_metrics(data).SerializeToString()

    ours_otlp = _median(otlp_ours)
    sdk_otlp = _median(otlp_sdk)
    rows.append(
        (
            "OTLP read+encode 10k series",
            f"{ours_otlp * 1e3:.1f} ms",
            f"{sdk_otlp * 1e3:.1f} ms (SDK)",
        )
    )
    provider.shutdown()

    # delta: a tenth of the series changes between two pushes
    converter = OtlpConverter(Temporality.DELTA, resource)
    children = [counter.labels(f"/route/{i // 10}", str(200 + i % 10)) for i in range(SERIES)]
    interval = store.interval_reader()
    converter.sent(converter.convert(interval.snapshot()))
    turn = [0]

    def ours_delta() -> None:
        turn[0] += 1
        for child in children[turn[0] % 10 :: 10]:
            child.inc()
        conversion = converter.convert(interval.snapshot())
        encode_metrics(conversion.data).SerializeToString()
        converter.sent(conversion)

    delta_reader = InMemoryMetricReader(
        cardinality_limits={Counter: SERIES * 2},
        preferred_temporality={Counter: AggregationTemporality.DELTA},
    )
    delta_provider = MeterProvider(metric_readers=[delta_reader], resource=resource)
    delta_counter = delta_provider.get_meter("bench").create_counter("bench_requests")
    attributes = [
        {"route": f"/route/{i // 10}", "status": str(200 + i % 10)} for i in range(SERIES)
    ]
    for i, attrs in enumerate(attributes):
        delta_counter.add(i, attrs)
    delta_reader.get_metrics_data()

    def sdk_delta() -> None:
        turn[0] += 1
        for attrs in attributes[turn[0] % 10 :: 10]:
            delta_counter.add(1, attrs)
        data = delta_reader.get_metrics_data()
        assert data is not None
        encode_metrics(data).SerializeToString()

    ours_d = _median(ours_delta)
    sdk_d = _median(sdk_delta)
    rows.append(
        (
            "OTLP delta push, 1k of 10k changed",
            f"{ours_d * 1e3:.1f} ms",
            f"{sdk_d * 1e3:.1f} ms (SDK)",
        )
    )
    delta_provider.shutdown()
    telemetry.stop()
    return rows


def bench_emission() -> tuple[list[tuple[str, float]], int]:
    """Per-operation costs, and how many OTLP pushes the receiver got meanwhile."""
    results: list[tuple[str, float]] = []

    registry = prometheus_client.CollectorRegistry()
    floor = prometheus_client.Counter("floor_total", "Floor.", ["a", "b"], registry=registry)
    floor_child = floor.labels("x", "y")
    floor_hist = prometheus_client.Histogram("floor_seconds", "Floor.", ["a"], registry=registry)
    floor_hist_child = floor_hist.labels("x")
    results.append(("prometheus_client bound counter.inc", _per_op(floor_child.inc)))
    results.append(
        (
            "prometheus_client bound histogram.observe",
            _per_op(lambda: floor_hist_child.observe(0.1)),
        )
    )

    def measure(label: str, telemetry: limelight.Telemetry) -> None:
        store = telemetry.store
        counter = store.counter("emit_total", "Emits.", ["a", "b"]).labels("x", "y")
        hist = store.histogram("emit_seconds", "Emits.", ["a"]).labels("x")
        observe = hist.observe
        results.append((f"limelight counter.inc, {label}", _per_op(counter.inc)))
        results.append((f"limelight histogram.observe, {label}", _per_op(lambda: observe(0.1))))

    prom_only = _telemetry([prometheus_plugin], {})
    measure("Prometheus only", prom_only)
    prom_only.stop()

    # a failing exporter costs less than a working one: measure only against a real receiver
    try:
        receiver = OtlpReceiver().start()
    except OtlpReceiverError as exc:
        raise SystemExit(f"bench_exporters: no OTLP receiver to export to: {exc}") from exc
    try:
        both = _telemetry(
            [prometheus_plugin, otlp_plugin],
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": "200",
            },
        )
        otlp = next(r for _, r in both.readers if isinstance(r, OtlpMetricsReader))
        # measure once pushes run (the first one also makes the exporter, in its thread)
        both.store.counter("emit_total", "Emits.", ["a", "b"]).labels("x", "y")
        receiver.wait_for_metric("emit_total", timeout=30)
        already = len(receiver.metrics())
        measure("Prometheus + OTLP exporting every 200 ms", both)
        pushed = len([m for m in receiver.metrics()[already:] if m.name == "emit_total"])
        both.stop()
    finally:
        receiver.stop()
    if otlp.failures or not pushed:
        raise SystemExit(
            f"bench_exporters: OTLP exports did not go through during the measurement "
            f"({pushed} received, {otlp.failures} failed)"
        )

    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    meter = provider.get_meter("bench")
    sdk_counter = meter.create_counter("sdk_total")
    sdk_hist = meter.create_histogram("sdk_seconds")
    attrs = {"a": "x", "b": "y"}
    results.append(
        ("OTel SDK counter.add (2 attributes)", _per_op(lambda: sdk_counter.add(1, attrs), 50_000))
    )
    results.append(
        ("OTel SDK histogram.record", _per_op(lambda: sdk_hist.record(0.1, {"a": "x"}), 50_000))
    )
    provider.shutdown()
    return results, pushed


def main() -> None:
    # limelight's own log lines (warnings only) go to stderr, not into the results
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    print(f"bench_exporters: scrape of {SERIES:,} series (median of {SCRAPES})\n")
    print(f"  {'what':<34} {'limelight':>12} {'peer':>22}")
    for what, ours, theirs in bench_scrape():
        print(f"  {what:<34} {ours:>12} {theirs:>22}")

    print("\nemission, per operation (best of 5)\n")
    results, pushed = bench_emission()
    by_name = dict(results)
    for name, seconds in results:
        print(f"  {name:<52} {seconds * 1e6:7.3f} µs")
    print(f"  (OTLP pushes received by the receiver during the measurement: {pushed}, none failed)")
    floor_c = by_name["prometheus_client bound counter.inc"]
    floor_h = by_name["prometheus_client bound histogram.observe"]
    prom_c = by_name["limelight counter.inc, Prometheus only"]
    both_c = by_name["limelight counter.inc, Prometheus + OTLP exporting every 200 ms"]
    prom_h = by_name["limelight histogram.observe, Prometheus only"]
    both_h = by_name["limelight histogram.observe, Prometheus + OTLP exporting every 200 ms"]
    sdk_c = by_name["OTel SDK counter.add (2 attributes)"]
    ratios = (
        ("counter, both exporters / Prometheus only", both_c / prom_c, "must not double"),
        ("histogram, both exporters / Prometheus only", both_h / prom_h, ""),
        ("counter, both exporters / prometheus_client", both_c / floor_c, "target <= 1.2x"),
        ("histogram, both exporters / prometheus_client", both_h / floor_h, ""),
        ("OTel SDK counter.add / limelight, both exporters", sdk_c / both_c, ""),
    )
    print("\nratios")
    for what, ratio, note in ratios:
        print(f"  {what:<50} {ratio:6.2f}x  {note}")


if __name__ == "__main__":
    main()
