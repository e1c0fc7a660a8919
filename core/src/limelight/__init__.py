"""limelight: OpenTelemetry tracing and one metric store for Python services.

Start telemetry once, early in the process::

    import limelight

    limelight.start(service_name="checkout")

    @limelight.instrument
    def charge(order): ...

Surfaces (HTTP server and client, queues, SQL, KV, ...) and exporters
(Prometheus, OTLP, console) are plugins, discovered through the
``limelight.plugins`` entry-point group.

This module is the application's API. Plugin authors find theirs in the
public submodules: :mod:`limelight.surface` (what a surface needs),
:mod:`limelight.metrics` (the store and its instruments),
:mod:`limelight.propagation` (trace context across boundaries),
:mod:`limelight.export` (what an exporter needs), :mod:`limelight.http` (the
conventions the HTTP surfaces share), :mod:`limelight.semconv` (attribute
names), :mod:`limelight.plugins` (discovery), and tests
:mod:`limelight.testing`.

Importing this module imports nothing else: each name loads what it needs
when it is first used (``limelight.start`` the runtime and the OpenTelemetry
SDK, ``limelight.instrument`` only the function surface), so a process that
imports limelight pays for what it uses.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from . import _envguard  # noqa: F401  (first: OpenTelemetry variables read at import)

if TYPE_CHECKING:
    from limelight_hookspecs import Config, ConfigProblem, hookimpl

    from ._config import load_config
    from ._function import instrument
    from ._plugins import PluginError
    from ._telemetry import Telemetry, current, start, stop

__all__ = [
    "Config",
    "ConfigProblem",
    "PluginError",
    "Telemetry",
    "current",
    "hookimpl",
    "instrument",
    "load_config",
    "start",
    "stop",
]

_MOVED: dict[str, str] = {
    **dict.fromkeys(("DEFAULT_KNOWN_METHODS", "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"), "http"),
    **dict.fromkeys(
        (
            "OVERFLOW_LABEL_VALUE",
            "BoundCounter",
            "BoundGaugeAdd",
            "BoundGaugeSet",
            "BoundHistogram",
            "Counter",
            "GaugeAdd",
            "GaugeSet",
            "Histogram",
            "Metric",
            "MetricConflictError",
            "MetricDeclaration",
            "MetricKind",
            "MetricStore",
        ),
        "metrics",
    ),
    **dict.fromkeys(("ExportHealth", "ExportWorker", "suppressed"), "export"),
    **dict.fromkeys(
        (
            "HeaderGetter",
            "W3CTraceContextPropagator",
            "format_traceparent",
            "header_getter",
            "inject_span",
            "parse_traceparent",
        ),
        "propagation",
    ),
    **dict.fromkeys(("PluginFailure", "PluginInfo", "PluginManager", "discover"), "plugins"),
    **dict.fromkeys(
        (
            "SpanRole",
            "TelemetryBinding",
            "current_context",
            "current_span",
            "error_type",
            "report_failure",
        ),
        "surface",
    ),
}
"""Names this module exported before the public submodules existed, and where
they live now; they stay importable from here, with a DeprecationWarning, for
one release."""


_LAZY: dict[str, str] = {
    "Config": "limelight_hookspecs",
    "ConfigProblem": "limelight_hookspecs",
    "hookimpl": "limelight_hookspecs",
    "load_config": "limelight._config",
    "instrument": "limelight._function",
    "PluginError": "limelight._plugins",
    "Telemetry": "limelight._telemetry",
    "current": "limelight._telemetry",
    "start": "limelight._telemetry",
    "stop": "limelight._telemetry",
}
"""Each public name and the module it is loaded from on first use."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value
    tier = _MOVED.get(name)
    if tier is None:
        if name == "EnvVar":
            tier_module = importlib.import_module("limelight_hookspecs")
            warnings.warn(
                "limelight.EnvVar is deprecated; import it from limelight_hookspecs",
                DeprecationWarning,
                stacklevel=2,
            )
            return tier_module.EnvVar
        raise AttributeError(f"module 'limelight' has no attribute {name!r}")
    warnings.warn(
        f"limelight.{name} is deprecated; import it from limelight.{tier}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(f"limelight.{tier}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
