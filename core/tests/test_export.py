"""The pieces every exporter is built on: a bounded worker thread and failure accounting."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from structlog.testing import capture_logs

from limelight.export import ExportHealth, ExportWorker
from limelight.metrics import MetricStore


class TestExportWorker:
    """Runs work periodically and on request; callers never wait past their deadline."""

    @pytest.mark.parametrize("interval", [0.0, -1.0])
    def test_an_interval_that_would_spin_is_refused(self, interval: float) -> None:
        with pytest.raises(ValueError, match="interval must be > 0"):
            ExportWorker("t", interval, lambda flush: None)

    def test_flush_runs_the_work_with_flush_set(self) -> None:
        calls: list[bool] = []
        worker = ExportWorker("t", 60.0, calls.append)
        worker.start()
        try:
            assert worker.flush(5.0)
            assert [True] == calls
        finally:
            assert worker.close(5.0)

    def test_periodic_runs_are_not_flushes(self) -> None:
        calls: list[bool] = []
        worker = ExportWorker("t", 0.01, calls.append)
        worker.start()
        try:
            deadline = time.monotonic() + 5
            while not calls and time.monotonic() < deadline:
                time.sleep(0.01)
            assert calls and not calls[0]
        finally:
            worker.close(5.0)

    def test_a_slow_run_cannot_hold_flush_or_close(self) -> None:
        release = threading.Event()

        def slow(flush: bool) -> None:
            release.wait(30)

        worker = ExportWorker("t", 60.0, slow)
        worker.start()
        started = time.monotonic()
        assert not worker.flush(0.2)
        assert not worker.close(0.2)
        assert time.monotonic() - started < 2.0
        release.set()

    def test_work_that_raises_is_reported_and_the_thread_keeps_running(self) -> None:
        calls: list[bool] = []

        def work(flush: bool) -> None:
            calls.append(flush)
            if len(calls) == 1:
                raise RuntimeError("export broke")

        worker = ExportWorker("broken", 60.0, work)
        worker.start()
        with capture_logs() as logs:
            assert worker.flush(5.0)
            assert worker.flush(5.0)
        worker.close(5.0)
        assert [True, True] == calls
        assert ["broken"] == [e["where"] for e in logs if e.get("component") == "export"]

    def test_nothing_to_wait_for_once_closed(self) -> None:
        worker = ExportWorker("t", 60.0, lambda flush: None)
        worker.start()
        worker.close(5.0)
        assert not worker.alive
        assert not worker.flush(5.0)


class TestExportHealth:
    """Every failure is counted; an episode of failures is logged when it starts and ends."""

    def test_counts_every_failure_and_logs_each_episode_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = MetricStore()
        health = ExportHealth(store, "collector", "span export", "spans are dropped")
        # the recovery is an info line: seen where the application logs limelight at INFO
        with caplog.at_level(logging.INFO, logger="limelight"), capture_logs() as logs:
            health.failed("refused")
            health.failed("refused")
            health.succeeded()
            health.succeeded()
            health.failed("timeout")
        assert 3 == store.registry.get_sample_value(
            "limelight_export_errors_total", {"exporter": "collector"}
        )
        assert [
            ("warning", "span export failing; spans are dropped", "refused"),
            ("info", "span export recovered", None),
            ("warning", "span export failing; spans are dropped", "timeout"),
        ] == [(e["log_level"], e["event"], e.get("error")) for e in logs]
