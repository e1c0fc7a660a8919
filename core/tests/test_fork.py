"""A forked child with its parent's telemetry flushes it at exit and on SIGTERM, stops nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FORK_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    import limelight
    from limelight_hookspecs import hookimpl

    OUT, MODE = sys.argv[1], sys.argv[2]

    def note(line):
        with open(OUT, "a") as f:
            f.write(line + "\\n")

    class FileExporter(SpanExporter):
        def export(self, spans):
            for s in spans:
                note(f"span {s.name} {os.getpid()}")
            return SpanExportResult.SUCCESS

    class Plugin:
        limelight_name = "fork-test"

        @hookimpl
        def limelight_spans_provide_exporters(self, telemetry):
            return [FileExporter()]

        @hookimpl
        def limelight_lifecycle_stop(self, telemetry, timeout):
            note(f"stopped {os.getpid()}")
            time.sleep(5)  # a plugin waiting on a thread of the parent's that a child lacks

    telemetry = limelight.start(plugins=[Plugin()], entry_points=False)
    tracer = telemetry.tracer("fork-test")
    pid = os.fork()
    if pid == 0:
        tracer.start_span("in-child").end()
        if MODE == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        sys.exit(0)
    started = time.monotonic()
    _, status = os.waitpid(pid, 0)
    note(f"child {pid} {os.waitstatus_to_exitcode(status)} {time.monotonic() - started:.1f}")
    limelight.stop(2)
    """
)


@pytest.mark.parametrize(("mode", "code"), [("exit", 0), ("sigterm", -signal.SIGTERM)])
def test_a_forked_child_flushes_and_stops_nothing(tmp_path: Path, mode: str, code: int) -> None:
    script, out = tmp_path / "app.py", tmp_path / "out.txt"
    script.write_text(FORK_SCRIPT)
    subprocess.run([sys.executable, str(script), str(out), mode], check=True, timeout=60)
    lines = out.read_text().splitlines()
    [child] = [line.split() for line in lines if line.startswith("child ")]
    _, child_pid, exit_code, seconds = child
    assert code == int(exit_code)
    assert float(seconds) < 4  # not held by the stop hook of the parent's plugin
    assert f"span in-child {child_pid}" in lines
    stopped = [line.split()[1] for line in lines if line.startswith("stopped ")]
    assert child_pid not in stopped
    assert 1 == len(stopped)  # the parent's own stop


HANG_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import limelight

    limelight.start(entry_points=False)
    import concurrent.futures.thread  # the application's, imported after start

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            print("child exited")
            break
        time.sleep(0.05)
    else:
        print("child hung")
        os.kill(pid, 9)
    limelight.stop(2)
    """
)


def test_a_forked_child_does_not_hang_in_the_sdk_fork_handler(tmp_path: Path) -> None:
    # opentelemetry-sdk 1.45.2's TracerProvider detects resources through a thread pool in
    # the forked child; before concurrent.futures.thread reset its lock there, it hung
    script = tmp_path / "app.py"
    script.write_text(HANG_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert "child exited" == result.stdout.strip()


STORE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from limelight.metrics import MetricStore

    store = MetricStore()
    jobs = store.counter("jobs_total", "j", ["q"])
    latency = store.histogram("job_seconds", "j", ["q"], buckets=[1.0])
    busy = store.gauge_add("busy", "b")
    level = store.gauge_set("level", "l")
    jobs.labels("a").inc(5)
    latency.labels("a").observe(0.5)
    busy.inc(2)
    level.set(7)
    started = jobs.start_time_ns
    # a thread of the parent holds a series' lock when the process forks
    cell_lock = threading.Event()
    def hold():
        with jobs._lock:
            cell_lock.set()
            time.sleep(2)
    threading.Thread(target=hold, daemon=True).start()
    cell_lock.wait()

    def values():
        return {f.declaration.name: [getattr(p, "value", None) or getattr(p, "count", 0)
                                     for p in f.points]
                for f in store.snapshot() if f.declaration.name in ("jobs_total", "job_seconds",
                                                                    "busy", "level")}

    pid = os.fork()
    if pid == 0:
        own = store.after_fork()
        jobs.labels("a").inc(1)
        jobs.labels("b").inc(1)  # a new series: the metric's lock was made anew
        latency.labels("a").observe(0.25)
        print(json.dumps({"own": own, "values": values(),
                          "later": jobs.start_time_ns > started}), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    print(json.dumps({"values": values()}))
    """
)


def test_a_forked_store_counts_from_zero_and_keeps_absolute_gauges(tmp_path: Path) -> None:
    """After ``MetricStore.after_fork`` a child's counters, histograms and additive
    gauges are its own, from 0, starting at the fork; the parent's stay as they were."""
    script = tmp_path / "store.py"
    script.write_text(STORE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    child, parent = (json.loads(line) for line in result.stdout.splitlines())
    assert child["own"] and child["later"]
    assert {"jobs_total": [1.0, 1.0], "job_seconds": [1], "busy": [0.0], "level": [7.0]} == (
        child["values"]
    )
    assert {"jobs_total": [5.0], "job_seconds": [1], "busy": [2.0], "level": [7.0]} == (
        parent["values"]
    )
