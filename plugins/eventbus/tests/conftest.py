"""Fixtures: every test leaves blinker and pyee exactly as it found them."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import limelight_eventbus
import pytest

SUBSCRIBERS = "eventbus_subscribers_active"
REJECTED = "eventbus_rejected_total"


@pytest.fixture(autouse=True)
def _uninstrumented_after() -> Iterator[None]:
    yield
    limelight_eventbus.uninstrument()


@contextlib.contextmanager
def bare(*libraries: str) -> Iterator[None]:
    """The libraries uninstrumented inside the block, instrumented again after it."""
    was = [name for name in libraries if limelight_eventbus.is_instrumented(name)]
    limelight_eventbus.uninstrument(*libraries)
    try:
        yield
    finally:
        limelight_eventbus.instrument(*was)


def collect() -> None:
    """Run the garbage collector until nothing more is freed (weak references cleared)."""
    while gc.collect():
        pass
