"""limelight: OpenTelemetry tracing and one metric store for Python services.

Start telemetry once, early in the process::

    import limelight

    limelight.start(service_name="checkout")

    @limelight.instrument
    def charge(order): ...

Surfaces (HTTP server and client, queues, SQL, KV, ...) and exporters
(Prometheus, OTLP, console) are plugins, discovered through the
``limelight.plugins`` entry-point group.
"""

from __future__ import annotations

from limelight_hookspecs import (
    Config,
    ConfigProblem,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    SpanRole,
    hookimpl,
)

from ._config import load_config
from ._context import current_context, current_span
from ._env import DEFAULT_KNOWN_METHODS, OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS
from ._export import ExportHealth, ExportWorker, suppressed
from ._failures import report_failure
from ._function import instrument
from ._plugins import PluginError, PluginFailure, PluginInfo, PluginManager, discover
from ._propagation import inject_span
from ._spans import error_type
from ._store import (
    OVERFLOW_LABEL_VALUE,
    BoundCounter,
    BoundGaugeAdd,
    BoundGaugeSet,
    BoundHistogram,
    Counter,
    GaugeAdd,
    GaugeSet,
    Histogram,
    Metric,
    MetricConflictError,
    MetricStore,
)
from ._telemetry import Telemetry, TelemetryBinding, current, start, stop
from ._w3c import (
    HeaderGetter,
    W3CTraceContextPropagator,
    format_traceparent,
    header_getter,
    parse_traceparent,
)

__all__ = [
    "DEFAULT_KNOWN_METHODS",
    "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
    "OVERFLOW_LABEL_VALUE",
    "BoundCounter",
    "BoundGaugeAdd",
    "BoundGaugeSet",
    "BoundHistogram",
    "Config",
    "ConfigProblem",
    "Counter",
    "EnvVar",
    "ExportHealth",
    "ExportWorker",
    "GaugeAdd",
    "GaugeSet",
    "HeaderGetter",
    "Histogram",
    "Metric",
    "MetricConflictError",
    "MetricDeclaration",
    "MetricKind",
    "MetricStore",
    "PluginError",
    "PluginFailure",
    "PluginInfo",
    "PluginManager",
    "SpanRole",
    "Telemetry",
    "TelemetryBinding",
    "W3CTraceContextPropagator",
    "current",
    "current_context",
    "current_span",
    "discover",
    "error_type",
    "format_traceparent",
    "header_getter",
    "hookimpl",
    "inject_span",
    "instrument",
    "load_config",
    "parse_traceparent",
    "report_failure",
    "start",
    "stop",
    "suppressed",
]
