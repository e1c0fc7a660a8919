"""What the child processes of these tests run (importable by spawned children)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from opentelemetry import baggage

import limelight


def make_span(name: str) -> None:
    """Start telemetry (the inherited one under fork) and make one span."""
    telemetry = limelight.start()
    with telemetry.tracer("child").start_as_current_span(name) as span:
        span.set_attribute("child.pid", os.getpid())
        tenant = baggage.get_baggage("tenant")
        if tenant is not None:
            span.set_attribute("child.tenant", str(tenant))


def start_telemetry() -> None:
    """A pool initializer: the worker's telemetry, from its environment."""
    limelight.start()


def square(x: int) -> int:
    """A pool task that makes a span of its own inside the task's."""
    with limelight.current().tracer("task").start_as_current_span("square.inner"):
        return x * x


def pid_of(_: object) -> int:
    return os.getpid()


def fail(x: int) -> int:
    raise ValueError(f"task {x} failed")


def exit_with(code: int) -> None:
    sys.exit(code)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def spawn_commands(n: int) -> None:
    """Start telemetry and spawn *n* commands: counted in this process's own store."""
    limelight.start()
    for _ in range(n):
        subprocess.run(["true"], check=True)
