"""Fixtures: instrumentation reset per test, a real OTLP receiver, exporting telemetry."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import limelight_process
import pytest
from limelight_testsupport.otlp import OtlpReceiver, otlp_receiver

from limelight.testing import Harness

# the children of these tests import their targets from here (spawn and forkserver
# children get the parent's sys.path)
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def global_state() -> Iterator[None]:
    """Every test starts with nothing instrumented and leaves nothing instrumented.

    Autouse fixtures set up before the ``telemetry`` fixture, so what is
    installed during a test was installed by the plugin's start or by the test.
    """
    limelight_process.uninstrument()
    yield
    limelight_process.uninstrument()


@pytest.fixture(scope="session")
def receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/HTTP receiver (oteltap) for the whole session."""
    with otlp_receiver() as running:
        yield running


CHILD_ENV = {
    "LIMELIGHT_PLUGINS": "otlp,process",
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    "OTEL_SERVICE_NAME": "process-tests-child",
}


@pytest.fixture
def exporting(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """A started telemetry with the process plugin exporting over OTLP to *receiver*,
    and the same settings in this process's environment for children that start their own
    (spawn, forkserver)."""
    env = {**CHILD_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TRACEPARENT", raising=False)
    with Harness(entry_points=True, env={**env, "OTEL_SERVICE_NAME": "process-tests"}) as harness:
        yield harness


Received = Callable[[Callable[[Any], bool], int], list[Any]]
"""``received(predicate, count)``: the spans at the receiver matching *predicate*, once
there are *count* of them (or 20 seconds passed)."""


@pytest.fixture
def received(receiver: OtlpReceiver) -> Received:
    """Wait for spans at the session's receiver (see :data:`Received`)."""

    def wait(predicate: Callable[[Any], bool], count: int) -> list[Any]:
        deadline = time.monotonic() + 20.0
        while True:
            found = [s for s in receiver.spans() if predicate(s)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    return wait
