"""The /metrics endpoint: standalone server, mountable apps, formats, exemplars, promtool."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import limelight_prometheus
import pytest
from limelight_prometheus import (
    PrometheusReader,
    exposition,
    make_asgi_app,
    make_wsgi_app,
    plugin,
)
from limelight_prometheus._env import parse_server_mode
from limelight_testsupport import free_port
from limelight_testsupport.prometheus import promtool_check_metrics
from prometheus_client import parser as text_parser
from prometheus_client.openmetrics import parser as om_parser

from limelight.testing import Harness
from limelight_hookspecs import Config, MetricDeclaration, MetricKind, hookimpl

C, H, GA, GS = (
    MetricKind.COUNTER,
    MetricKind.HISTOGRAM,
    MetricKind.GAUGE_ADD,
    MetricKind.GAUGE_SET,
)

_ROWS: tuple[tuple[str, MetricKind, str, tuple[str, ...]], ...] = (
    ("http_requests_total", C, "1", ("method", "route", "status_code")),
    ("http_request_duration_seconds", H, "s", ("method", "route", "status_code")),
    ("http_requests_in_flight", GA, "1", ("method",)),
    ("http_client_requests_total", C, "1", ("method", "host", "status_code")),
    ("http_client_request_duration_seconds", H, "s", ("method", "host", "status_code")),
    ("http_client_requests_in_flight", GA, "1", ("host",)),
    ("queue_messages_total", C, "1", ("queue", "result")),
    ("queue_process_duration_seconds", H, "s", ("queue", "result")),
    ("queue_in_flight", GA, "1", ("queue",)),
    ("queue_published_total", C, "1", ("queue", "result")),
    ("process_started_total", C, "1", ("kind",)),
    ("process_terminated_total", C, "1", ("kind", "result")),
    ("process_active", GA, "1", ("kind",)),
    ("cdc_changes_total", C, "1", ("slot", "op")),
    ("cdc_retained_wal_bytes", GS, "By", ("slot",)),
    ("cdc_errors_total", C, "1", ("slot",)),
    ("kv_ops_total", C, "1", ("namespace", "op", "result")),
    ("kv_op_duration_seconds", H, "s", ("namespace", "op", "result")),
    ("sql_ops_total", C, "1", ("op", "result")),
    ("sql_op_duration_seconds", H, "s", ("op", "result")),
    ("log_emissions_total", C, "1", ("level",)),
    ("eventbus_subscribers_active", GA, "1", ("topic",)),
    ("eventbus_rejected_total", C, "1", ("topic",)),
)

CATALOG: tuple[MetricDeclaration, ...] = tuple(
    MetricDeclaration(name, kind, f"Catalog metric {name}.", unit, labels)
    for name, kind, unit, labels in _ROWS
)
"""Every surface metric of the catalog (the core's function and self metrics are
declared by the core itself)."""


class CatalogPlugin:
    """Declares the whole catalog, as the surface plugins together would."""

    limelight_name = "catalog"
    limelight_priority = 500

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> tuple[MetricDeclaration, ...]:
        return CATALOG


def reader_of(harness: Harness) -> PrometheusReader:
    reader = PrometheusReader.of(harness.telemetry)
    assert reader is not None, "no Prometheus reader"
    return reader


_TEXT_PARSE: Any = text_parser.text_string_to_metric_families
_OM_PARSE: Any = om_parser.text_string_to_metric_families


def _families(text: str) -> list[Any]:
    return list(_TEXT_PARSE(text))


def om_parse(text: str) -> list[Any]:
    return list(_OM_PARSE(text))


OPENMETRICS = "application/openmetrics-text; version=1.0.0"
FREE = {"OTEL_EXPORTER_PROMETHEUS_PORT": "0"}

HOSTILE = (
    'say "hi"',
    "back\\slash",
    "two\nlines",
    "tab\tand\rreturn",
    "ünïcödé ✓ 日本語 🚀",
    "",
    "{}=,#",
)


def _bind(host: str, port: int) -> dict[str, str]:
    return {"OTEL_EXPORTER_PROMETHEUS_HOST": host, "OTEL_EXPORTER_PROMETHEUS_PORT": str(port)}


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in _families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


class TestStandaloneServer:
    """Installed and started, the plugin serves the store on OTEL_EXPORTER_PROMETHEUS_HOST:PORT."""

    def test_serves_the_store_on_the_configured_host_and_port(self) -> None:
        port = free_port()
        with Harness(plugins=[plugin], env=_bind("127.0.0.1", port)) as harness:
            jobs = harness.store.counter("jobs_total", "Jobs run.", ["queue"])
            jobs.labels("mail").inc(3)
            response = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert _samples(response.text, "jobs_total") == {(("queue", "mail"),): 3.0}

    def test_every_declared_metric_is_listed_before_any_series_exists(self) -> None:
        with Harness(plugins=[plugin, CatalogPlugin()], env=FREE) as harness:
            text = httpx.get(reader_of(harness).url or "").text
        families = {f.name for f in _families(text)}
        for decl in CATALOG:
            base = decl.name.removesuffix("_total")
            assert base in families, decl.name

    def test_openmetrics_by_content_negotiation_with_exemplars(self) -> None:
        with Harness(plugins=[plugin], env=FREE) as harness:
            latency = harness.store.histogram(
                "job_duration_seconds", "Job time.", ["queue"], unit="s"
            )
            tracer = harness.telemetry.tracer("test")
            with tracer.start_as_current_span("job") as span:
                latency.labels("mail").observe(0.3)
            ctx = span.get_span_context()
            url = reader_of(harness).url or ""
            plain = httpx.get(url)
            om = httpx.get(url, headers={"Accept": OPENMETRICS})
        assert "trace_id" not in plain.text
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        exemplars = [
            s.exemplar
            for f in om_parse(om.text)
            for s in f.samples
            if s.name == "job_duration_seconds_bucket" and s.exemplar is not None
        ]
        assert len(exemplars) == 1
        assert f"{ctx.trace_id:032x}" == exemplars[0].labels["trace_id"]
        assert f"{ctx.span_id:016x}" == exemplars[0].labels["span_id"]
        assert exemplars[0].value == 0.3

    def test_no_exemplar_outside_a_sampled_span(self) -> None:
        with Harness(plugins=[plugin], env=FREE, traces_sampler="always_off") as harness:
            latency = harness.store.histogram("job_duration_seconds", "Job time.", unit="s")
            with harness.telemetry.tracer("test").start_as_current_span("job"):
                latency.observe(0.3)
            latency.observe(0.2)
            text = exposition(harness.store, openmetrics=True).decode()
        assert "trace_id" not in text
        assert "job_duration_seconds_count 2.0" in text

    def test_gzip_when_accepted(self) -> None:
        with Harness(plugins=[plugin], env=FREE) as harness:
            response = httpx.get(reader_of(harness).url or "", headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert "limelight_spans_dropped_total" in response.text

    def test_stop_closes_the_server(self) -> None:
        harness = Harness(plugins=[plugin], env=FREE).start()
        reader = reader_of(harness)
        server = reader.server
        assert server is not None
        harness.stop()
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", server.port), 1),
        ):
            pass

    def test_server_can_be_turned_off(self) -> None:
        env = {**FREE, "LIMELIGHT_PROMETHEUS_SERVER": "false"}
        with Harness(plugins=[plugin], env=env) as harness:
            assert reader_of(harness).server is None

    def test_metrics_exporter_selection_is_respected(self) -> None:
        env = {**FREE, "OTEL_METRICS_EXPORTER": "otlp"}
        with Harness(plugins=[plugin], env=env) as harness:
            assert [p for p, _ in harness.telemetry.readers if p == "prometheus"] == []

    def test_a_taken_port_is_reported_and_the_service_keeps_working(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with Harness(plugins=[plugin], env=_bind("127.0.0.1", port)) as harness:
                jobs = harness.store.counter("jobs_total", "Jobs run.")
                jobs.inc()
                failures = harness.telemetry.plugins.failures
                assert harness.value("jobs_total") == 1.0
        assert [f.plugin for f in failures] == ["prometheus"]
        assert f"127.0.0.1:{port}" in failures[0].error


class TestMountableApps:
    """make_wsgi_app/make_asgi_app serve the running telemetry's store inside the user's app."""

    def test_wsgi_app_built_before_start_follows_the_running_telemetry(self) -> None:
        app = make_wsgi_app()
        env = {"LIMELIGHT_PROMETHEUS_SERVER": "false"}
        for expected in (1, 2):
            with Harness(plugins=[plugin], env=env) as harness:
                harness.store.counter("jobs_total", "Jobs run.").inc(expected)
                with httpx.Client(transport=httpx.WSGITransport(app=app)) as client:
                    text = client.get("http://app/metrics").text
            assert {(): float(expected)} == _samples(text, "jobs_total")

    @pytest.mark.anyio
    async def test_asgi_app_negotiates_openmetrics(self) -> None:
        with Harness(plugins=[plugin], env={"LIMELIGHT_PROMETHEUS_SERVER": "false"}) as harness:
            harness.store.counter("jobs_total", "Jobs run.").inc()
            app = make_asgi_app(harness.telemetry)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport) as client:
                om = await client.get("http://app/metrics", headers={"Accept": OPENMETRICS})
                plain = await client.get("http://app/metrics")
        assert om.text.endswith("# EOF\n")
        assert "jobs_total 1.0" in plain.text

    def test_name_filter(self) -> None:
        with Harness(plugins=[plugin], env={"LIMELIGHT_PROMETHEUS_SERVER": "false"}) as harness:
            harness.store.counter("jobs_total", "Jobs run.").inc()
            harness.store.counter("mails_total", "Mails sent.").inc()
            with httpx.Client(transport=httpx.WSGITransport(app=make_wsgi_app())) as client:
                text = client.get("http://app/metrics", params={"name[]": "mails_total"}).text
        assert "mails_total 1.0" in text
        assert "jobs_total" not in text


class TestPromtool:
    """promtool check metrics accepts the exposition, hostile label values and the whole catalog."""

    def test_hostile_label_values_and_the_full_catalog_pass_promtool(self) -> None:
        with Harness(plugins=[plugin, CatalogPlugin()], env=FREE) as harness:
            store = harness.store
            for decl in CATALOG:
                metric = store.get(decl.name)
                for value in HOSTILE:
                    child = metric.labels(*([value] * len(decl.label_names)))
                    if decl.kind.value == "histogram":
                        child.observe(0.042)
                    elif decl.kind.value == "gauge_set":
                        child.set(7)
                    else:
                        child.inc()
            text = httpx.get(reader_of(harness).url or "").text
        passed, output = promtool_check_metrics(text)
        assert passed, output
        # the values come back exactly as given
        parsed = _samples(text, "kv_ops_total")
        for value in HOSTILE:
            key = tuple(sorted({"namespace": value, "op": value, "result": value}.items()))
            assert parsed[key] == 1.0, value

    def test_openmetrics_exposition_parses_back(self) -> None:
        with Harness(plugins=[plugin, CatalogPlugin()], env=FREE) as harness:
            counter = harness.store.get("log_emissions_total")
            for value in HOSTILE:
                counter.labels(value).inc()
            text = exposition(harness.store, openmetrics=True).decode()
        values = {
            s.labels["level"]: s.value
            for f in om_parse(text)
            for s in f.samples
            if s.name == "log_emissions_total"
        }
        assert dict.fromkeys(HOSTILE, 1.0) == values


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("auto", "auto"),
        (" AUTO ", "auto"),
        ("true", "true"),
        ("On", "true"),
        ("1", "true"),
        ("yes", "true"),
        ("false", "false"),
        ("off", "false"),
        ("0", "false"),
        ("no", "false"),
    ],
)
def test_server_mode_values(raw: str, mode: str) -> None:
    assert parse_server_mode(raw) == mode


def test_an_unknown_server_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, true or false"):
        parse_server_mode("sometimes")


def test_public_api() -> None:
    assert sorted(limelight_prometheus.__all__) == sorted(
        n for n in dir(limelight_prometheus) if not n.startswith("_") and n != "annotations"
    )
