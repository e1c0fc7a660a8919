"""The outbound HTTP surface next to the OTLP exporter: exports are never recorded as traffic."""

from __future__ import annotations

import httpx
from limelight_testsupport.httpserver import LocalHTTPServer
from limelight_testsupport.otlp import otlp_receiver
from opentelemetry import trace

from limelight.testing import Harness


def _port(span: object) -> int | None:
    for attribute in getattr(span, "attributes", ()):
        if attribute.key == "server.port":
            return int(attribute.value.int_value)
    return None


class TestExportsAreNotTraffic:
    """OTLP/HTTP exports run with instrumentation suppressed: no client span, no count."""

    def test_span_and_metric_exports_are_not_recorded(self) -> None:
        with otlp_receiver() as receiver, LocalHTTPServer() as server:
            env = {
                "LIMELIGHT_PLUGINS": "otlp,httpclient",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            }
            with Harness(entry_points=True, env=env) as harness:
                tracer = trace.get_tracer("tests")
                with tracer.start_as_current_span("job"), httpx.Client() as client:
                    client.get(server.url("/ok"))
                # export while telemetry runs: spans, then metrics, over OTLP/HTTP
                for processor in harness.telemetry.span_processors:
                    assert processor.flush(10)
                exported = receiver.wait_for_spans(2)
                for _name, reader in harness.telemetry.readers:
                    reader.force_flush(10)
                receiver.wait_for_metric("http_client_requests_total")
                client_spans = [s for s in harness.spans() if s.kind is trace.SpanKind.CLIENT]
                series = harness.series("http_client_requests_total")
                count = harness.value(
                    "http_client_requests_total", method="GET", host="127.0.0.1", status_code="200"
                )

        assert [server.port] == [(s.attributes or {}).get("server.port") for s in client_spans]
        assert [server.port] == [_port(s) for s in exported if _port(s) is not None]
        assert 1 == count
        assert [{"method": "GET", "host": "127.0.0.1", "status_code": "200"}] == series
