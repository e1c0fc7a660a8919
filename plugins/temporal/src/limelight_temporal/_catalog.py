"""The Temporal SDK's own metrics as the store knows them, and how a buffered metric is named.

Temporal's core records its metrics with its own names (``temporal_request``,
``temporal_activity_execution_latency``) and attribute sets that vary by call
site: a client-side ``temporal_request`` has no ``task_queue``, a worker's has.
In the store each metric has one fixed set of labels, so every metric known in
advance is declared here with the union of its attributes (a missing one is
exported empty, which Prometheus reads as absent), and durations with the
histogram buckets Temporal's core uses, converted to seconds.

Names follow Prometheus conventions: counters end in ``_total`` and durations in
``_seconds`` (what Temporal's own Prometheus exporter writes with
``counters_total_suffix`` and ``unit_suffix``), the ``temporal_`` prefix kept.
"""

from __future__ import annotations

import re

from limelight_hookspecs import MetricDeclaration, MetricKind, prometheus_unit

__all__ = [
    "ACTIVITY_EXECUTION_BUCKETS",
    "DEFAULT_DURATION_BUCKETS",
    "SDK_METRICS",
    "TASK_SCHEDULE_TO_START_BUCKETS",
    "WORKFLOW_LATENCY_BUCKETS",
    "WORKFLOW_TASK_BUCKETS",
    "label_name",
    "store_name",
]

# Temporal core's histogram buckets (defined in milliseconds there), in seconds
WORKFLOW_LATENCY_BUCKETS: tuple[float, ...] = (
    0.1, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0, 30600.0, 86400.0,
)  # fmt: skip
"""``temporal_workflow_endtoend_latency``: from 100 ms to a day."""
WORKFLOW_TASK_BUCKETS: tuple[float, ...] = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Workflow task execution and replay: 1 ms to 1 s."""
ACTIVITY_EXECUTION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0)
"""``temporal_activity_execution_latency``: 50 ms to a minute."""
TASK_SCHEDULE_TO_START_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0, 10.0, 100.0, 1000.0)
"""Workflow and activity task schedule-to-start: 100 ms to 1000 s."""
DEFAULT_DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.5, 1.0, 2.5, 10.0)
"""Every other duration Temporal's core records (request latencies among them)."""

_REQUEST = ("namespace", "operation", "service_name", "task_queue")
_QUEUE = ("namespace", "service_name", "task_queue")
_WORKFLOW = ("namespace", "service_name", "task_queue", "workflow_type")
_ACTIVITY = ("activity_type", "namespace", "service_name", "task_queue", "workflow_type")

C, G, H = MetricKind.COUNTER, MetricKind.GAUGE_SET, MetricKind.HISTOGRAM


def _m(
    name: str,
    kind: MetricKind,
    help: str,
    labels: tuple[str, ...],
    buckets: tuple[float, ...] | None = None,
) -> MetricDeclaration:
    if kind is C:
        return MetricDeclaration(name + "_total", kind, help, unit="1", label_names=labels)
    if kind is H:
        return MetricDeclaration(
            name + "_seconds", kind, help, unit="s", label_names=labels, buckets=buckets
        )
    return MetricDeclaration(name, kind, help, unit="1", label_names=labels)


