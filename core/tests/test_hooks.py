"""One test per hook of the contract, named after it, proving what its specification says."""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler

import limelight
import limelight.plugins
from limelight.export import (
    LogRecordExporter,
    LogRecordExportResult,
    LogRecordProcessor,
    ReadableLogRecord,
)
from limelight.testing import Harness
from limelight_hookspecs import (
    PROJECT_NAME,
    SPEC_MODULES,
    CallHandler,
    Config,
    EnvVar,
    FunctionTarget,
    Interceptor,
    MetricDeclaration,
    MetricKind,
    StoreReader,
    TelemetryView,
    hookimpl,
    parse_int,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugin-authors.md"


def _hook_names() -> list[str]:
    return sorted(
        name
        for module in SPEC_MODULES
        for name, fn in vars(module).items()
        if getattr(fn, f"{PROJECT_NAME}_spec", None) is not None
    )


class _Lifecycle:
    limelight_name = "lifecycle"

    def __init__(self) -> None:
        self.calls: list[Any] = []

    @hookimpl
    def limelight_lifecycle_configure(self, config: Config) -> None:
        self.calls.append(("configure", config.service_name))

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        self.calls.append(("start", telemetry.tracer_provider is not None))

    @hookimpl
    def limelight_lifecycle_stop(self, telemetry: TelemetryView, timeout: float) -> None:
        # a plugin may still emit while stopping: the span processors close after the hooks
        telemetry.tracer_provider.get_tracer("stopping").start_span("goodbye").end()
        self.calls.append(("stop", timeout > 0))


class _Recorder(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


class _ExporterPlugin:
    limelight_name = "recorder"

    def __init__(self) -> None:
        self.exporter = _Recorder()

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        return [self.exporter]


class TestLifecycleHooks:
    """configure, start and stop."""

    def test_limelight_lifecycle_configure_receives_the_effective_config(self) -> None:
        plugin = _Lifecycle()
        with Harness(plugins=[plugin], service_name="billing"):
            assert ("configure", "billing") == plugin.calls[0]

    def test_limelight_lifecycle_configure_reaches_a_plugin_registered_late(self) -> None:
        with Harness() as harness:
            late = _Lifecycle()
            harness.telemetry.plugins.register(late)
            assert [("configure", "limelight-test")] == late.calls

    def test_limelight_lifecycle_start_runs_once_providers_exist(self) -> None:
        plugin = _Lifecycle()
        with Harness(plugins=[plugin]):
            assert ("start", True) == plugin.calls[1]

    def test_limelight_lifecycle_stop_runs_before_spans_are_flushed(self) -> None:
        plugin, exporter = _Lifecycle(), _ExporterPlugin()
        with Harness(plugins=[plugin, exporter]):
            pass
        assert ("stop", True) == plugin.calls[-1]
        assert ["goodbye"] == [s.name for s in exporter.exporter.spans]


class _Reader:
    def __init__(self, fail_start: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_start = fail_start

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_start:
            raise OSError("port in use")

    def force_flush(self, timeout: float) -> bool:
        self.calls.append("flush")
        return True

    def shutdown(self, timeout: float) -> None:
        self.calls.append("shutdown")


class _MetricsPlugin:
    def __init__(
        self,
        name: str,
        declarations: Sequence[MetricDeclaration] = (),
        reader: _Reader | None = None,
    ) -> None:
        self.limelight_name = name
        self.declarations = declarations
        self.reader = reader
        self.otel_reader = InMemoryMetricReader()

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return self.declarations

    @hookimpl
    def limelight_metrics_provide_readers(self, telemetry: TelemetryView) -> Sequence[StoreReader]:
        return [self.reader] if self.reader else []

    @hookimpl
    def limelight_metrics_provide_otel_readers(
        self, telemetry: TelemetryView
    ) -> Sequence[MetricReader]:
        return [self.otel_reader]


JOBS = MetricDeclaration("jobs_total", MetricKind.COUNTER, "Jobs.", label_names=("queue",))


class TestMetricHooks:
    """Declarations and readers."""

    def test_limelight_metrics_declare_puts_metrics_in_the_store(self) -> None:
        with Harness(plugins=[_MetricsPlugin("jobs", [JOBS])]) as harness:
            assert "jobs" == harness.store.get("jobs_total").declarer
            assert [] == harness.series("jobs_total")

    def test_limelight_metrics_declare_conflict_names_both_plugins(self) -> None:
        other = MetricDeclaration("jobs_total", MetricKind.GAUGE_SET, "Jobs.")
        plugins = [_MetricsPlugin("jobs", [JOBS]), _MetricsPlugin("rival", [other])]
        with Harness(plugins=plugins) as harness:
            [failure] = harness.telemetry.plugins.failures
            assert "rival" == failure.plugin
            assert "'rival'" in failure.error and "'jobs'" in failure.error
            assert MetricKind.COUNTER == harness.metric("jobs_total").kind

    def test_limelight_metrics_provide_readers_lifecycle(self) -> None:
        reader = _Reader()
        with Harness(plugins=[_MetricsPlugin("reader", reader=reader)]):
            assert ["start"] == reader.calls
        assert ["start", "flush", "shutdown"] == reader.calls

    def test_limelight_metrics_provide_readers_failure_is_isolated(self) -> None:
        broken, fine = _Reader(fail_start=True), _Reader()
        plugins = [_MetricsPlugin("broken", reader=broken), _MetricsPlugin("fine", reader=fine)]
        with Harness(plugins=plugins) as harness:
            assert ["broken"] == [f.plugin for f in harness.telemetry.plugins.failures]
            assert ["start"] == fine.calls

    def test_limelight_metrics_provide_otel_readers_see_api_instruments(self) -> None:
        plugin = _MetricsPlugin("otel")
        with Harness(plugins=[plugin]) as harness:
            meter = harness.telemetry.meter_provider.get_meter("lib")
            meter.create_counter("lib.requests").add(3)
            data = plugin.otel_reader.get_metrics_data()
            assert data is not None
            [metric] = data.resource_metrics[0].scope_metrics[0].metrics
            assert "lib.requests" == metric.name
            assert 3 == metric.data.data_points[0].value  # type: ignore[union-attr]


class _Processor(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span.name)


class _SpanPlugin:
    limelight_name = "spans"

    def __init__(self, sampler: Sampler | None = None) -> None:
        self.processor = _Processor()
        self.sampler = sampler

    @hookimpl
    def limelight_spans_provide_processors(
        self, telemetry: TelemetryView
    ) -> Sequence[SpanProcessor]:
        return [self.processor]

    @hookimpl
    def limelight_spans_provide_sampler(self, telemetry: TelemetryView) -> Sampler | None:
        return self.sampler


class _Enrich:
    limelight_name = "enrich"

    @hookimpl
    def limelight_spans_enrich(self, span: Span, parent_context: Context | None) -> None:
        span.set_attribute("tenant", "acme")


class TestSpanHooks:
    """Exporters, processors, sampler, enrichment."""

    def test_limelight_spans_provide_exporters_get_every_span_by_stop(self) -> None:
        plugin = _ExporterPlugin()
        with Harness(plugins=[plugin]) as harness:
            tracer = harness.telemetry.tracer("t")
            for i in range(3):
                tracer.start_span(f"s{i}").end()
        assert ["s0", "s1", "s2"] == [s.name for s in plugin.exporter.spans]

    def test_limelight_spans_provide_processors_see_spans_synchronously(self) -> None:
        plugin = _SpanPlugin()
        with Harness(plugins=[plugin]) as harness:
            harness.telemetry.tracer("t").start_span("now").end()
            assert ["now"] == plugin.processor.ended

    def test_limelight_spans_provide_sampler_wins_over_the_configuration(self) -> None:
        with Harness(plugins=[_SpanPlugin(ALWAYS_OFF)]) as harness:
            harness.telemetry.tracer("t").start_span("dropped").end()
            assert [] == harness.spans()

    def test_limelight_spans_provide_sampler_none_keeps_the_configuration(self) -> None:
        with Harness(plugins=[_SpanPlugin(None)]) as harness:
            harness.telemetry.tracer("t").start_span("kept").end()
            harness.span("kept")

    def test_limelight_spans_enrich_runs_on_every_span_start(self) -> None:
        with Harness(plugins=[_Enrich()]) as harness:
            harness.telemetry.tracer("t").start_span("s").end()
            assert "acme" == (harness.span("s").attributes or {})["tenant"]

    def test_limelight_spans_enrich_costs_nothing_when_unimplemented(
        self, telemetry: Harness
    ) -> None:
        provider = telemetry.telemetry.tracer_provider
        processors = provider.processors
        assert "OnStartProcessor" not in [type(p).__name__ for p in processors]


class _Tag(CallHandler):
    def __init__(self, target: FunctionTarget) -> None:
        self.name = target.name

    def exit(self, state: object, error: BaseException | None) -> None:
        _seen.append(self.name)


_seen: list[str] = []


class _InterceptorPlugin:
    limelight_name = "tagger"

    @hookimpl
    def limelight_interceptors_provide(self, telemetry: TelemetryView) -> Sequence[Interceptor]:
        return [Interceptor("tagger", 75, _Tag)]


@limelight.instrument(name="hooks.work")
def _work() -> int:
    return 1


class _LogRecords(LogRecordExporter):
    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.records.extend(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _Emitted(LogRecordProcessor):
    def __init__(self) -> None:
        self.bodies: list[object] = []

    def on_emit(self, log_record: Any) -> None:
        self.bodies.append(log_record.log_record.body)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _LogPlugin:
    limelight_name = "logsink"

    def __init__(self) -> None:
        self.exporter = _LogRecords()
        self.processor = _Emitted()

    @hookimpl
    def limelight_logs_provide_exporters(self, telemetry: TelemetryView) -> Sequence[Any]:
        return [self.exporter]

    @hookimpl
    def limelight_logs_provide_processors(self, telemetry: TelemetryView) -> Sequence[Any]:
        return [self.processor]


def _emit(harness: Harness, body: str, **fields: Any) -> None:
    emitter = harness.telemetry.log_emitter
    assert emitter is not None
    emitter.emit(
        "app",
        timestamp=time.time_ns(),
        severity_number=9,
        severity_text="INFO",
        body=body,
        attributes={"n": 1},
        **fields,
    )


class TestLogHooks:
    """Log record exporters (batched by the core) and processors (called as records come)."""

    def test_limelight_logs_provide_exporters_get_every_record_by_stop(self) -> None:
        plugin = _LogPlugin()
        with Harness(plugins=[plugin]) as harness:
            for i in range(3):
                _emit(harness, f"r{i}", trace_id=5, span_id=6, trace_flags=1)
            assert 1 == len(harness.telemetry.log_processors)
        assert ["r0", "r1", "r2"] == [r.log_record.body for r in plugin.exporter.records]
        first = plugin.exporter.records[0]
        assert (5, 6, 1) == (
            first.log_record.trace_id,
            first.log_record.span_id,
            int(first.log_record.trace_flags or 0),
        )
        assert "app" == (first.instrumentation_scope and first.instrumentation_scope.name)
        assert "limelight-test" == first.resource.attributes["service.name"]

    def test_limelight_logs_provide_processors_see_records_synchronously(self) -> None:
        plugin = _LogPlugin()
        with Harness(plugins=[plugin]) as harness:
            _emit(harness, "now")
            assert ["now"] == plugin.processor.bodies

    def test_no_log_pipeline_when_no_plugin_takes_records(self) -> None:
        with Harness() as harness:
            assert harness.telemetry.logger_provider is None
            assert harness.telemetry.log_emitter is None


class TestInterceptorHooks:
    """The function-call interceptor chain."""

    def test_limelight_interceptors_provide_joins_the_chain(self) -> None:
        _seen.clear()
        with Harness(plugins=[_InterceptorPlugin()]) as harness:
            _work()
            names = [i.name for i in harness.telemetry.interceptors]
        assert ["hooks.work"] == _seen
        assert ["limelight.function_metrics", "tagger", "limelight.function_tracing"] == names


PORT = EnvVar(
    "DEMO_EXPORTER_PORT",
    9000,
    parse_int(minimum=1, maximum=65535),
    "Port of the demo exporter.",
    "9100",
)


class _ConfigPlugin:
    limelight_name = "portly"

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return [PORT]


class TestConfigHooks:
    """Plugin variables are declared once and visible to `limelight config`."""

    def test_limelight_config_declare_lists_plugin_variables(self) -> None:
        config = limelight.load_config(environ={"DEMO_EXPORTER_PORT": "70000"})
        manager = limelight.plugins.discover(config, entry_points=False, extra=[_ConfigPlugin()])
        declared = manager.config_declare()
        # the core's built-in plugins declare theirs too (limelight.runtime_metrics)
        assert [("portly", PORT)] == [d for d in declared if not d[0].startswith("limelight.")]
        assert 9000 == config.get(PORT)


class TestGuards:
    """Every hook has a test named after it and is documented with its exact signature."""

    def test_every_hook_has_a_test_named_after_it(self) -> None:
        tests = [
            name
            for _, cls in inspect.getmembers(sys.modules[__name__], inspect.isclass)
            for name in vars(cls)
            if name.startswith("test_")
        ]
        for hook in _hook_names():
            assert any(t.startswith(f"test_{hook}") for t in tests), hook

    @pytest.mark.parametrize("hook", _hook_names())
    def test_every_hook_is_documented_with_its_signature(self, hook: str) -> None:
        if not DOCS.exists():
            pytest.fail(f"{DOCS} is missing")
        module = next(m for m in SPEC_MODULES if hasattr(m, hook))
        params = ", ".join(inspect.signature(getattr(module, hook)).parameters)
        assert f"{hook}({params})" in DOCS.read_text(encoding="utf-8")
