"""The batch span processor: a full queue while exports succeed, and across a fork."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from structlog.testing import capture_logs

import limelight
from limelight._batch import BoundedBatchSpanProcessor
from limelight._spans import TracerProvider
from limelight.metrics import MetricStore
from limelight_hookspecs import BatchSettings, NumberPoint


class _Slow(SpanExporter):
    """Takes *seconds* per batch, as encoding and sending a batch does, and keeps the names."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.names: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        time.sleep(self.seconds)
        self.names.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


class _Held(SpanExporter):
    """Holds every export until released (a collector that accepted the connection)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.names: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        self.names.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


class _Failing(SpanExporter):
    """Fails every export after *seconds*."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        time.sleep(self.seconds)
        return SpanExportResult.FAILURE


def _processor(
    exporter: SpanExporter, store: MetricStore, wait: float = 1.0
) -> tuple[BoundedBatchSpanProcessor, Any]:
    settings = BatchSettings(
        schedule_delay=60.0,
        max_queue_size=20,
        max_export_batch_size=5,
        export_timeout=10.0,
        queue_full_wait=wait,
    )
    processor = BoundedBatchSpanProcessor(exporter, "test", settings, store)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return processor, provider.get_tracer("test")


def _dropped(store: MetricStore) -> float:
    [family] = [
        f for f in store.snapshot() if f.declaration.name == "limelight_spans_dropped_total"
    ]
    return sum(point.value for point in family.points if isinstance(point, NumberPoint))


def _events(
    logs: Sequence[MutableMapping[str, Any]], prefix: str
) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if str(e["event"]).startswith(prefix)]


class TestFullQueue:
    """A burst faster than the exporter loses nothing while exports succeed; a stuck or
    failing exporter costs one bounded wait at most, and what is lost is counted and
    logged once per episode."""

    def test_a_burst_waits_for_a_live_exporter_and_loses_nothing(self) -> None:
        store = MetricStore()
        exporter = _Slow(0.005)  # 1 ms a span: far slower than making them
        processor, tracer = _processor(exporter, store)
        with capture_logs() as logs:
            for i in range(200):  # ten times the queue
                tracer.start_span(f"s{i}").end()
            assert processor.flush(10.0)
        processor.shutdown()
        assert [f"s{i}" for i in range(200)] == exporter.names
        assert 0 == _dropped(store)
        assert [] == _events(logs, "span queue")

    def test_a_stuck_exporter_costs_one_bounded_wait_then_drops_and_logs_once(self) -> None:
        store = MetricStore()
        exporter = _Held()
        processor, tracer = _processor(exporter, store, wait=0.2)
        try:
            with capture_logs() as logs:
                started = time.monotonic()
                for i in range(100):
                    tracer.start_span(f"s{i}").end()
                took = time.monotonic() - started
                # one batch is held in the exporter, the queue is full, the rest dropped
                dropped = _dropped(store)
                exporter.release.set()
                assert processor.flush(10.0)
        finally:
            exporter.release.set()
            processor.shutdown()
        assert 100 - 20 - 5 == dropped
        assert 0.2 <= took < 1.5  # one wait of 0.2 s, not one per dropped span
        assert [f"s{i}" for i in range(25)] == exporter.names
        [full] = _events(logs, "span queue full")
        assert ("warning", "test", 20) == (
            full["log_level"],
            full["exporter"],
            full["max_queue_size"],
        )
        [drained] = _events(logs, "span queue drained")
        assert ("warning", dropped) == (drained["log_level"], drained["dropped"])

    def test_a_failing_exporter_never_makes_a_span_wait(self) -> None:
        store = MetricStore()
        processor, tracer = _processor(_Failing(0.05), store, wait=30.0)
        tracer.start_span("first").end()
        assert processor.flush(10.0)  # the failure episode has begun
        with capture_logs() as logs:
            started = time.monotonic()
            for i in range(100):
                tracer.start_span(f"s{i}").end()
            took = time.monotonic() - started
        processor.shutdown()
        assert took < 5.0  # no wait of 30 s
        assert 101 == _dropped(store)  # every span lost: to the full queue or the failures
        assert 1 == len(_events(logs, "span queue full"))

    def test_no_wait_drops_at_once_as_the_sdk_does(self) -> None:
        store = MetricStore()
        exporter = _Held()
        processor, tracer = _processor(exporter, store, wait=0.0)
        try:
            started = time.monotonic()
            for i in range(100):
                tracer.start_span(f"s{i}").end()
            took = time.monotonic() - started
            assert 100 - 20 - 5 <= _dropped(store)
        finally:
            exporter.release.set()
            processor.shutdown()
        assert took < 0.2

    @pytest.mark.parametrize(("raw", "seconds"), [("250", 0.25), ("0", 0.0), ("soon", 1.0)])
    def test_the_wait_is_read_from_the_environment(self, raw: str, seconds: float) -> None:
        config = limelight.load_config(environ={"LIMELIGHT_BSP_QUEUE_FULL_WAIT": raw})
        assert seconds == config.batch.queue_full_wait
        problems = [p.variable for p in config.problems]
        assert (["LIMELIGHT_BSP_QUEUE_FULL_WAIT"] if raw == "soon" else []) == problems

    def test_close_releases_a_span_waiting_for_room(self) -> None:
        store = MetricStore()
        exporter = _Held()
        processor, tracer = _processor(exporter, store, wait=30.0)
        for i in range(25):  # a batch in the exporter and a full queue
            tracer.start_span(f"s{i}").end()
        waiter = threading.Thread(target=lambda: tracer.start_span("late").end())
        waiter.start()
        time.sleep(0.1)
        assert waiter.is_alive(), "a span ending on a full queue waits for room"
        started = time.monotonic()
        processor.close(0.5)
        waiter.join(5.0)
        took = time.monotonic() - started
        exporter.release.set()
        assert not waiter.is_alive()
        assert took < 3.0
        assert 20 + 1 == _dropped(store)  # the queue and the late span


class _ByProcess(SpanExporter):
    """Appends each exported span's name to a file named after the exporting process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with (self.folder / str(os.getpid())).open("a") as out:
            out.writelines(f"{span.name}\n" for span in spans)
        return SpanExportResult.SUCCESS


def _exported(folder: Path, pid: int) -> list[str]:
    path = folder / str(pid)
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
class TestFork:
    """A forked child drops the spans it inherited queued and exports the ones it makes."""

    def test_each_process_exports_its_own_spans(self, tmp_path: Path) -> None:
        processor = BoundedBatchSpanProcessor(
            _ByProcess(tmp_path), "by-process", BatchSettings(schedule_delay=60.0), MetricStore()
        )
        provider = TracerProvider()
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("test")
        tracer.start_span("queued in the parent").end()  # waits for the 60 s schedule
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit status
            code = 1
            try:
                tracer.start_span("made in the child").end()
                code = 0 if processor.flush(10.0) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert 0 == os.waitstatus_to_exitcode(status)
        assert processor.flush(10.0)
        processor.shutdown()
        assert ["made in the child"] == _exported(tmp_path, child)
        assert ["queued in the parent"] == _exported(tmp_path, os.getpid())
