"""Lifecycle: start, stop, flush at exit and on SIGTERM, bounded shutdown, resource, hooks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import limelight
from limelight.testing import Harness
from limelight_hookspecs import TelemetryView, hookimpl

SLOW_EXPORT_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    import limelight
    from limelight_hookspecs import hookimpl

    OUT = sys.argv[1]
    N = int(sys.argv[2])
    MODE = sys.argv[3]
    SIGTERM = signal.SIGTERM

    class SlowFileExporter(SpanExporter):
        def export(self, spans):
            time.sleep(0.05)  # a slow collector
            with open(OUT, "a") as f:
                f.write("".join(s.name + "\\n" for s in spans))
            return SpanExportResult.SUCCESS

    class Plugin:
        limelight_name = "slow-file"

        @hookimpl
        def limelight_spans_provide_exporters(self, telemetry):
            return [SlowFileExporter()]

    if MODE == "app-handler":
        def drain(signum, frame):
            # an application finishing its in-flight requests before it exits
            for i in range(3):
                tracer.start_span(f"drain-{i}").end()
            sys.exit(3)

        signal.signal(SIGTERM, drain)
    elif MODE == "ignored":
        signal.signal(SIGTERM, signal.SIG_IGN)

    limelight.start(plugins=[Plugin()], entry_points=False, traces_sampler="always_on")
    tracer = limelight.current().tracer("exit-test")
    for i in range(N):
        tracer.start_span(f"span-{i}").end()
    if MODE in ("sigterm", "app-handler", "ignored"):
        os.kill(os.getpid(), SIGTERM)
        if MODE == "ignored":
            time.sleep(0.2)
            ignored = signal.getsignal(SIGTERM) == signal.SIG_IGN
            print("still running; SIGTERM ignored:", ignored)
            sys.exit(0)
        time.sleep(30)  # never reached: SIGTERM ends the process after the flush
    """
)


def _run_exit_script(tmp_path: Path, n: int, mode: str) -> tuple[int, list[str], str]:
    script = tmp_path / "app.py"
    script.write_text(SLOW_EXPORT_SCRIPT)
    out = tmp_path / "spans.txt"
    env = {
        **os.environ,
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
        "LIMELIGHT_SHUTDOWN_TIMEOUT": "30",
    }
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(n), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = out.read_text().split() if out.exists() else []
    return proc.returncode, lines, proc.stdout


class TestFlushAtExit:
    """No queued span is lost on a clean exit, even with a slow exporter."""

    def test_interpreter_exit_flushes_every_queued_span(self, tmp_path: Path) -> None:
        code, spans, _ = _run_exit_script(tmp_path, 1500, "exit")
        assert 0 == code
        assert 1500 == len(spans)
        assert {f"span-{i}" for i in range(1500)} == set(spans)


class TestSigterm:
    """SIGTERM loses no span, and the application's own handling of it comes first."""

    def test_default_disposition_flushes_then_terminates_as_sigterm(self, tmp_path: Path) -> None:
        code, spans, _ = _run_exit_script(tmp_path, 1200, "sigterm")
        assert -signal.SIGTERM == code
        assert 1200 == len(spans)

    def test_spans_from_the_applications_handler_are_exported(self, tmp_path: Path) -> None:
        code, spans, _ = _run_exit_script(tmp_path, 500, "app-handler")
        assert 3 == code  # the application's handler decided how to exit
        assert ["drain-0", "drain-1", "drain-2"] == [s for s in spans if s.startswith("drain")]
        assert 503 == len(spans)

    def test_an_ignored_sigterm_stays_ignored(self, tmp_path: Path) -> None:
        code, spans, stdout = _run_exit_script(tmp_path, 200, "ignored")
        assert 0 == code
        assert "still running; SIGTERM ignored: True" in stdout.splitlines()
        assert 200 == len(spans)  # flushed at exit


class _HangingExporter(SpanExporter):
    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        return SpanExportResult.SUCCESS


