"""A real Prometheus server (Debian package) scrapes a running exporter."""

from __future__ import annotations

from limelight_prometheus import PrometheusReader, plugin
from limelight_testsupport.prometheus import prometheus_server

from limelight.testing import Harness


class TestScrapedByPrometheus:
    """Prometheus scrapes the standalone server and answers queries with the store's series."""

    def test_series_and_exemplars_reach_prometheus(self) -> None:
        env = {"OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": "0"}
        with Harness(plugins=[plugin], env=env) as harness:
            jobs = harness.store.counter("jobs_total", "Jobs run.", ["queue", "result"])
            latency = harness.store.histogram(
                "job_duration_seconds", "Job time.", ["queue"], unit="s"
            )
            jobs.labels("mail", "ok").inc(2)
            jobs.labels("mail", "error").inc()
            with harness.telemetry.tracer("test").start_as_current_span("job") as span:
                latency.labels("mail").observe(0.3)
            trace_id = f"{span.get_span_context().trace_id:032x}"
            reader = PrometheusReader.of(harness.telemetry)
            assert reader is not None
            server = reader.server
            assert server is not None
            with prometheus_server([f"127.0.0.1:{server.port}"], scrape_interval=0.5) as prom:
                result = prom.wait_for_query('jobs_total{job="limelight"}', lambda r: len(r) == 2)
                by_result = {r["metric"]["result"]: float(r["value"][1]) for r in result}
                buckets = prom.wait_for_query('job_duration_seconds_bucket{queue="mail"}')
                exemplars = prom.exemplars("job_duration_seconds_bucket")
                targets = prom.scrape_targets()
        assert by_result == {"ok": 2.0, "error": 1.0}
        counts = {r["metric"]["le"]: float(r["value"][1]) for r in buckets}
        assert counts["0.25"] == 0.0
        assert counts["0.5"] == 1.0
        assert counts["+Inf"] == 1.0
        assert [t["health"] for t in targets] == ["up"]
        seen = [e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]]
        assert [trace_id] == seen