SDK_METRICS: tuple[MetricDeclaration, ...] = (
    # client and worker requests to the Temporal service
    _m("temporal_request", C, "Requests to the Temporal service, by operation.", _REQUEST),
    _m(
        "temporal_request_failure",
        C,
        "Failed requests to the Temporal service, by operation and gRPC status code.",
        (*_REQUEST, "status_code"),
    ),
    _m(
        "temporal_request_latency",
        H,
        "Duration of requests to the Temporal service in seconds.",
        _REQUEST,
        DEFAULT_DURATION_BUCKETS,
    ),
    _m("temporal_long_request", C, "Long-poll requests to the Temporal service.", _REQUEST),
    _m(
        "temporal_long_request_failure",
        C,
        "Failed long-poll requests to the Temporal service, by gRPC status code.",
        (*_REQUEST, "status_code"),
    ),
    _m(
        "temporal_long_request_latency",
        H,
        "Duration of long-poll requests to the Temporal service in seconds.",
        _REQUEST,
        DEFAULT_DURATION_BUCKETS,
    ),
    # workers
    _m("temporal_worker_start", C, "Workers started.", _QUEUE),
    _m(
        "temporal_num_pollers",
        G,
        "Pollers currently polling the task queue, by poller type.",
        (*_QUEUE, "poller_type"),
    ),
    _m(
        "temporal_worker_task_slots_available",
        G,
        "Task slots free to take work, by worker type.",
        (*_QUEUE, "worker_type"),
    ),
    _m(
        "temporal_worker_task_slots_used",
        G,
        "Task slots in use, by worker type.",
        (*_QUEUE, "worker_type"),
    ),
    _m("temporal_sticky_cache_size", G, "Workflows held in the worker's cache.", _QUEUE),
    _m("temporal_sticky_cache_hit", C, "Workflow tasks served from the cache.", _WORKFLOW),
    _m("temporal_sticky_cache_miss", C, "Workflow tasks that missed the cache.", _WORKFLOW),
    _m(
        "temporal_sticky_cache_total_forced_eviction",
        C,
        "Workflows evicted from the cache to make room.",
        _WORKFLOW,
    ),
    # workflows
    _m("temporal_workflow_completed", C, "Workflows completed successfully.", _WORKFLOW),
    _m("temporal_workflow_failed", C, "Workflows that failed.", _WORKFLOW),
    _m("temporal_workflow_canceled", C, "Workflows cancelled.", _WORKFLOW),
    _m("temporal_workflow_continue_as_new", C, "Workflows continued as new.", _WORKFLOW),
    _m(
        "temporal_workflow_endtoend_latency",
        H,
        "Duration of workflows from start to completion in seconds.",
        _WORKFLOW,
        WORKFLOW_LATENCY_BUCKETS,
    ),
    _m(
        "temporal_workflow_task_queue_poll_succeed",
        C,
        "Workflow task polls that returned a task.",
        _QUEUE,
    ),
    _m(
        "temporal_workflow_task_queue_poll_empty",
        C,
        "Workflow task polls that returned no task.",
        _QUEUE,
    ),
    _m(
        "temporal_workflow_task_execution_failed",
        C,
        "Workflow tasks that failed, by failure reason.",
        (*_WORKFLOW, "failure_reason"),
    ),
    _m(
        "temporal_workflow_task_schedule_to_start_latency",
        H,
        "Time workflow tasks waited in the task queue in seconds.",
        _QUEUE,
        TASK_SCHEDULE_TO_START_BUCKETS,
    ),
    _m(
        "temporal_workflow_task_execution_latency",
        H,
        "Duration of workflow task execution in seconds.",
        _WORKFLOW,
        WORKFLOW_TASK_BUCKETS,
    ),
    _m(
        "temporal_workflow_task_replay_latency",
        H,
        "Duration of workflow task replay in seconds.",
        _WORKFLOW,
        WORKFLOW_TASK_BUCKETS,
    ),
    # activities
    _m(
        "temporal_activity_poll_no_task",
        C,
        "Activity task polls that returned no task.",
        _QUEUE,
    ),
    _m(
        "temporal_activity_task_received",
        C,
        "Activity tasks received, eager ones included.",
        (*_ACTIVITY, "eager"),
    ),
    _m(
        "temporal_activity_execution_failed",
        C,
        "Activity attempts that failed, by failure reason.",
        (*_ACTIVITY, "failure_reason"),
    ),
    _m("temporal_activity_execution_cancelled", C, "Activity attempts cancelled.", _ACTIVITY),
    _m(
        "temporal_activity_schedule_to_start_latency",
        H,
        "Time activity tasks waited in the task queue in seconds.",
        _QUEUE,
        TASK_SCHEDULE_TO_START_BUCKETS,
    ),
    _m(
        "temporal_activity_execution_latency",
        H,
        "Duration of activity attempts in seconds.",
        _ACTIVITY,
        ACTIVITY_EXECUTION_BUCKETS,
    ),
    _m(
        "temporal_activity_succeed_endtoend_latency",
        H,
        "Duration of successful activities from schedule to completion in seconds.",
        _ACTIVITY,
        DEFAULT_DURATION_BUCKETS,
    ),
    _m("temporal_local_activity_total", C, "Local activities run.", _ACTIVITY),
    _m(
        "temporal_local_activity_execution_failed",
        C,
        "Local activity attempts that failed.",
        _ACTIVITY,
    ),
    _m(
        "temporal_local_activity_execution_cancelled",
        C,
        "Local activity attempts cancelled.",
        _ACTIVITY,
    ),
    _m(
        "temporal_local_activity_execution_latency",
        H,
        "Duration of local activity attempts in seconds.",
        _ACTIVITY,
        DEFAULT_DURATION_BUCKETS,
    ),
    _m(
        "temporal_local_activity_succeeded_endtoend_latency",
        H,
        "Duration of successful local activities from schedule to completion in seconds.",
        _ACTIVITY,
        DEFAULT_DURATION_BUCKETS,
    ),
)
"""The SDK metrics declared at start, so ``limelight catalog`` lists them; others (a
newer SDK's, custom ``metric_meter()`` ones) are declared when first seen."""

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def store_name(name: str, kind: MetricKind, seconds: bool, unit: str = "") -> str:
    """The store name of a buffered metric: characters Prometheus refuses as ``_``,
    ``_total`` after a counter, ``_seconds`` after a duration in seconds, and the
    Prometheus name of any other *unit* (``_bytes`` for ``By``) before ``_total``, as
    a declaration with that unit must be named."""
    name = _INVALID.sub("_", name) or "_"
    if name[0].isdigit():
        name = "_" + name
    counter = kind is MetricKind.COUNTER
    base = name.removesuffix("_total") if counter else name
    suffix = "seconds" if seconds and kind is MetricKind.HISTOGRAM else prometheus_unit(unit)
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    return base + "_total" if counter else base


def label_name(key: str) -> str | None:
    """The label name of an attribute key, ``None`` when it cannot be one (``le``,
    ``__name__``-like keys)."""
    label = _INVALID_LABEL.sub("_", key)
    if not label or label.startswith("__") or label in {"le", "quantile"}:
        return None
    return "_" + label if label[0].isdigit() else label
