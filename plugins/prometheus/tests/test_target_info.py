"""What Prometheus learns besides the values: target_info (the resource), # UNIT lines,
counter exemplars; the text scrape passes promtool, the OpenMetrics one a real Prometheus."""

from __future__ import annotations

from typing import Any

import httpx
from limelight_prometheus import PrometheusReader, make_wsgi_app, plugin, target_info
from limelight_testsupport.prometheus import prometheus_server, promtool_check_metrics
from prometheus_client import parser as text_parser
from prometheus_client.openmetrics import parser as om_parser

from limelight.testing import Harness

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
ENV = {
    "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
    "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
    "OTEL_SERVICE_NAME": "checkout",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=staging,team-name=payments",
}


def _url(harness: Harness) -> str:
    reader = PrometheusReader.of(harness.telemetry)
    assert reader is not None and reader.url is not None
    return reader.url


def _workload(harness: Harness) -> None:
    store = harness.store
    orders = store.counter("orders_total", "Orders.", ["state"])
    latency = store.histogram("order_duration_seconds", "Order time.", ["state"], unit="s")
    sent = store.counter("sent_bytes_total", "Bytes sent.", unit="By")
    with harness.telemetry.tracer("t").start_as_current_span("order"):
        orders.labels("paid").inc()
        latency.labels("paid").observe(0.3)
    sent.inc(512)


def _info(text: str, parse: Any) -> list[dict[str, str]]:
    return [dict(s.labels) for f in parse(text) for s in f.samples if s.name == "target_info"]


class TestTargetInfo:
    """One target_info carries the resource: service.name and every other attribute."""

    def test_text_scrape_has_the_resource_and_passes_promtool(self) -> None:
        with Harness(plugins=[plugin], env=ENV) as harness:
            _workload(harness)
            text = httpx.get(_url(harness)).text
            resource = dict(harness.telemetry.resource.attributes)
        [labels] = _info(text, text_parser.text_string_to_metric_families)
        assert "checkout" == labels["service_name"]
        assert "staging" == labels["deployment_environment_name"]
        assert "payments" == labels["team_name"]
        assert str(resource["service.instance.id"]) == labels["service_instance_id"]
        assert str(resource["process.pid"]) == labels["process_pid"]
        assert len(resource) == len(labels)  # the resource and nothing else
        assert "# TYPE target_info gauge" in text
        passed, output = promtool_check_metrics(text)
        assert passed, output

    def test_openmetrics_scrape_has_an_info_metric_units_and_counter_exemplars(self) -> None:
        with Harness(plugins=[plugin], env=ENV) as harness:
            _workload(harness)
            text = httpx.get(_url(harness), headers={"Accept": OPENMETRICS}).text
        parsed = om_parser.text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
        families = {f.name: f for f in parsed}
        assert "info" == families["target"].type
        assert "seconds" == families["order_duration_seconds"].unit
        assert "bytes" == families["sent_bytes"].unit
        assert "" == families["orders"].unit  # a count has no unit
        assert "# UNIT order_duration_seconds seconds" in text.splitlines()
        [paid] = [s for s in families["orders"].samples if s.name == "orders_total"]
        assert paid.exemplar is not None
        assert {"trace_id", "span_id"} == set(paid.exemplar.labels)

    def test_prometheus_stores_target_info_and_the_units(self) -> None:
        with Harness(plugins=[plugin], env=ENV) as harness:
            _workload(harness)
            port = _url(harness).split(":")[2].split("/")[0]
            with prometheus_server([f"127.0.0.1:{port}"], scrape_interval=0.5) as prom:
                info = prom.wait_for_query('target_info{service_name="checkout"}')
                prom.wait_for_query("order_duration_seconds_count")
                metadata = prom.api("metadata")
                targets = prom.scrape_targets()
        assert [t["health"] for t in targets] == ["up"], targets
        assert [("staging", "1")] == [
            (r["metric"]["deployment_environment_name"], r["value"][1]) for r in info
        ]
        assert "seconds" == metadata["order_duration_seconds"][0]["unit"]
        assert "bytes" == metadata["sent_bytes"][0]["unit"]
        assert "info" == metadata["target"][0]["type"]

    def test_opt_out_by_environment_or_argument(self) -> None:
        env = {**ENV, "LIMELIGHT_PROMETHEUS_TARGET_INFO": "false"}
        with Harness(plugins=[plugin], env=env) as harness:
            text = httpx.get(_url(harness)).text
            with httpx.Client(
                transport=httpx.WSGITransport(app=make_wsgi_app(target_info=True))
            ) as client:
                mounted = client.get("http://app/metrics").text
        assert [] == _info(text, text_parser.text_string_to_metric_families)
        assert 1 == len(_info(mounted, text_parser.text_string_to_metric_families))

    def test_attribute_names_become_label_names(self) -> None:
        info = target_info(
            {
                "service.name": "a",
                "service_name": "b",
                "k8s.pod..name": "p",
                "9lives": True,
                "weights": (1, 2.5),
                "process.pid": 42,
            }
        )
        assert info is not None
        [sample] = info.samples
        # keys that meet are joined by ";" in the order of the original keys
        assert {
            "service_name": "a;b",
            "k8s_pod_name": "p",
            "key_9lives": "true",
            "weights": "[1, 2.5]",
            "process_pid": "42",
        } == sample.labels
        assert target_info({}) is None

    def test_multiprocess_aggregates_leave_out_what_differs_per_worker(self) -> None:
        info = target_info(
            {"service.name": "a", "service.instance.id": "x", "process.pid": 1, "host.name": "h"},
            multiprocess=True,
        )
        assert info is not None
        assert {"service_name": "a", "host_name": "h"} == info.samples[0].labels
