"""A burst of spans from a script that exits normally, with the default settings.

Each script runs in its own process, as a user's would: ``limelight.start()``,
5000 spans made as fast as limelight makes them (several times faster than
the OTLP exporter encodes them), then a normal exit, which stops telemetry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from limelight_testsupport import free_port
from limelight_testsupport.otlp import otlp_receiver

COUNT = 5000

BURST_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import limelight

    telemetry = limelight.start(service_name="burst")
    tracer = telemetry.tracer("burst")
    started = time.monotonic()
    for i in range(int(sys.argv[1])):
        tracer.start_span(f"span-{i}").end()
    burst = time.monotonic() - started
    started = time.monotonic()
    limelight.stop()
    stop = time.monotonic() - started
    [dropped] = [
        sum(p.value for p in family.points)
        for family in telemetry.store.snapshot()
        if family.declaration.name == "limelight_spans_dropped_total"
    ]
    print(json.dumps({"burst": burst, "stop": stop, "dropped": dropped}))
    """
)


def _run(tmp_path: Path, endpoint: str, **env: str) -> tuple[dict[str, Any], list[str]]:
    script = tmp_path / "burst.py"
    script.write_text(BURST_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(COUNT)],
        env={
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "LIMELIGHT_PLUGINS": "otlp",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result, proc.stderr.splitlines()


class TestBurst:
    """A burst the receiver can absorb loses nothing; a dead receiver costs one bounded
    wait, a bounded stop, and its losses are counted and logged once."""

    def test_every_span_of_a_burst_reaches_a_live_receiver(self, tmp_path: Path) -> None:
        with otlp_receiver() as receiver:
            result, stderr = _run(tmp_path, receiver.endpoint)
            spans = receiver.wait_for_spans(COUNT, timeout=30)
            # the last metric push, made by the stop, carries the processor's own count
            dropped = receiver.wait_for_metric("limelight_spans_dropped_total")
        assert COUNT == len(spans)
        assert {f"span-{i}" for i in range(COUNT)} == {span.name for span in spans}
        assert 0 == result["dropped"]
        assert dropped is not None
        assert [0] == [point.as_double for point in dropped.sum.data_points]
        assert [] == [line for line in stderr if "span queue" in line]

    def test_a_dead_receiver_costs_one_wait_a_bounded_stop_and_one_episode(
        self, tmp_path: Path
    ) -> None:
        endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        result, stderr = _run(tmp_path, endpoint, LIMELIGHT_SHUTDOWN_TIMEOUT="2")
        assert COUNT == result["dropped"]  # each one lost, each one counted
        # one wait for the first export (which never succeeds), not one per span
        assert result["burst"] < 1.0 + 2.0
        assert result["stop"] < 2.0 + 1.0
        full = [line for line in stderr if line.startswith("span queue full;")]
        assert 1 == len(full), stderr
        [ended] = [line for line in stderr if line.startswith("span queue full until shutdown")]
        assert "exporter=otlp" in ended
        assert "dropped=" in ended
