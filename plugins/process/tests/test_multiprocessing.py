"""multiprocessing.Process under fork, spawn and forkserver; the children's spans at a receiver."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from limelight_testsupport.otlp import OtlpReceiver
from opentelemetry import baggage
from opentelemetry.context import attach, detach

from limelight.testing import Harness

Received = Callable[[Callable[[Any], bool], int], list[Any]]
"""The ``received`` fixture: spans at the receiver matching a predicate, once there are N."""
_targets: Any = importlib.import_module("_targets")  # next to this file

METHODS = ["fork", "spawn", "forkserver"]


def _attrs(span: Any) -> dict[str, Any]:
    """A finished span's attributes (never ``None``)."""
    return dict(span.attributes or {})


def _context(method: str) -> Any:
    """The multiprocessing context of a start method."""
    return multiprocessing.get_context(method)


def _attribute(span: object, key: str) -> object:
    for attribute in getattr(span, "attributes", ()):
        if attribute.key == key:
            value = attribute.value
            return getattr(value, value.WhichOneof("value"))
    return None


@pytest.mark.parametrize("method", METHODS)
class TestChildJoinsTheTrace:
    """The child's spans are children of the CLIENT span, exported when the child exits."""

    def test_child_span_under_the_client_span(
        self, method: str, exporting: Harness, received: Received
    ) -> None:
        context = _context(method)
        name = f"child-{method}-{os.getpid()}"
        token = attach(baggage.set_baggage("tenant", "acme"))
        try:
            with exporting.telemetry.tracer("t").start_as_current_span("job") as job:
                process = context.Process(target=_targets.make_span, args=(name,))
                process.start()
                process.join(60)
        finally:
            detach(token)
        assert 0 == process.exitcode
        client = exporting.span("_targets.make_span", kind="client", parent=job)
        assert str(_attrs(client)["process.executable.name"]).startswith("python")
        assert (process.pid, 0, "_targets.make_span") == (
            _attrs(client)["process.pid"],
            _attrs(client)["process.exit.code"],
            _attrs(client)["code.function.name"],
        )
        [child] = received(lambda s: s.name == name, 1)
        assert client.context is not None
        assert client.context.trace_id.to_bytes(16, "big") == child.trace_id
        assert client.context.span_id.to_bytes(8, "big") == child.parent_span_id
        assert (process.pid, "acme") == (
            _attribute(child, "child.pid"),
            _attribute(child, "child.tenant"),
        )
        assert (1, 1, 0) == (
            exporting.value("process_started_total", kind="multiprocessing"),
            exporting.value("process_terminated_total", kind="multiprocessing", result="completed"),
            exporting.value("process_active", kind="multiprocessing"),
        )


@pytest.mark.parametrize("method", ["fork", "forkserver"])
class TestEndings:
    """A non-zero exit and a kill are errors; process_active returns to 0 either way."""

    def test_exit_code(self, method: str, exporting: Harness) -> None:
        process = _context(method).Process(target=_targets.exit_with, args=(3,))
        process.start()
        process.join(60)
        span = exporting.span("_targets.exit_with", status="error")
        assert (3, "3") == (_attrs(span)["process.exit.code"], _attrs(span)["error.type"])
        assert 1 == exporting.value(
            "process_terminated_total", kind="multiprocessing", result="error"
        )
        assert 0 == exporting.value("process_active", kind="multiprocessing")

    def test_killed(self, method: str, exporting: Harness) -> None:
        process = _context(method).Process(target=_targets.sleep, args=(60,))
        process.start()
        assert 1 == exporting.value("process_active", kind="multiprocessing")
        process.kill()
        process.join(60)
        assert -signal.SIGKILL == process.exitcode
        assert "SIGKILL" == _attrs(exporting.span("_targets.sleep"))["error.type"]
        assert 0 == exporting.value("process_active", kind="multiprocessing")

    def test_is_alive_reaps_too(self, method: str, exporting: Harness) -> None:
        process = _context(method).Process(target=_targets.sleep, args=(0,))
        process.start()
        exporting.wait_until(lambda: not process.is_alive(), 60)
        assert 0 == exporting.value("process_active", kind="multiprocessing")
        process.join()


def _point_value(metric: Any, **labels: str) -> float | None:
    for point in metric.sum.data_points:
        have = {a.key: a.value.string_value for a in point.attributes}
        if have == labels:
            return float(point.as_int or point.as_double)
    return None


@pytest.mark.parametrize(("method", "commands"), [("spawn", 3), ("forkserver", 5)])
class TestChildMetrics:
    """A child that started its own telemetry pushes its metrics as it exits."""

    def test_pushed_at_exit(
        self, method: str, commands: int, exporting: Harness, receiver: OtlpReceiver
    ) -> None:
        process = _context(method).Process(target=_targets.spawn_commands, args=(commands,))
        process.start()
        process.join(60)
        assert 0 == process.exitcode

        def counted(metric: Any) -> bool:
            return commands == _point_value(metric, kind="subprocess")

        # the child's own push (this process pushes only when it stops)
        assert receiver.wait_for_metric("process_started_total", counted, timeout=20)


class TestStartFailure:
    """A start that raises is counted as an error and leaves nothing active."""

    def test_unpicklable_target_under_spawn(self, exporting: Harness) -> None:
        process = _context("spawn").Process(target=lambda: None)
        with pytest.raises(Exception, match="pickle"):
            process.start()
        span = exporting.span(kind="client", status="error")
        assert "error.type" in _attrs(span)
        assert (1, 1, 0) == (
            exporting.value("process_started_total", kind="multiprocessing"),
            exporting.value("process_terminated_total", kind="multiprocessing", result="error"),
            exporting.value("process_active", kind="multiprocessing"),
        )


MULTIPROCESS_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, subprocess, sys

    import limelight
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    def forked():  # runs the telemetry it inherited
        subprocess.run(["true"], check=True)
        subprocess.run(["false"])

    def spawned():  # starts its own
        limelight.start()
        subprocess.run(["true"], check=True)

    if __name__ == "__main__":
        limelight.start()
        subprocess.run(["true"], check=True)
        for method, target in (("fork", forked), ("spawn", spawned)):
            child = multiprocessing.get_context(method).Process(target=target)
            child.start()
            child.join(60)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        sys.stdout.write(generate_latest(registry).decode())
    """
)


class TestPrometheusMultiprocessMode:
    """Each process writes its own values; the parent's exposition sums its children's."""

    def test_children_are_summed(self, tmp_path: Path) -> None:
        script = tmp_path / "service.py"
        script.write_text(MULTIPROCESS_SCRIPT)
        values = tmp_path / "prometheus"
        values.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIMELIGHT_"))},
            "PROMETHEUS_MULTIPROC_DIR": str(values),
            "LIMELIGHT_PLUGINS": "prometheus,process",
        }
        out = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        samples = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in out.splitlines()
            if line.startswith("process_") and "_bucket" not in line
        }
        # the parent's spawn, the forked child's two, the spawned child's one
        assert 4 == samples['process_started_total{kind="subprocess"}']
        assert 3 == samples['process_terminated_total{kind="subprocess",result="completed"}']
        assert 1 == samples['process_terminated_total{kind="subprocess",result="error"}']
        assert 2 == samples['process_terminated_total{kind="multiprocessing",result="completed"}']
        assert 0 == samples['process_active{kind="subprocess"}']
