"""What the child processes of the multiprocessing tests run (importable by spawned children)."""

from __future__ import annotations

import logging

import limelight


def start() -> None:
    """A pool initializer: the worker's own telemetry (the inherited one under fork)."""
    limelight.start()


def log_line(path: str, message: str) -> int:
    """Start telemetry (the inherited one under fork), then log *message* to the file *path*."""
    limelight.start()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(message)s %(trace_id)s %(span_id)s"))
    log = logging.getLogger("child")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info(message)
    finally:
        log.removeHandler(handler)
        handler.close()
    return 0
