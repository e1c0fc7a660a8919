"""Multiprocess servers (gunicorn and friends): cleaning up after a dead worker."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess

__all__ = ["child_exit", "mark_process_dead"]


def mark_process_dead(pid: int) -> None:
    """Forget the live gauges of a dead worker process.

    In multiprocess mode additive gauges (in-flight requests, active
    workers) sum the *live* processes; a worker that died mid-request would
    otherwise keep its in-flight count forever. Does nothing outside
    multiprocess mode.

    :param pid: the dead process's id.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` server hook; in ``gunicorn.conf.py``::

    from limelight_prometheus import child_exit
    """
    mark_process_dead(worker.pid)
