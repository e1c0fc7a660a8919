"""limelight.surface.start_span_with_id: a span whose id the caller chooses, through the
telemetry's own tracer, so re-executed work names the same span every time."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from limelight.surface import start_span_with_id
from limelight.testing import Harness


class TestStartSpanWithId:
    """The chosen id, the parent's trace, the telemetry's processors and sampler."""

    def test_a_root_span_gets_the_chosen_ids_and_reaches_the_processors(
        self, telemetry: Harness
    ) -> None:
        tracer = telemetry.telemetry.tracer("test")
        span = start_span_with_id(
            tracer, "run", 0xABC, trace_id=0x1234, kind=SpanKind.SERVER, start_time=10
        )
        span.end(end_time=20)
        captured = telemetry.span("run", kind="server")
        assert captured.context is not None
        assert 0xABC == captured.context.span_id
        assert 0x1234 == captured.context.trace_id
        assert (10, 20) == (captured.start_time, captured.end_time)

    def test_under_a_parent_the_trace_is_the_parents(self, telemetry: Harness) -> None:
        tracer = telemetry.telemetry.tracer("test")
        parent = SpanContext(0x77, 0x88, is_remote=True, trace_flags=TraceFlags(1))
        context = trace.set_span_in_context(NonRecordingSpan(parent))
        start_span_with_id(tracer, "child", 0x99, trace_id=0x5, context=context).end()
        captured = telemetry.span("child")
        assert captured.context is not None and captured.parent is not None
        assert (0x77, 0x99, 0x88) == (
            captured.context.trace_id,
            captured.context.span_id,
            captured.parent.span_id,
        )

    def test_other_spans_keep_random_ids(self, telemetry: Harness) -> None:
        tracer = telemetry.telemetry.tracer("test")
        start_span_with_id(tracer, "fixed", 0x42).end()
        with tracer.start_as_current_span("plain"):
            pass
        plain = telemetry.span("plain")
        assert plain.context is not None and 0x42 != plain.context.span_id

    @pytest.mark.limelight(env={"OTEL_TRACES_SAMPLER": "parentbased_always_on"})
    def test_an_unsampled_parent_gives_a_non_recording_span_with_the_ids(
        self, telemetry: Harness
    ) -> None:
        tracer = telemetry.telemetry.tracer("test")
        parent = SpanContext(0x77, 0x88, is_remote=True, trace_flags=TraceFlags(0))
        context = trace.set_span_in_context(NonRecordingSpan(parent))
        span = start_span_with_id(tracer, "unsampled", 0x99, context=context)
        assert not span.is_recording()
        assert 0x99 == span.get_span_context().span_id
        span.end()
        assert [] == telemetry.find_spans("unsampled")

    @pytest.mark.parametrize(("span_id", "trace_id"), [(0, None), (2**64, None), (1, 0)])
    def test_ids_out_of_range_are_refused(
        self, telemetry: Harness, span_id: int, trace_id: int | None
    ) -> None:
        with pytest.raises(ValueError, match="non-zero"):
            start_span_with_id(telemetry.telemetry.tracer("t"), "x", span_id, trace_id=trace_id)

    def test_the_no_op_tracer_starts_its_usual_span(self) -> None:
        span = start_span_with_id(trace.NoOpTracer(), "x", 5)
        assert not span.is_recording()
