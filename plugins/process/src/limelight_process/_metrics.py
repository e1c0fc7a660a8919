"""The metrics of the process surface (the catalog in the design)."""

from __future__ import annotations

from limelight_hookspecs import MetricDeclaration, MetricKind

__all__ = [
    "ALL_METRICS",
    "COMPLETED",
    "ERROR",
    "KINDS",
    "MULTIPROCESSING",
    "POOL_TASK",
    "PROCESS_ACTIVE",
    "PROCESS_BUCKETS",
    "PROCESS_DURATION",
    "PROCESS_STARTED",
    "PROCESS_TERMINATED",
    "RESULTS",
    "SUBPROCESS",
]

SUBPROCESS = "subprocess"
"""``kind`` of a child started through ``subprocess.Popen`` (``run``, ``call``,
``check_output``, asyncio's subprocesses)."""
MULTIPROCESSING = "multiprocessing"
"""``kind`` of a ``multiprocessing.Process`` started by the application."""
POOL_TASK = "pool_task"
"""``kind`` of a task handed to a ``ProcessPoolExecutor`` or a ``multiprocessing.Pool``."""
KINDS: tuple[str, ...] = (SUBPROCESS, MULTIPROCESSING, POOL_TASK)

COMPLETED = "completed"
"""``result`` of a process that exited with code 0, or a task that returned."""
ERROR = "error"
"""``result`` of a non-zero exit code, a signal, a spawn that failed, a task that raised
(or was cancelled)."""
RESULTS: tuple[str, ...] = (COMPLETED, ERROR)

PROCESS_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
"""Bucket bounds of ``process_duration_seconds`` (seconds).

A short command or a small pool task takes milliseconds, a batch step
minutes: the Prometheus defaults (up to 10 s) are extended to ten minutes.
"""

PROCESS_STARTED = MetricDeclaration(
    "process_started_total",
    MetricKind.COUNTER,
    "Child processes started and pool tasks submitted, by kind (subprocess, "
    "multiprocessing, pool_task); a spawn that failed counts too.",
    unit="1",
    label_names=("kind",),
)
PROCESS_TERMINATED = MetricDeclaration(
    "process_terminated_total",
    MetricKind.COUNTER,
    "Child processes reaped and pool tasks finished, by kind and result (completed; "
    "error for a non-zero exit code, a signal, a failed spawn, a task that raised).",
    unit="1",
    label_names=("kind", "result"),
)
PROCESS_ACTIVE = MetricDeclaration(
    "process_active",
    MetricKind.GAUGE_ADD,
    "Child processes started and not reaped yet, and pool tasks submitted and not "
    "finished, by kind.",
    unit="1",
    label_names=("kind",),
)
PROCESS_DURATION = MetricDeclaration(
    "process_duration_seconds",
    MetricKind.HISTOGRAM,
    "Seconds from the spawn of a child process to its reaping (from the submit of a "
    "pool task to its result), by kind and result.",
    unit="s",
    label_names=("kind", "result"),
    buckets=PROCESS_BUCKETS,
)

ALL_METRICS = (PROCESS_STARTED, PROCESS_TERMINATED, PROCESS_ACTIVE, PROCESS_DURATION)
"""Every metric the plugin declares, in catalog order."""
