"""A forked child with its parent's telemetry flushes it at exit and on SIGTERM, stops nothing."""

from __future__ import annotations

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
