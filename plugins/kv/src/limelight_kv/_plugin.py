"""The kv plugin: declares the key-value metrics and the variables it reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight.surface import LIMELIGHT_AUTO_INSTRUMENT
from limelight_hookspecs import (
    Config,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    TelemetryView,
    hookimpl,
    parse_bool,
)

__all__ = [
    "KV_BUCKETS",
    "KV_OPS",
    "KV_OP_DURATION",
    "LIMELIGHT_KV_SPANS",
    "KvPlugin",
    "plugin",
]

KV_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Bucket bounds of ``kv_op_duration_seconds`` (seconds).

A cache round trip on a local network takes a fraction of a millisecond, so
the buckets start at 100 µs instead of the Prometheus default 5 ms (where
every healthy operation would land in the first bucket).
"""

KV_OPS = MetricDeclaration(
    "kv_ops_total",
    MetricKind.COUNTER,
    "Key-value operations, by namespace, operation and result (ok, not_found, error).",
    unit="1",
    label_names=("namespace", "op", "result"),
)
KV_OP_DURATION = MetricDeclaration(
    "kv_op_duration_seconds",
    MetricKind.HISTOGRAM,
    "Duration of key-value operations in seconds, by namespace, operation and result.",
    unit="s",
    label_names=("namespace", "op", "result"),
    buckets=KV_BUCKETS,
)

LIMELIGHT_KV_SPANS = EnvVar(
    "LIMELIGHT_KV_SPANS",
    False,
    parse_bool,
    "Create a CLIENT span for every key-value operation (db.system.name, db.operation.name; "
    "never key values). Off by default: a cache layer floods traces. A client instrumented "
    "with spans=True or spans=False ignores this variable.",
    "true",
)


class KvPlugin:
    """Declares ``kv_ops_total`` and ``kv_op_duration_seconds``.

    Instrumented clients (:func:`~limelight_kv.instrument_redis`,
    :class:`~limelight_kv.MemoryStore`) record into these metrics while this
    plugin is loaded; without it they pass every call straight through.
    """

    limelight_name = "kv"
    limelight_priority = 220

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return (KV_OPS, KV_OP_DURATION)

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (LIMELIGHT_KV_SPANS,)

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        # limelight run (LIMELIGHT_AUTO_INSTRUMENT): each client library when the application
        # imports it, never imported for nothing
        if telemetry.config.get(LIMELIGHT_AUTO_INSTRUMENT):
            from ._instrumentation import instrumentation

            instrumentation.instrument_on_import()


plugin = KvPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
