"""Multiprocess servers (gunicorn, uvicorn and friends): the live gauges of dead workers.

In multiprocess mode every process writes its values to files named after its
pid in ``PROMETHEUS_MULTIPROC_DIR``. Live gauges (``livesum``, limelight's
additive gauges: in-flight requests, active workers) sum only the processes
that still run, which prometheus_client learns from
``multiprocess.mark_process_dead(pid)``: a server has to call it when a worker
dies (gunicorn's ``child_exit`` hook). uvicorn, hypercorn and most process
managers have no such hook, so a worker killed mid-request would keep its
in-flight count for good.

:class:`LiveProcessCollector` therefore does it at collection time: before each
exposition it looks at the pids of the live-gauge files and calls
``mark_process_dead`` for each one whose process no longer runs (gone, or a
zombie its parent has not reaped yet). Counters and histograms of dead
processes are kept, so totals never go backwards.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from typing import Any

from prometheus_client import multiprocess
from prometheus_client.metrics_core import Metric

__all__ = [
    "LiveProcessCollector",
    "child_exit",
    "forget_dead_processes",
    "mark_process_dead",
    "process_running",
]

_LIVE_FILE = re.compile(r"^gauge_live[a-z]*_(\d+)\.db$")


def mark_process_dead(pid: int) -> None:
    """Forget the live gauges of a dead worker process.

    In multiprocess mode additive gauges (in-flight requests, active
    workers) sum the *live* processes; a worker that died mid-request would
    otherwise keep its in-flight count until the next exposition notices
    (see :func:`forget_dead_processes`). Does nothing outside multiprocess mode.

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


def process_running(pid: int) -> bool:
    """Whether process *pid* runs: it exists, in this pid namespace, and is not a
    zombie waiting for its parent to reap it."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (command) state ...": the command may hold spaces and parentheses
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs here (or it just went): os.kill said it exists
    return state not in (b"Z", b"X")


def forget_dead_processes(path: str) -> list[int]:
    """Mark every process with live-gauge files in *path* that no longer runs as dead.

    :return: the pids marked dead.
    """
    try:
        names = os.listdir(path)
    except OSError:
        return []
    own = os.getpid()
    pids = {int(m.group(1)) for m in map(_LIVE_FILE.match, names) if m is not None}
    dead = sorted(pid for pid in pids if pid != own and not process_running(pid))
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):  # another process forgot it first
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
    return dead


class LiveProcessCollector(multiprocess.MultiProcessCollector):
    """prometheus_client's multiprocess collector that forgets dead processes' live
    gauges before every collection (:func:`forget_dead_processes`).

    :param registry: where to register, as for ``MultiProcessCollector``.
    :param path: the multiprocess directory.
    """

    def __init__(self, registry: Any, path: str) -> None:
        super().__init__(registry, path)  # type: ignore[no-untyped-call]
        self._live_path = path

    def collect(self) -> Iterable[Metric]:
        forget_dead_processes(self._live_path)
        try:
            return list(super().collect())  # type: ignore[no-untyped-call]
        except FileNotFoundError:
            # another worker removed a dead process's file between listing and reading
            return list(super().collect())  # type: ignore[no-untyped-call]
