"""Every private name ``limelight._sdk`` relies on holds for the installed releases,
and when one does not, limelight uses the public behaviour and says so once.

Each test names its assumption (the names of the ``limelight._sdk`` docstring), so
a failure after an upgrade says which one the new release broke.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from typing import Any, NamedTuple

import opentelemetry.context as otel_context
import prometheus_client
import pytest
from opentelemetry import baggage, metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags, TraceState

from limelight import _sdk
from limelight._sdk import context as sdk_context
from limelight._sdk import prometheus as sdk_prometheus
from limelight._sdk import providers as sdk_providers
from limelight._sdk import resources as sdk_resources
from limelight._sdk import spans as sdk_spans
from limelight._sdk import tracestate as sdk_tracestate
from limelight._spans import TracerProvider


def _assumption(name: str) -> str:
    assert name in _sdk.ASSUMPTIONS, f"{name} is not listed in limelight._sdk.ASSUMPTIONS"
    return f"limelight._sdk assumption {name!r} no longer holds"


class _OnEndOnly(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        pass


class TestAssumptionsHold:
    """With the installed opentelemetry, prometheus_client and pluggy, nothing falls back."""

    def test_no_fallback_is_active(self) -> None:
        assert {} == _sdk.FALLBACKS, "assumptions that failed at import: " + ", ".join(
            _sdk.FALLBACKS
        )

    def test_logs_sdk(self) -> None:
        from limelight._sdk import logs as sdk_logs

        assert sdk_logs.AVAILABLE, _assumption("logs-sdk")
        seen: list[Any] = []

        class Keep(sdk_logs.LogRecordProcessor):
            def on_emit(self, log_record: Any) -> None:
                seen.append(sdk_logs.readable(log_record))

            def shutdown(self) -> None:
                pass

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return True

        provider = sdk_logs.LoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(Keep())
        try:
            raise KeyError("missing")
        except KeyError as exc:
            error = exc
        record = sdk_logs.make_record(
            timestamp=1,
            context=Context(),
            severity_number=17,
            severity_text="ERROR",
            body="failed",
            attributes={"k": "v"},
            trace_id=7,
            span_id=8,
            trace_flags=1,
            exception=error,
        )
        provider.get_logger("probe").emit(record)
        [readable] = seen
        assert isinstance(readable, sdk_logs.ReadableLogRecord), _assumption("logs-sdk")
        emitted = readable.log_record
        assert (7, 8, 1, "failed", "ERROR") == (
            emitted.trace_id,
            emitted.span_id,
            int(emitted.trace_flags),
            emitted.body,
            emitted.severity_text,
        ), _assumption("logs-sdk")
        attributes = dict(emitted.attributes or {})
        assert ("KeyError", "'missing'") == (
            attributes["exception.type"],
            attributes["exception.message"],
        ), _assumption("logs-sdk")
        assert "Traceback" in str(attributes["exception.stacktrace"]), _assumption("logs-sdk")

    def test_every_assumption_is_documented(self) -> None:
        doc = _sdk.__doc__ or ""
        missing = [name for name in _sdk.ASSUMPTIONS if f"``{name}``" not in doc]
        assert [] == missing

    def test_span_fields(self) -> None:
        problem = sdk_spans.span_fields_problem()
        assert problem is None, f"{_assumption('span-fields')}: {problem}"
        assert sdk_spans.LEAN_SPANS

    def test_span_context_tuple(self) -> None:
        problem = sdk_spans.span_context_layout_problem()
        assert problem is None, f"{_assumption('span-context-tuple')}: {problem}"
        flags, state = TraceFlags(1), TraceState([("k", "v")])
        made = sdk_spans.build_span_context(SpanContext, (5, 6, False, flags, state, True))
        assert SpanContext(5, 6, False, flags, state) == made, _assumption("span-context-tuple")
        assert (5, flags, state, True) == sdk_spans.parent_fields(made)
        assert (5, 6, False, flags, state, True) == sdk_spans.unpack_span_context(made)
        assert flags == sdk_spans.trace_flags(made)

    def test_on_ending(self) -> None:
        order: list[str] = []

        class Recording(SpanProcessor):
            def _on_ending(self, span: Any) -> None:
                order.append("_on_ending")

            def on_end(self, span: ReadableSpan) -> None:
                order.append("on_end")

        provider = sdk_trace.TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(Recording())
        provider.get_tracer("probe").start_span("s").end()
        assert ["_on_ending", "on_end"] == order, _assumption("on-ending")
        assert sdk_spans.calls_on_ending(Recording()), _assumption("on-ending")
        assert not sdk_spans.calls_on_ending(_OnEndOnly())

    def test_agnostic_context_manager(self) -> None:
        assert sdk_spans.agnostic_contextmanager is not contextlib.contextmanager, _assumption(
            "agnostic-context-manager"
        )
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("probe")
        seen: list[bool] = []

        @tracer.start_as_current_span("job")
        async def job() -> None:
            await asyncio.sleep(0)
            seen.append(trace.get_current_span().is_recording())

        asyncio.run(job())
        assert [True] == seen, _assumption("agnostic-context-manager")
        assert ["job"] == [s.name for s in exporter.get_finished_spans()]

    def test_runtime_context(self) -> None:
        reader = sdk_context.context_reader()
        assert reader is not otel_context.get_current, _assumption("runtime-context")
        token = otel_context.attach(otel_context.set_value("probe", 1))
        try:
            assert otel_context.get_current() is reader(), _assumption("runtime-context")
        finally:
            otel_context.detach(token)

    def test_context_keys(self) -> None:
        assert sdk_context.SPAN_KEY is not None, _assumption("context-keys")
        assert sdk_context.BAGGAGE_KEY is not None, _assumption("context-keys")
        span = trace.NonRecordingSpan(SpanContext(1, 2, False))
        with_span = trace.set_span_in_context(span, Context())
        assert span is with_span.get(sdk_context.SPAN_KEY), _assumption("context-keys")
        with_baggage = baggage.set_baggage("k", "v", with_span)
        stored: Any = with_baggage.get(sdk_context.BAGGAGE_KEY)
        assert {"k": "v"} == dict(stored or {}), _assumption("context-keys")

    def test_suppress_keys(self) -> None:
        expected = (
            otel_context._SUPPRESS_INSTRUMENTATION_KEY,
            otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY,
        )
        found = (
            sdk_context.SUPPRESS_INSTRUMENTATION_KEY,
            sdk_context.SUPPRESS_HTTP_INSTRUMENTATION_KEY,
        )
        assert expected == found, _assumption("suppress-keys")

    def test_meter_provider_proxy(self) -> None:
        # a fresh process: the global meter provider is still the API's proxy there
        out = _run(
            """
            from opentelemetry import metrics
            from opentelemetry.sdk.metrics import MeterProvider
            from limelight._sdk.providers import meter_provider_is_default
            before = meter_provider_is_default()
            metrics.set_meter_provider(MeterProvider())
            print(json.dumps([before, meter_provider_is_default()]))
            """
        )
        assert [True, False] == out["result"], _assumption("meter-provider-proxy")

    def test_provider_globals(self) -> None:
        problem = sdk_providers.globals_problem()
        assert problem is None, f"{_assumption('provider-globals')}: {problem}"
        before_tracer, before_meter = trace.get_tracer_provider(), metrics.get_meter_provider()
        saved = sdk_providers.SavedGlobals()
        ours = sdk_trace.TracerProvider(shutdown_on_exit=False)
        try:
            saved.set_tracer_provider(ours)
            assert ours is trace.get_tracer_provider(), _assumption("provider-globals")
            again = sdk_trace.TracerProvider(shutdown_on_exit=False)
            saved.set_tracer_provider(again)  # a second set takes effect too
            assert again is trace.get_tracer_provider(), _assumption("provider-globals")
        finally:
            saved.restore()
        assert before_tracer is trace.get_tracer_provider(), _assumption("provider-globals")
        assert before_meter is metrics.get_meter_provider(), _assumption("provider-globals")

    def test_host_detector(self) -> None:
        detector = sdk_resources.host_detector()
        assert type(detector).__name__ == "_HostResourceDetector", _assumption("host-detector")
        attributes = detector.detect().attributes
        assert {"host.name", "host.arch"} <= set(attributes), _assumption("host-detector")

    def test_prometheus_cells(self) -> None:
        problem = sdk_prometheus.cells_problem()
        assert problem is None, f"{_assumption('prometheus-cells')}: {problem}"
        registry = prometheus_client.CollectorRegistry()
        child = prometheus_client.Counter("c", "c", ["a"], registry=registry).labels("x")
        sdk_prometheus.cell_add(child)(3)
        assert 3 == sdk_prometheus.cell_value(child), _assumption("prometheus-cells")
        assert 3 == registry.get_sample_value("c_total", {"a": "x"})
        sdk_prometheus.cell_setter(child)(1.5)  # an observed total: set, even downwards
        assert 1.5 == registry.get_sample_value("c_total", {"a": "x"}), _assumption(
            "prometheus-cells"
        )

    def test_prometheus_created(self) -> None:
        problem = sdk_prometheus.created_problem()
        assert problem is None, f"{_assumption('prometheus-created')}: {problem}"
        registry = prometheus_client.CollectorRegistry()
        child = prometheus_client.Counter("c", "c", ["a"], registry=registry).labels("x")
        sdk_prometheus.set_created(child, 1000.25)
        created = registry.get_sample_value("c_created", {"a": "x"})
        assert created in (1000.25, None), _assumption("prometheus-created")

    def test_restricted_metric(self) -> None:
        problem = sdk_prometheus.restriction_problem()
        assert problem is None, f"{_assumption('restricted-metric')}: {problem}"

    def test_prometheus_fork_reset(self) -> None:
        problem = sdk_prometheus.fork_reset_problem()
        assert problem is None, f"{_assumption('prometheus-fork-reset')}: {problem}"
        registry = prometheus_client.CollectorRegistry()
        counter = prometheus_client.Counter("c", "c", ["a"], registry=registry)
        child = counter.labels("x")
        child.inc(4)
        assert sdk_prometheus.reset_after_fork(counter, child, 1000.25)
        child.inc(1)
        assert 1 == registry.get_sample_value("c_total", {"a": "x"}), _assumption(
            "prometheus-fork-reset"
        )
        created = registry.get_sample_value("c_created", {"a": "x"})
        assert created in (1000.25, None), _assumption("prometheus-fork-reset")

    def test_trace_state_dict(self) -> None:
        problem = sdk_tracestate.trace_state_problem()
        assert problem is None, f"{_assumption('trace-state-dict')}: {problem}"
        pairs = [("foo@", "1"), ("0abc", "2")]  # keys the API's own check refuses
        state = sdk_tracestate.trace_state(pairs)
        assert isinstance(state, TraceState), _assumption("trace-state-dict")
        assert "foo@=1,0abc=2" == state.to_header(), _assumption("trace-state-dict")
        assert pairs == list(state.items()), _assumption("trace-state-dict")
        context = SpanContext(1, 2, True, TraceFlags(1), state)
        assert "1" == context.trace_state["foo@"], _assumption("trace-state-dict")


class _Reordered(NamedTuple):
    span_id: int
    trace_id: int
    is_remote: bool
    trace_flags: int
    trace_state: Any
    is_valid: bool


class _OtherFields(ReadableSpan):
    @property
    def name(self) -> str:
        return "always this"


class TestProblemsAreSeen:
    """Each check tells a library that changed from one that did not."""

    def test_a_span_context_with_other_positions(self) -> None:
        problem = sdk_spans.span_context_layout_problem(_Reordered)
        assert problem is not None

    def test_a_readable_span_reading_other_fields(self) -> None:
        problem = sdk_spans.span_fields_problem(readable=_OtherFields)
        assert problem is not None and "name does not read _name" in problem

    def test_another_runtime_context_uses_the_public_function(self) -> None:
        assert otel_context.get_current is sdk_context.context_reader(runtime=object())

    def test_fallback_refuses_an_unknown_assumption(self) -> None:
        with pytest.raises(ValueError, match="unknown assumption"):
            _sdk.fallback("no-such-thing", "anything")


def _run(script: str) -> dict[str, Any]:
    """Run *script* in a fresh interpreter (after the preamble, which captures the logs
    of everything it imports); it prints its result as JSON on the last line."""
    preamble = textwrap.dedent(
        """
        import json, structlog
        from structlog.testing import LogCapture
        capture = LogCapture()
        structlog.configure(processors=[capture])
        """
    )
    code = (
        preamble
        + textwrap.dedent(script)
        + textwrap.dedent(
            """
        warnings = [e for e in capture.entries if e.get("assumption")]
        print(json.dumps({"warnings": [[e["assumption"], e["instead"]] for e in warnings]}))
        """
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert 0 == done.returncode, done.stderr
    lines = done.stdout.strip().splitlines()
    out: dict[str, Any] = json.loads(lines[-1])
    if len(lines) > 1:
        out["result"] = json.loads(lines[-2])
    return out


class TestFallbacks:
    """When a release breaks an assumption, limelight works on the public behaviour
    and logs one warning naming it."""

    def test_span_fields_fall_back_to_the_sdk_spans(self) -> None:
        out = _run(
            """
            from opentelemetry.sdk import trace as sdk_trace
            original = sdk_trace.Span.__new__
            def new(cls, *args, **kwargs):  # a release whose __new__ sets up state
                span = original(cls, *args, **kwargs)
                span.extra = 1
                return span
            sdk_trace.Span.__new__ = new
            import limelight._sdk.spans  # checked here, logged once
            import limelight._sdk.spans
            from limelight.testing import Harness
            with Harness() as harness:
                tracer = harness.telemetry.tracer("probe")
                with tracer.start_as_current_span("parent"):
                    tracer.start_span("child").end()
                child = harness.span("child")
                parent = harness.span("parent")
                result = [type(child).__module__, child.parent.span_id == parent.context.span_id]
            print(json.dumps(result))
            """
        )
        assert [["span-fields", "the SDK's own tracer and spans"]] == out["warnings"]
        assert ["opentelemetry.sdk.trace", True] == out["result"]

    def test_a_span_context_with_state_of_its_own_is_built_by_its_constructor(self) -> None:
        out = _run(
            """
            from opentelemetry import trace
            Original = trace.SpanContext
            class Stateful(Original):  # a release whose SpanContext is not a bare tuple
                def __new__(cls, *args, **kwargs):
                    made = super().__new__(cls, *args, **kwargs)
                    object.__setattr__(made, "extra", 1)  # its own __setattr__ refuses
                    return made
            trace.SpanContext = Stateful
            from limelight._sdk import spans
            from limelight._spans import TracerProvider
            provider = TracerProvider()
            tracer = provider.get_tracer("probe")
            parent = tracer.start_span("parent")
            child = tracer.start_span("child", trace.set_span_in_context(parent))
            ctx = child.get_span_context()
            result = [
                type(ctx).__name__,
                ctx.trace_id == parent.get_span_context().trace_id,
                child.parent.span_id == parent.get_span_context().span_id,
                ctx.is_valid,
            ]
            print(json.dumps(result))
            """
        )
        assert [["span-context-tuple", "SpanContext's constructor and properties"]] == out[
            "warnings"
        ]
        assert ["Stateful", True, True, True] == out["result"]

    def test_prometheus_cells_fall_back_to_the_public_children(self) -> None:
        out = _run(
            """
            import prometheus_client
            # a release whose cells the check cannot find
            prometheus_client.CollectorRegistry.get_sample_value = lambda *a, **k: None
            from limelight.testing import Harness
            with Harness() as harness:
                store = harness.store
                store.counter("jobs_total", "j", ["q"]).labels("a").inc(2)
                store.histogram("job_seconds", "j", ["q"], buckets=[1.0]).labels("a").observe(0.5)
                point = harness.histogram("job_seconds", q="a")
                result = [harness.value("jobs_total", q="a"), point.count, point.bucket_counts]
            print(json.dumps(result))
            """
        )
        assert [
            ["prometheus-cells", "the children's inc/observe and collect()"],
            [
                "prometheus-fork-reset",
                "a forked child does not push its metrics (its values are its parent's)",
            ],
        ] == out["warnings"]
        assert [2.0, 1, [1, 0]] == out["result"]

    def test_missing_suppress_keys_are_replaced_by_limelights_own(self) -> None:
        out = _run(
            """
            import opentelemetry.context as c
            # the SDK modules that import the keys themselves
            import opentelemetry.sdk.metrics.export, opentelemetry.sdk.trace.export
            import opentelemetry.sdk._logs.export
            del c._SUPPRESS_INSTRUMENTATION_KEY, c._SUPPRESS_HTTP_INSTRUMENTATION_KEY
            from limelight.export import suppressed
            from limelight.surface import SUPPRESS_INSTRUMENTATION_KEY
            with suppressed():
                inside = bool(c.get_value(SUPPRESS_INSTRUMENTATION_KEY))
            print(json.dumps([inside, bool(c.get_value(SUPPRESS_INSTRUMENTATION_KEY))]))
            """
        )
        assert [["suppress-keys", "limelight's own suppression keys"]] == out["warnings"]
        assert [True, False] == out["result"]

    def test_a_trace_state_without_its_dict_is_built_by_its_constructor(self) -> None:
        out = _run(
            """
            from opentelemetry.trace import TraceState
            # a release whose TraceState keeps its entries elsewhere
            TraceState.to_header = lambda self: ",".join(f"{k}={v}" for k, v in self.items()) + ","
            from limelight.propagation import W3CTraceContextPropagator, header_getter
            from opentelemetry import trace
            carrier = [
                ("traceparent", "00-12345678901234567890123456789012-1234567890123456-01"),
                ("tracestate", "foo@=1,congo=2"),
            ]
            ctx = W3CTraceContextPropagator().extract(carrier, getter=header_getter)
            state = trace.get_current_span(ctx).get_span_context().trace_state
            print(json.dumps(dict(state.items())))
            """
        )
        assert "trace-state-dict" == out["warnings"][0][0]
        assert {"congo": "2"} == out["result"]  # the API's own check dropped "foo@"

    def test_a_fallback_is_logged_once(self) -> None:
        out = _run(
            """
            from limelight import _sdk
            _sdk.fallback("host-detector", "x", "first")
            _sdk.fallback("host-detector", "x", "second")
            print(json.dumps(sorted(_sdk.FALLBACKS)))
            """
        )
        assert [["host-detector", "x"]] == out["warnings"]
        assert ["host-detector"] == out["result"]
