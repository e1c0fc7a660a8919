"""Log records at a real OTLP receiver: trace context, severity, body, attributes, exception
fields; every one delivered by stop, none of the exporter's own lines, losses counted."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import limelight_logs
import limelight_otlp
import pytest
import structlog
from limelight_testsupport import free_port
from limelight_testsupport.otlp import OtlpReceiver, otlp_receiver

from limelight.testing import Harness

QUIET = {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    # a delay no test waits for: what arrives was sent by the flush at stop
    "OTEL_BLRP_SCHEDULE_DELAY": "600000",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("shop.checkout")
    log.setLevel(logging.DEBUG)
    yield log
    log.setLevel(logging.NOTSET)


def _attributes(record: Any) -> dict[str, Any]:
    out = {}
    for kv in record.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def _body(record: Any) -> str:
    return str(record.body.string_value)


def _harness(receiver_endpoint: str, **env: str) -> Harness:
    return Harness(
        plugins=[limelight_otlp.plugin, limelight_logs.plugin],
        env={**QUIET, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver_endpoint, **env},
    )


class TestAtTheReceiver:
    """What limelight logs inside a span reaches the receiver with that span's trace context."""

    def test_records_with_their_trace_context(
        self, receiver: OtlpReceiver, app_logger: logging.Logger
    ) -> None:
        out = io.StringIO()
        structlog.configure(logger_factory=structlog.WriteLoggerFactory(out))
        with _harness(receiver.endpoint) as harness:
            tracer = harness.telemetry.tracer("test")
            for i in range(300):  # queued until stop: the delay is 10 minutes
                app_logger.info("queued %d", i)
            with tracer.start_as_current_span("checkout") as span:
                app_logger.info("order %s placed", 17, extra={"order_id": 17, "tags": ["a", "b"]})
                try:
                    raise ValueError("card declined")
                except ValueError:
                    app_logger.exception("payment failed")
                structlog.get_logger("shop.events").warning("stock low", sku="B-2")
            app_logger.warning("outside any span")
        ctx = span.get_span_context()
        wanted = {"order 17 placed", "payment failed", "stock low", "outside any span"}
        got = {
            _body(r): r for r in receiver.wait_for_logs(lambda r: _body(r) in wanted, len(wanted))
        }
        assert wanted == set(got)
        queued = receiver.wait_for_logs(lambda r: _body(r).startswith("queued "), 300)
        assert {f"queued {i}" for i in range(300)} == {_body(r) for r in queued}
        placed, failed, low, outside = (
            got["order 17 placed"],
            got["payment failed"],
            got["stock low"],
            got["outside any span"],
        )
        for record in (placed, failed, low):
            assert ctx.trace_id.to_bytes(16, "big") == record.trace_id
            assert ctx.span_id.to_bytes(8, "big") == record.span_id
            assert int(ctx.trace_flags) == record.flags
        assert (b"", b"") == (outside.trace_id, outside.span_id)
        assert (9, "INFO") == (placed.severity_number, placed.severity_text)
        assert (17, "ERROR") == (failed.severity_number, failed.severity_text)
        assert (13, "WARN") == (low.severity_number, low.severity_text)
        attributes = _attributes(placed)
        assert 17 == attributes["order_id"]
        assert "test_records_with_their_trace_context" == attributes["code.function.name"]
        assert attributes["code.file.path"].endswith("test_otlp.py")
        error = _attributes(failed)
        assert "ValueError" == error["exception.type"]
        assert "card declined" == error["exception.message"]
        assert "Traceback" in error["exception.stacktrace"]
        assert "B-2" == _attributes(low)["sku"]
        # the ids were in the log lines too
        assert "stock low" in out.getvalue() and f"{ctx.trace_id:032x}" in out.getvalue()

    def test_no_line_of_the_exporter_comes_back(
        self, receiver: OtlpReceiver, app_logger: logging.Logger
    ) -> None:
        # every logger at DEBUG: the exporter's HTTP client logs its connections and
        # requests in the export thread, between exports every 50 ms
        root = logging.getLogger()
        root.setLevel(logging.DEBUG)
        try:
            with _harness(
                receiver.endpoint,
                OTEL_BLRP_SCHEDULE_DELAY="50",
                OTEL_BLRP_MAX_EXPORT_BATCH_SIZE="64",
            ) as harness:
                with harness.telemetry.tracer("test").start_as_current_span("burst"):
                    for i in range(500):
                        app_logger.debug("burst line %d", i)
                burst = receiver.wait_for_logs(lambda r: _body(r).startswith("burst line"), 500)
                time.sleep(0.5)  # ten more export rounds, for whatever the exports logged
                received = {_body(r) for r in receiver.logs()}
        finally:
            root.setLevel(logging.NOTSET)
        assert {f"burst line {i}" for i in range(500)} == {_body(r) for r in burst}
        assert 500 == len(burst)
        # urllib3's "Starting new HTTP connection" and '"POST /v1/logs HTTP/1.1" 200'
        assert [] == sorted(b for b in received if "HTTP" in b)
        assert 0 == harness.value("limelight_logs_dropped_total")


class TestLosses:
    """Records an exporter could not deliver are counted, never retried forever."""

    def test_unreachable_endpoint(self, app_logger: logging.Logger) -> None:
        endpoint = f"http://127.0.0.1:{free_port()}"
        with _harness(
            endpoint,
            OTEL_BLRP_MAX_QUEUE_SIZE="5",
            OTEL_BLRP_MAX_EXPORT_BATCH_SIZE="5",
            OTEL_EXPORTER_OTLP_TIMEOUT="1000",
        ) as harness:
            for i in range(8):
                app_logger.warning("lost %d", i)
        # 5 queued and failed at export, 3 refused by the full queue
        assert 8 == harness.value("limelight_logs_dropped_total")
        assert 1 <= harness.value("limelight_export_errors_total", exporter="otlp")

    def test_nothing_converted_without_an_exporter(self, app_logger: logging.Logger) -> None:
        with Harness(plugins=[limelight_logs.plugin]) as harness:
            assert harness.telemetry.log_emitter is None
            assert not any(
                isinstance(h, limelight_logs.TelemetryHandler) for h in logging.getLogger().handlers
            )
            app_logger.warning("only counted")
            assert 1 == harness.value("log_emissions_total", level="warning")

    def test_the_handler_leaves_with_the_telemetry(self, receiver: OtlpReceiver) -> None:
        root = logging.getLogger()
        with _harness(receiver.endpoint):
            assert any(isinstance(h, limelight_logs.TelemetryHandler) for h in root.handlers)
            logging.basicConfig(force=True)  # a configuration replacing the root's handlers
            assert any(isinstance(h, limelight_logs.TelemetryHandler) for h in root.handlers)
        assert not any(isinstance(h, limelight_logs.TelemetryHandler) for h in root.handlers)