class _StuckShutdownExporter(SpanExporter):
    """Exports at once; its shutdown blocks, as the OTLP gRPC exporter's does while an
    export is in flight."""

    def __init__(self) -> None:
        self.exported: list[str] = []
        self.release = threading.Event()
        self.shutdown_ended = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported.extend(s.name for s in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.wait(10)
        self.shutdown_ended.set()


class _FailingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE


class _ExporterPlugin:
    def __init__(self, name: str, exporter: SpanExporter) -> None:
        self.limelight_name = name
        self.exporter = exporter

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        return [self.exporter]


class TestBoundedShutdown:
    """Stop returns within its timeout whatever the exporters do, and counts what it lost."""

    def test_hanging_exporter_cannot_hold_stop(self) -> None:
        exporter = _HangingExporter()
        harness = Harness(
            plugins=[_ExporterPlugin("hanging", exporter)],
            env={"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10"},
        ).start()
        tracer = harness.telemetry.tracer("t")
        for i in range(50):
            tracer.start_span(f"s{i}").end()
        started = time.monotonic()
        finished = harness.telemetry.stop(timeout=1.0)
        elapsed = time.monotonic() - started
        exporter.release.set()
        assert not finished
        assert elapsed < 3.0
        # the batch held by the exporter is in flight; everything still queued was dropped
        assert harness.value("limelight_spans_dropped_total") >= 40

    def test_an_exporter_shutdown_that_blocks_cannot_hold_stop(self) -> None:
        exporter = _StuckShutdownExporter()
        harness = Harness(plugins=[_ExporterPlugin("stuck", exporter)]).start()
        harness.telemetry.tracer("t").start_span("queued").end()
        finished = harness.telemetry.stop(timeout=0.5)
        returned_while_shutdown_blocked = not exporter.shutdown_ended.is_set()
        exporter.release.set()
        assert not finished
        assert returned_while_shutdown_blocked
        assert ["queued"] == exporter.exported  # the flush before the shutdown still ran

    def test_failed_exports_are_counted(self) -> None:
        with Harness(plugins=[_ExporterPlugin("failing", _FailingExporter())]) as harness:
            tracer = harness.telemetry.tracer("t")
            for i in range(7):
                tracer.start_span(f"s{i}").end()
            assert harness.telemetry.force_flush(5)
            assert 1 == harness.value("limelight_export_errors_total", exporter="failing")
            assert 7 == harness.value("limelight_spans_dropped_total")

    def test_full_queue_drops_new_spans_and_counts_them(self) -> None:
        exporter = _HangingExporter()
        harness = Harness(
            plugins=[_ExporterPlugin("hanging", exporter)],
            env={"OTEL_BSP_MAX_QUEUE_SIZE": "20", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5"},
        ).start()
        try:
            tracer = harness.telemetry.tracer("t")
            for i in range(100):
                tracer.start_span(f"s{i}").end()
            # at most one batch in flight plus a full queue survive
            assert harness.value("limelight_spans_dropped_total") >= 100 - 20 - 5
        finally:
            exporter.release.set()
            harness.stop()


class TestStartStop:
    """start is idempotent, stop is idempotent, and the process-wide instance is tracked."""

    def test_process_wide_start_and_stop(self) -> None:
        telemetry = limelight.start(entry_points=False, handle_signals=False)
        try:
            assert telemetry is limelight.current()
            assert telemetry is limelight.start()
        finally:
            assert limelight.stop()
        assert (False, True) == (telemetry.enabled, telemetry.stopped)
        assert telemetry is not limelight.current()
        assert telemetry.stop()

    def test_harness_restores_the_previous_telemetry(self) -> None:
        with Harness() as outer:
            with Harness() as inner:
                assert inner.telemetry is limelight.current()
            assert outer.telemetry is limelight.current()
        assert not limelight.current().enabled

    def test_global_tracer_follows_the_running_telemetry(self, telemetry: Harness) -> None:
        with trace.get_tracer("user-code").start_as_current_span("manual"):
            pass
        telemetry.span("manual")

    def test_sdk_disabled_starts_nothing(self) -> None:
        plugin = _ExporterPlugin("never", _FailingExporter())
        with Harness(plugins=[plugin], env={"OTEL_SDK_DISABLED": "true"}) as harness:
            assert not harness.telemetry.enabled
            assert isinstance(harness.telemetry.tracer("x"), trace.NoOpTracer)


class TestReadOnlyInternals:
    """What a running telemetry is made of can be read, never replaced or changed from outside."""

    def test_lifecycle_flags_and_parts_cannot_be_assigned(self) -> None:
        plugin = _ExporterPlugin("kept", _FailingExporter())
        with Harness(plugins=[plugin]) as harness:
            telemetry = harness.telemetry
            for name in ("started", "stopped", "plugins", "readers", "span_processors"):
                with pytest.raises(AttributeError):
                    setattr(telemetry, name, None)
            with pytest.raises(AttributeError):
                telemetry.interceptors = ()  # type: ignore[misc]
            assert (True, False) == (telemetry.started, telemetry.stopped)
            assert ["kept"] == [p.name for p in telemetry.span_processors]

    def test_the_collections_handed_out_are_copies(self) -> None:
        plugin = _ExporterPlugin("kept", _FailingExporter())
        with Harness(plugins=[plugin]) as harness:
            telemetry = harness.telemetry
            processors, readers = telemetry.span_processors, telemetry.readers
            assert isinstance(processors, tuple) and isinstance(readers, tuple)
            assert isinstance(telemetry.interceptors, tuple)
        # the stop closed what the telemetry held; the tuples taken before did not change
        assert 1 == len(processors)
        assert (True, True) == (telemetry.started, telemetry.stopped)


class _OtelReaderPlugin:
    """Reads what code using the OpenTelemetry metrics API records."""

    limelight_name = "otel-reader"

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()

    @hookimpl
    def limelight_metrics_provide_otel_readers(
        self, telemetry: TelemetryView
    ) -> Sequence[MetricReader]:
        return [self.reader]

    def sums(self) -> dict[str, float]:
        data = self.reader.get_metrics_data()
        if data is None:
            return {}
        return {
            m.name: sum(p.value for p in m.data.data_points)  # type: ignore[union-attr,misc]
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }


def _globals() -> tuple[object, object, object]:
    return (
        trace.get_tracer_provider(),
        otel_metrics.get_meter_provider(),
        propagate.get_global_textmap(),
    )


class TestHarnessIsolation:
    """Each harness owns the OpenTelemetry globals while it runs and gives them back."""

    def test_api_metrics_land_in_the_running_harness_not_an_earlier_one(self) -> None:
        first, second = _OtelReaderPlugin(), _OtelReaderPlugin()
        with Harness(plugins=[first]):
            otel_metrics.get_meter("lib").create_counter("lib.calls").add(1)
        with Harness(plugins=[second]):
            otel_metrics.get_meter("lib").create_counter("lib.calls").add(2)
            assert {"lib.calls": 2} == second.sums()
        assert {"lib.calls": 1} == first.sums()

    def test_globals_are_given_back_at_stop_even_when_nested(self) -> None:
        before = _globals()
        with Harness(env={"OTEL_PROPAGATORS": "baggage"}) as outer:
            assert outer.telemetry.meter_provider is otel_metrics.get_meter_provider()
            assert {"baggage"} == propagate.get_global_textmap().fields
            inside_outer = _globals()
            with Harness() as inner:
                assert inner.telemetry.meter_provider is otel_metrics.get_meter_provider()
                assert {"traceparent", "tracestate", "baggage"} == (
                    propagate.get_global_textmap().fields
                )
            assert inside_outer == _globals()
        assert before == _globals()

    def test_global_tracer_reaches_the_running_harness(self) -> None:
        tracer = trace.get_tracer("user-code")
        with Harness() as first:
            tracer.start_span("one").end()
        with Harness() as second:
            tracer.start_span("two").end()
        assert (["one"], ["two"]) == (
            [s.name for s in first.spans()],
            [s.name for s in second.spans()],
        )


class TestResource:
    """Every signal shares one resource with service, host, process, os and sdk attributes."""

    def test_resource_attributes(self) -> None:
        harness = Harness(
            env={
                "OTEL_SERVICE_NAME": "checkout",
                "OTEL_RESOURCE_ATTRIBUTES": (
                    "service.version=2.0.1,deployment.environment.name=prod"
                ),
            }
        )
        with harness:
            attributes = dict(harness.telemetry.resource.attributes)
            span_resource = None
            harness.telemetry.tracer("t").start_span("s").end()
            span_resource = dict(harness.span("s").resource.attributes)
        assert attributes == span_resource
        assert "checkout" == attributes["service.name"]
        assert "2.0.1" == attributes["service.version"]
        assert "prod" == attributes["deployment.environment.name"]
        assert os.getpid() == attributes["process.pid"]
        for key in (
            "host.name",
            "host.arch",
            "os.type",
            "process.runtime.name",
            "process.runtime.version",
            "telemetry.sdk.name",
            "telemetry.sdk.version",
            "telemetry.sdk.language",
            "service.instance.id",
        ):
            assert key in attributes, key
