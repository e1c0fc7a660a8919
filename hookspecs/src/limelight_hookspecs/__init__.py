"""The limelight plugin contract.

Hook specifications (one module per concern: :mod:`.lifecycle`,
:mod:`.metrics`, :mod:`.spans`, :mod:`.logs`, :mod:`.interceptors`, :mod:`.config`), the
pluggy markers, and the value types that cross the plugin boundary. A plugin
depends on this distribution and on ``limelight`` (the core); it implements
hooks with :data:`hookimpl`::

    from limelight_hookspecs import MetricDeclaration, MetricKind, hookimpl

    limelight_priority = 200

    @hookimpl
    def limelight_metrics_declare(config):
        return [MetricDeclaration("jobs_total", MetricKind.COUNTER, "Jobs run.")]
"""

from __future__ import annotations

import typing

from . import config, interceptors, lifecycle, logs, metrics, spans
from ._config_types import BatchSettings, Config, OtlpSettings
from ._env import (
    MAX_DURATION_MILLIS,
    MAX_SIZE,
    ConfigProblem,
    EnvVar,
    RangedParser,
    Reading,
    member_problem,
    parse_bool,
    parse_float,
    parse_int,
    parse_key_values,
    parse_list,
    parse_millis,
    parse_otel_bool,
    parse_str,
    parse_url,
    split_key_values,
)
from ._interceptor_types import AttributeValue, CallHandler, FunctionTarget, Interceptor, SpanRole
from ._markers import DEFAULT_PRIORITY, ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl, hookspec
from ._metric_types import (
    DEFAULT_BUCKETS,
    Exemplar,
    HistogramPoint,
    MetricDeclaration,
    MetricFamily,
    MetricKind,
    MetricsSnapshot,
    NumberPoint,
    SnapshotSource,
    StoreReader,
    prometheus_unit,
)
from ._telemetry import SelfMetrics, TelemetryView

if typing.TYPE_CHECKING:
    from types import ModuleType

SPEC_MODULES: tuple[ModuleType, ...] = (lifecycle, metrics, spans, logs, interceptors, config)
"""Every module holding hook specifications, in documentation order."""

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_PRIORITY",
    "ENTRY_POINT_GROUP",
    "MAX_DURATION_MILLIS",
    "MAX_SIZE",
    "PROJECT_NAME",
    "SPEC_MODULES",
    "AttributeValue",
    "BatchSettings",
    "CallHandler",
    "Config",
    "ConfigProblem",
    "EnvVar",
    "Exemplar",
    "FunctionTarget",
    "HistogramPoint",
    "Interceptor",
    "MetricDeclaration",
    "MetricFamily",
    "MetricKind",
    "MetricsSnapshot",
    "NumberPoint",
    "OtlpSettings",
    "RangedParser",
    "Reading",
    "SelfMetrics",
    "SnapshotSource",
    "SpanRole",
    "StoreReader",
    "TelemetryView",
    "hookimpl",
    "hookspec",
    "member_problem",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_key_values",
    "parse_list",
    "parse_millis",
    "parse_otel_bool",
    "parse_str",
    "parse_url",
    "prometheus_unit",
    "split_key_values",
]
