"""The span of a given context, read and set as the OpenTelemetry API does."""

from __future__ import annotations

from opentelemetry import baggage, context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from limelight.surface import span_in, with_span

_SPAN = NonRecordingSpan(SpanContext(0x1F, 0x2F, True, TraceFlags(1)))
_OTHER = NonRecordingSpan(SpanContext(0x3F, 0x4F, False, TraceFlags(0)))


def test_with_span_makes_what_set_span_in_context_makes() -> None:
    for base in (context.Context(), baggage.set_baggage("k", "v", context.Context())):
        made = with_span(_SPAN, base)
        assert dict(trace.set_span_in_context(_SPAN, base)) == dict(made)
        assert dict(base) == {k: v for k, v in made.items() if v is not _SPAN}  # base unchanged
    replaced = with_span(_OTHER, with_span(_SPAN, context.Context()))
    assert trace.get_current_span(replaced) is _OTHER


def test_with_span_reads_no_current_context() -> None:
    token = context.attach(baggage.set_baggage("current", "yes"))
    try:
        made = with_span(_SPAN, context.Context())
    finally:
        context.detach(token)
    assert {} == baggage.get_all(made)
    assert trace.get_current_span(made) is _SPAN


def test_span_in_finds_what_get_current_span_finds() -> None:
    for ctx in (
        context.Context(),
        baggage.set_baggage("k", "v", context.Context()),
        trace.set_span_in_context(_SPAN, context.Context()),
    ):
        assert trace.get_current_span(ctx) is span_in(ctx)
    assert trace.INVALID_SPAN is span_in(context.Context())
