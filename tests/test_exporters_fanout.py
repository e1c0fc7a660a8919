"""One store, two sinks: an observation is 1 in Prometheus and in OTLP, with the same buckets."""

from __future__ import annotations

from typing import Any

import httpx
from limelight_prometheus import PrometheusReader
from limelight_testsupport.otlp import otlp_receiver
from limelight_testsupport.prometheus import promtool_check_metrics
from prometheus_client import parser

from limelight._catalog import declared_metrics
from limelight.metrics import MetricKind
from limelight.testing import Harness

_PARSE: Any = parser.text_string_to_metric_families


class TestFanOut:
    """The installed Prometheus and OTLP exporters read the same store."""

    def test_one_increment_and_one_observation_in_both_sinks(self) -> None:
        with otlp_receiver() as receiver:
            env = {
                "LIMELIGHT_PLUGINS": "prometheus,otlp",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
                "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            }
            with Harness(entry_points=True, env=env) as harness:
                names = harness.telemetry.plugins.names()
                assert [n for n in names if n in ("prometheus", "otlp")] == ["prometheus", "otlp"]
                store = harness.store
                orders = store.counter("orders_total", "Orders placed.", ["channel"])
                latency = store.histogram(
                    "order_duration_seconds", "Order time.", ["channel"], unit="s"
                )
                orders.labels("web").inc()
                latency.labels("web").observe(0.042)

                reader = PrometheusReader.of(harness.telemetry)
                assert reader is not None
                assert reader.url is not None
                scraped = httpx.get(reader.url).text
            counter = receiver.wait_for_metric("orders_total")
            histogram = receiver.wait_for_metric("order_duration_seconds")

        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in _PARSE(scraped)
            for s in family.samples
        }
        assert samples[("orders_total", (("channel", "web"),))] == 1.0
        prom_buckets = sorted(
            (float(dict(labels)["le"]), value)
            for (name, labels), value in samples.items()
            if name == "order_duration_seconds_bucket"
        )
        assert samples[("order_duration_seconds_count", (("channel", "web"),))] == 1.0

        assert counter is not None
        assert histogram is not None
        (otlp_counter,) = counter.sum.data_points
        assert otlp_counter.as_double == 1.0
        assert [(a.key, a.value.string_value) for a in otlp_counter.attributes] == [
            ("channel", "web")
        ]
        (point,) = histogram.histogram.data_points
        assert point.count == 1
        # same bounds, same counts: cumulative OTLP buckets equal Prometheus' le buckets
        bounds = [*point.explicit_bounds, float("inf")]
        cumulative = []
        total = 0
        for count in point.bucket_counts:
            total += count
            cumulative.append(float(total))
        assert prom_buckets == list(zip(bounds, cumulative, strict=True))


HOSTILE = ('say "hi"', "back\\slash", "two\nlines", "ünïcödé ✓ 🚀", "")


class TestInstalledCatalog:
    """Every metric the installed plugins declare passes promtool, even with hostile labels."""

    def test_promtool_accepts_the_installed_catalog(self) -> None:
        env = {
            "LIMELIGHT_PLUGINS": "prometheus",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
        }
        with Harness(entry_points=True, env=env) as harness:
            store = harness.store
            declared = declared_metrics()
            for declarer, declaration in declared:
                metric = store.declare(declaration, declarer=declarer)
                for value in HOSTILE:
                    child = metric.labels(*([value] * len(declaration.label_names)))
                    if declaration.kind is MetricKind.HISTOGRAM:
                        child.observe(0.042)
                    elif declaration.kind is MetricKind.GAUGE_SET:
                        child.set(3)
                    else:
                        child.inc()
            reader = PrometheusReader.of(harness.telemetry)
            assert reader is not None
            text = httpx.get(reader.url or "").text
        passed, output = promtool_check_metrics(text)
        assert passed, output
        exposed = {f.name for f in _PARSE(text)}
        for _declarer, declaration in declared:
            assert declaration.name.removesuffix("_total") in exposed
