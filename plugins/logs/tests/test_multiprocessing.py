"""Lines logged in multiprocessing children (processes and pool tasks, under fork, spawn and
forkserver) carry the trace id of the span that started them in the parent."""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import limelight_logs
import limelight_process
import pytest

from limelight.testing import Harness

_children: Any = importlib.import_module("_children")  # next to this file
METHODS = ["fork", "spawn", "forkserver"]


@pytest.fixture
def parent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """Telemetry with the process and logs plugins; children that start their own load the
    same two (and export nothing)."""
    for name, value in {
        "LIMELIGHT_PLUGINS": "logs,process",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TRACEPARENT", raising=False)
    limelight_process.uninstrument()
    with Harness(plugins=[limelight_process.plugin, limelight_logs.plugin]) as harness:
        yield harness
    limelight_process.uninstrument()


def _lines(path: Path) -> dict[str, str]:
    """message -> trace id of every line the children wrote."""
    return {
        line.split()[0]: line.split()[1]
        for line in path.read_text().splitlines()
        if len(line.split()) == 3
    }


@pytest.mark.parametrize("method", METHODS)
class TestChildren:
    """The child's line has the parent span's trace id."""

    def test_process(self, method: str, parent: Harness, tmp_path: Path) -> None:
        path = tmp_path / "lines.log"
        with parent.telemetry.tracer("t").start_as_current_span("job") as job:
            process = multiprocessing.get_context(method).Process(  # type: ignore[attr-defined]
                target=_children.log_line, args=(str(path), f"process-{method}")
            )
            process.start()
            process.join(60)
        assert 0 == process.exitcode
        assert {f"process-{method}": f"{job.get_span_context().trace_id:032x}"} == _lines(path)

    def test_pool_task(self, method: str, parent: Harness, tmp_path: Path) -> None:
        path = tmp_path / "lines.log"
        context = multiprocessing.get_context(method)
        with (
            concurrent.futures.ProcessPoolExecutor(
                1, mp_context=context, initializer=_children.start
            ) as pool,
            parent.telemetry.tracer("t").start_as_current_span("batch") as batch,
        ):
            assert 0 == pool.submit(_children.log_line, str(path), f"task-{method}").result(60)
        assert {f"task-{method}": f"{batch.get_span_context().trace_id:032x}"} == _lines(path)
