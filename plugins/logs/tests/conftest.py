"""Fixtures: logging and structlog as they were before each test, telemetry with the logs plugin."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import limelight_logs
import pytest
import structlog

from limelight.testing import Harness

# spawned children import their targets from here
sys.path.insert(0, str(Path(__file__).parent))


class Lines(logging.Handler):
    """A handler keeping every line it formats (what a file or stderr would get)."""

    def __init__(self, fmt: str = "%(message)s", level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter(fmt))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def pristine() -> Iterator[None]:
    """Every test starts with nothing instrumented, structlog unconfigured and the root
    logger's handlers, level and filters as they were; it leaves them so."""
    limelight_logs.uninstrument()
    structlog.reset_defaults()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, list(root.filters))
    yield
    limelight_logs.uninstrument()
    structlog.reset_defaults()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    root.filters[:] = saved[2]


@pytest.fixture
def logs_telemetry() -> Iterator[Harness]:
    """A started telemetry with the logs plugin (which instruments logging and structlog)."""
    with Harness(plugins=[limelight_logs.plugin]) as harness:
        yield harness
