"""The public API per audience: each tier's names are pinned, old names still resolve."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import limelight
from limelight import semconv

TIERS: dict[str, list[str]] = {
    "limelight": [
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
    ],
    "limelight.metrics": [
        "DEFAULT_BUCKETS",
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
    ],
    "limelight.propagation": [
        "FLAG_RANDOM_TRACE_ID",
        "FLAG_SAMPLED",
        "TRACEPARENT",
        "TRACESTATE",
        "EnvironmentGetter",
        "EnvironmentSetter",
        "HeaderGetter",
        "W3CTraceContextPropagator",
        "build_propagator",
        "environ_variables",
        "extract_environ",
        "extract_headers",
        "format_traceparent",
        "header_getter",
        "inject_environ",
        "inject_span",
        "known_propagators",
        "parse_traceparent",
        "parse_tracestate",
        "unpack_span_context",
    ],
    "limelight.export": [
        "Exemplar",
        "ExportHealth",
        "ExportWorker",
        "HistogramPoint",
        "LogRecordExportResult",
        "LogRecordExporter",
        "LogRecordProcessor",
        "MetricFamily",
        "MetricsSnapshot",
        "NumberPoint",
        "ReadableLogRecord",
        "SelfMetrics",
        "SnapshotSource",
        "StoreReader",
        "TelemetryView",
        "otlp_log_exporter_class",
        "restricted_metric",
        "suppressed",
    ],
    "limelight.http": ["DEFAULT_KNOWN_METHODS", "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"],
    "limelight.surface": [
        "LIMELIGHT_AUTO_INSTRUMENT",
        "SUPPRESS_HTTP_INSTRUMENTATION_KEY",
        "SUPPRESS_INSTRUMENTATION_KEY",
        "Instrumentation",
        "Instrumentor",
        "LogEmitter",
        "Patches",
        "SpanRole",
        "TelemetryBinding",
        "current_context",
        "current_span",
        "error_type",
        "report_failure",
        "span_in",
        "start_span_with_id",
        "with_span",
    ],
    "limelight.plugins": [
        "PluginError",
        "PluginFailure",
        "PluginInfo",
        "PluginManager",
        "discover",
        "get_logger",
        "lazy_exports",
    ],
    "limelight.testing": ["Harness", "SpanCapturePlugin"],
}


@pytest.mark.parametrize("tier", list(TIERS))
def test_each_tier_exports_exactly_its_names(tier: str) -> None:
    module = importlib.import_module(tier)
    assert TIERS[tier] == list(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), f"{tier}.__all__ names {name}, which it does not define"


def test_the_application_tier_lists_only_what_an_application_calls() -> None:
    assert sorted(TIERS["limelight"]) == dir(limelight)


@pytest.mark.parametrize(
    ("name", "tier"),
    sorted(limelight._MOVED.items()),
)
def test_a_moved_name_still_resolves_with_a_deprecation_warning(name: str, tier: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"import it from limelight.{tier}"):
        value = getattr(limelight, name)
    assert getattr(importlib.import_module(f"limelight.{tier}"), name) is value


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        limelight.nosuch  # noqa: B018


def test_the_tiers_import_without_warnings() -> None:
    script = "; ".join(f"import {tier}" for tier in TIERS)
    subprocess.run([sys.executable, "-W", "error", "-c", script], check=True)


def _package_value(name: str) -> str | None:
    """The value the semantic-conventions package gives *name*: its stable
    attributes first, then its incubating ones."""
    stable = importlib.import_module("opentelemetry.semconv.attributes")
    incubating = importlib.import_module("opentelemetry.semconv._incubating.attributes")
    prefix = name.split("_", 1)[0].lower()
    prefix = {"user": "user_agent"}.get(prefix, prefix)
    for package in (stable, incubating):
        try:
            module = importlib.import_module(f"{package.__name__}.{prefix}_attributes")
        except ImportError:
            continue
        value = getattr(module, name, None)
        if value is not None:
            return str(value)
    return None


@pytest.mark.parametrize("name", semconv.__all__)
def test_each_semconv_constant_is_the_conventions_name(name: str) -> None:
    expected = _package_value(name)
    assert expected is not None, f"opentelemetry-semantic-conventions has no {name}"
    assert expected == getattr(semconv, name)
