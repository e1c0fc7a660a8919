"""limelight-temporal: Temporal traced through the global propagator, and the SDK's own
metrics in limelight's metric store.

Tracing: :class:`TracingInterceptor` on a client (workers inherit it) makes spans
for client calls, workflow runs and activity attempts, the context carried in
Temporal headers by the configured propagator. With the plugin loaded, every
client created after telemetry starts gets it (``LIMELIGHT_TEMPORAL_INSTRUMENT``).

Metrics: connect on the runtime :func:`runtime` returns, and the SDK's metrics
(``temporal_request_total``, ``temporal_activity_execution_latency_seconds``,
``temporal_worker_task_slots_available``, custom ``metric_meter()`` ones) are
drained into the store, read by every exporter::

    import limelight
    import limelight_temporal
    from temporalio.client import Client

    limelight.start(service_name="orders")
    client = await Client.connect("localhost:7233", runtime=limelight_temporal.runtime())

See ``docs/plugins/temporal.md``. The Temporal SDK is imported on first use of a
name that needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._catalog import (
        ACTIVITY_EXECUTION_BUCKETS,
        DEFAULT_DURATION_BUCKETS,
        SDK_METRICS,
        TASK_SCHEDULE_TO_START_BUCKETS,
        WORKFLOW_LATENCY_BUCKETS,
        WORKFLOW_TASK_BUCKETS,
    )
    from ._env import (
        LIMELIGHT_TEMPORAL_INSTRUMENT,
        LIMELIGHT_TEMPORAL_METRIC_LIMIT,
        LIMELIGHT_TEMPORAL_METRICS_INTERVAL,
        VARIABLES,
    )
    from ._instrument import instrument, is_instrumented, uninstrument
    from ._metrics import DEFAULT_BUFFER_SIZE, MetricsBridge, bridge, new_runtime, runtime
    from ._plugin import METRIC_UPDATES_DROPPED, PLUGIN_METRICS, TemporalPlugin, plugin
    from ._tracing import (
        HEADER_KEY,
        TRACER_NAME,
        TracingInterceptor,
        TracingSetupError,
        temporal_error_type,
    )

__all__ = [
    "ACTIVITY_EXECUTION_BUCKETS",
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_DURATION_BUCKETS",
    "HEADER_KEY",
    "LIMELIGHT_TEMPORAL_INSTRUMENT",
    "LIMELIGHT_TEMPORAL_METRICS_INTERVAL",
    "LIMELIGHT_TEMPORAL_METRIC_LIMIT",
    "METRIC_UPDATES_DROPPED",
    "PLUGIN_METRICS",
    "SDK_METRICS",
    "TASK_SCHEDULE_TO_START_BUCKETS",
    "TRACER_NAME",
    "VARIABLES",
    "WORKFLOW_LATENCY_BUCKETS",
    "WORKFLOW_TASK_BUCKETS",
    "MetricsBridge",
    "TemporalPlugin",
    "TracingInterceptor",
    "TracingSetupError",
    "bridge",
    "instrument",
    "is_instrumented",
    "new_runtime",
    "plugin",
    "runtime",
    "temporal_error_type",
    "uninstrument",
]

_LAZY = {
    "ACTIVITY_EXECUTION_BUCKETS": "_catalog",
    "DEFAULT_DURATION_BUCKETS": "_catalog",
    "SDK_METRICS": "_catalog",
    "TASK_SCHEDULE_TO_START_BUCKETS": "_catalog",
    "WORKFLOW_LATENCY_BUCKETS": "_catalog",
    "WORKFLOW_TASK_BUCKETS": "_catalog",
    "LIMELIGHT_TEMPORAL_INSTRUMENT": "_env",
    "LIMELIGHT_TEMPORAL_METRIC_LIMIT": "_env",
    "LIMELIGHT_TEMPORAL_METRICS_INTERVAL": "_env",
    "VARIABLES": "_env",
    "instrument": "_instrument",
    "is_instrumented": "_instrument",
    "uninstrument": "_instrument",
    "METRIC_UPDATES_DROPPED": "_plugin",
    "PLUGIN_METRICS": "_plugin",
    "TemporalPlugin": "_plugin",
    "plugin": "_plugin",
    "DEFAULT_BUFFER_SIZE": "_metrics",
    "MetricsBridge": "_metrics",
    "bridge": "_metrics",
    "new_runtime": "_metrics",
    "runtime": "_metrics",
    "HEADER_KEY": "_tracing",
    "TRACER_NAME": "_tracing",
    "TracingInterceptor": "_tracing",
    "TracingSetupError": "_tracing",
    "temporal_error_type": "_tracing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
