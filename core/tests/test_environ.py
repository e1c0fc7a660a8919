"""Environment variables as context carriers: injected into a copy, adopted at start."""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context, attach
from opentelemetry.propagators.textmap import CarrierT, Getter, Setter, TextMapPropagator
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import limelight
from limelight._environ import adopt_environment_context, environ_name
from limelight.propagation import (
    EnvironmentGetter,
    EnvironmentSetter,
    build_propagator,
    environ_variables,
    extract_environ,
    format_traceparent,
    inject_environ,
)
from limelight.testing import Harness, SpanCapturePlugin

T = TypeVar("T")

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def default_propagator() -> Iterator[None]:
    """The default propagators (tracecontext, baggage) as the global one, restored after."""
    saved = propagate.get_global_textmap()
    propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))
    yield
    propagate.set_global_textmap(saved)


def _remote_span() -> trace.Span:
    return NonRecordingSpan(
        SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(1))
    )


def _isolated(fn: Callable[[], T]) -> T:
    """Run *fn* in a copy of the current context, so what it attaches stays there."""
    return contextvars.copy_context().run(fn)


class _FieldsOnly(TextMapPropagator):
    """A propagator that only declares its fields."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        self._fields = set(fields)

    def extract(self, carrier: Any, context: Context | None = None, getter: Any = None) -> Context:
        return context or Context()

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return self._fields


class TestVariableNames:
    """A propagator field travels as its upper-cased name, other characters as ``_``."""

    @pytest.mark.parametrize(
        ("field", "name"),
        [
            ("traceparent", "TRACEPARENT"),
            ("tracestate", "TRACESTATE"),
            ("baggage", "BAGGAGE"),
            ("x-b3-traceid", "X_B3_TRACEID"),
            ("uber-trace-id", "UBER_TRACE_ID"),
            ("1x", "_1X"),
            ("", "_"),
        ],
    )
    def test_name(self, field: str, name: str) -> None:
        assert name == environ_name(field)

    def test_getter_and_setter(self) -> None:
        env: dict[str, str] = {}
        EnvironmentSetter().set(env, "x-b3-traceid", "abc")
        assert {"X_B3_TRACEID": "abc"} == env
        assert ["abc"] == EnvironmentGetter().get(env, "x-b3-traceid")
        assert EnvironmentGetter().get(env, "traceparent") is None
        assert ["X_B3_TRACEID"] == EnvironmentGetter().keys({**env, "lower": "x"})

    def test_the_global_propagators_variables(self) -> None:
        assert ("BAGGAGE", "TRACEPARENT", "TRACESTATE") == environ_variables()
        b3 = _FieldsOnly(("x-b3-traceid", "x-b3-spanid"))
        propagate.set_global_textmap(b3)
        assert ("X_B3_SPANID", "X_B3_TRACEID") == environ_variables()
        assert ("BAGGAGE",) == environ_variables(build_propagator(["baggage"]))


class TestInject:
    """inject_environ returns a copy carrying the context; nothing else is changed."""

    def test_span_as_parent_in_a_copy_of_os_environ(self) -> None:
        before = dict(os.environ)
        env = inject_environ(span=_remote_span())
        assert TRACEPARENT == env["TRACEPARENT"]
        assert {k: v for k, v in env.items() if k != "TRACEPARENT"} == {
            k: v for k, v in before.items() if k not in ("TRACEPARENT", "TRACESTATE", "BAGGAGE")
        }
        assert before == dict(os.environ)

    def test_the_callers_mapping_is_not_changed(self) -> None:
        given = {"PATH": "/bin", "TRACEPARENT": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
        copy = dict(given)
        env = inject_environ(given, span=_remote_span())
        assert copy == given
        assert {"PATH": "/bin", "TRACEPARENT": TRACEPARENT} == env

    def test_inherited_variables_are_dropped_when_the_context_has_none(self) -> None:
        given = {
            "HOME": "/root",
            "TRACEPARENT": TRACEPARENT,
            "TRACESTATE": "a=b",
            "BAGGAGE": "k=v",
            b"TRACEPARENT": b"stale",
        }
        assert {"HOME": "/root"} == inject_environ(given, Context())  # type: ignore[arg-type]

    def test_context_with_trace_state_and_baggage(self) -> None:
        state = trace.TraceState([("congo", "t61rcWkgMzE")])
        span = NonRecordingSpan(
            SpanContext(TRACE_ID, SPAN_ID, True, TraceFlags(1), trace_state=state)
        )
        context = baggage.set_baggage("tenant", "acme", trace.set_span_in_context(span))
        expected = {
            "TRACEPARENT": TRACEPARENT,
            "TRACESTATE": "congo=t61rcWkgMzE",
            "BAGGAGE": "tenant=acme",
        }
        assert expected == inject_environ({}, context)
        assert expected == inject_environ({}, context, span=span)

    def test_the_current_span_by_default(self) -> None:
        with Harness() as harness:
            tracer = harness.telemetry.tracer("t")
            with tracer.start_as_current_span("parent") as span:
                env = inject_environ({})
        ctx = span.get_span_context()
        assert format_traceparent(ctx.trace_id, ctx.span_id, ctx.trace_flags) == env["TRACEPARENT"]

    def test_any_configured_propagator(self) -> None:
        class Custom(TextMapPropagator):
            def extract(
                self, carrier: CarrierT, context: Context | None = None, getter: Any = None
            ) -> Context:
                return context or Context()

            def inject(
                self, carrier: CarrierT, context: Context | None = None, setter: Any = None
            ) -> None:
                assert isinstance(setter, Setter)
                setter.set(carrier, "x-request-id", "42")

            @property
            def fields(self) -> set[str]:
                return {"x-request-id"}

        propagate.set_global_textmap(Custom())
        assert {"X_REQUEST_ID": "42"} == inject_environ({"X_REQUEST_ID": "old"}, Context())


class TestExtract:
    """extract_environ reads what inject_environ wrote."""

    def test_round_trip(self) -> None:
        context = baggage.set_baggage("tenant", "acme", trace.set_span_in_context(_remote_span()))
        extracted = extract_environ(inject_environ({}, context))
        found = trace.get_current_span(extracted).get_span_context()
        assert (TRACE_ID, SPAN_ID, True) == (found.trace_id, found.span_id, found.is_remote)
        assert "acme" == baggage.get_baggage("tenant", extracted)

    def test_nothing_in_the_environment(self) -> None:
        assert not trace.get_current_span(extract_environ({})).get_span_context().is_valid

    def test_the_getter_is_a_getter(self) -> None:
        assert isinstance(EnvironmentGetter(), Getter)


def _started_span(environ: dict[str, str], *, current: trace.Span | None = None) -> ReadableSpan:
    """Start a process-wide-style telemetry with *environ*, make one span, return it."""

    def run() -> ReadableSpan:
        capture = SpanCapturePlugin()
        telemetry = limelight.Telemetry(
            plugins=[capture],
            entry_points=False,
            handle_signals=False,
            environ=environ,
            traces_sampler="parentbased_always_on",
        )
        if current is not None:  # stays in the isolated context
            attach(trace.set_span_in_context(current))
        try:
            telemetry.start()
            telemetry.tracer("t").start_span("work").end()
        finally:
            telemetry.stop()
        [span] = capture.exporter.get_finished_spans()
        return span

    return _isolated(run)


class TestAdoption:
    """The process-wide start takes the environment's context as the caller's current one."""

    def test_a_span_without_a_parent_continues_the_parent_process_trace(self) -> None:
        span = _started_span({"TRACEPARENT": TRACEPARENT})
        assert span.parent is not None
        assert (TRACE_ID, SPAN_ID, True) == (
            span.context.trace_id,
            span.parent.span_id,
            span.parent.is_remote,
        )

    def test_the_caller_context_outside_is_untouched(self) -> None:
        _started_span({"TRACEPARENT": TRACEPARENT})
        assert not trace.get_current_span().get_span_context().is_valid

    def test_switched_off(self) -> None:
        span = _started_span({"TRACEPARENT": TRACEPARENT, "LIMELIGHT_CONTEXT_FROM_ENV": "false"})
        assert span.parent is None

    def test_an_invalid_traceparent_is_ignored(self) -> None:
        span = _started_span({"TRACEPARENT": "00-zz-00f067aa0ba902b7-01"})
        assert span.parent is None

    def test_a_current_span_stays_the_parent(self) -> None:
        mine = NonRecordingSpan(
            SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))
        )
        span = _started_span({"TRACEPARENT": TRACEPARENT}, current=mine)
        assert span.parent is not None
        assert (0xABC, 0xDEF) == (span.context.trace_id, span.parent.span_id)

    def test_baggage_alone(self) -> None:
        config = limelight.load_config({"BAGGAGE": "tenant=acme"})

        def run() -> object:
            assert adopt_environment_context(config)
            return baggage.get_baggage("tenant")

        assert "acme" == _isolated(run)

    def test_the_test_harness_does_not_adopt(self) -> None:
        with Harness(env={"TRACEPARENT": TRACEPARENT}) as harness:
            harness.telemetry.tracer("t").start_span("work").end()
            [span] = harness.spans()
        assert span.parent is None


CHILD = textwrap.dedent(
    """
    import limelight
    from opentelemetry import baggage

    telemetry = limelight.start(entry_points=False, handle_signals=False)
    with telemetry.tracer("child").start_as_current_span("child") as span:
        ctx, parent = span.get_span_context(), span.parent
        print(f"{ctx.trace_id:032x} {parent.span_id:016x} {baggage.get_baggage('tenant')}")
    limelight.stop()
    """
)


class TestRealChild:
    """A Python child started with inject_environ joins its parent's trace at start."""

    def test_child_span_is_a_child_of_the_parent_span(self) -> None:
        with Harness() as harness:
            tracer = harness.telemetry.tracer("parent")
            context = baggage.set_baggage("tenant", "acme")
            with tracer.start_as_current_span("spawn", context=context) as span:
                env = inject_environ(context=context, span=span)
                out = subprocess.run(
                    [sys.executable, "-c", CHILD],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=60,
                ).stdout.split()
        ctx = span.get_span_context()
        assert [f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", "acme"] == out
