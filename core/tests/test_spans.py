"""limelight's span keeps the SDK span's behaviour: same exported data, same rules."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from structlog.testing import capture_logs

from limelight._context import current_span
from limelight._spans import Span, TracerProvider
from limelight._tracing import ParentBasedAlwaysOn

Script = Callable[[trace_api.Tracer], None]


def _both(script: Script, limits: SpanLimits | None = None) -> tuple[ReadableSpan, ReadableSpan]:
    """Run *script* against the SDK and against limelight; return what each exported."""
    out = []
    providers: list[sdk_trace.TracerProvider] = [
        sdk_trace.TracerProvider(span_limits=limits, shutdown_on_exit=False),
        TracerProvider(span_limits=limits),
    ]
    for provider in providers:
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        script(provider.get_tracer("parity", "1.0"))
        [span] = exporter.get_finished_spans()
        out.append(span)
    return out[0], out[1]


def _view(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "dropped_attributes": span.dropped_attributes,
        # stack traces differ by the frames of each tracer; their presence is compared
        "events": [
            (
                e.name,
                {
                    k: (v if k != "exception.stacktrace" else bool(v))
                    for k, v in (e.attributes or {}).items()
                },
            )
            for e in span.events
        ],
        "dropped_events": span.dropped_events,
        "links": [(ln.context.span_id, dict(ln.attributes or {})) for ln in span.links],
        "dropped_links": span.dropped_links,
        "status": (span.status.status_code, span.status.description),
        "parent": span.parent.span_id if span.parent else None,
        "scope": span.instrumentation_scope,
        "flags": span.context.trace_flags if span.context else None,
    }


def _same(script: Script, limits: SpanLimits | None = None) -> dict[str, Any]:
    sdk, ours = _both(script, limits)
    assert _view(sdk) == _view(ours)
    return _view(ours)


class TestParity:
    """Scripted use of a span exports the same data from both implementations."""

    def test_attributes_of_every_kind(self) -> None:
        def script(tracer: trace_api.Tracer) -> None:
            span = tracer.start_span("s", attributes={"a": "x", "n": 3, "f": 1.5, "b": True})
            span.set_attribute("list", ["a", "b"])
            span.set_attribute("ints", (1, 2))
            span.set_attributes({"a": "y", "none": None, "": "empty key"})
            span.set_attribute("bytes", b"raw")
            span.end()

        view = _same(script)
        assert "y" == view["attributes"]["a"]

    def test_count_and_length_limits(self) -> None:
        limits = SpanLimits(max_span_attributes=3, max_span_attribute_length=4)

        def script(tracer: trace_api.Tracer) -> None:
            span = tracer.start_span("s", attributes={"k1": "abcdefgh", "k2": 2})
            for i in range(3, 7):
                span.set_attribute(f"k{i}", i)
            span.set_attribute("seq", ["long value", "ok"])
            span.end()

        view = _same(script, limits)
        assert 3 == len(view["attributes"])

    def test_events_links_and_exceptions(self) -> None:
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))

        def script(tracer: trace_api.Tracer) -> None:
            span = tracer.start_span("s", links=[Link(remote, {"why": "batch"})])
            span.add_event("cache miss", {"key.kind": "user"})
            span.add_link(remote)
            try:
                raise ValueError("boom")
            except ValueError as exc:
                span.record_exception(exc, {"extra": 1})
            span.end()

        sdk, ours = _both(script)
        assert _view(sdk)["links"] == _view(ours)["links"]
        assert [e.name for e in sdk.events] == [e.name for e in ours.events]
        sdk_ex, our_ex = dict(sdk.events[1].attributes or {}), dict(ours.events[1].attributes or {})
        assert sdk_ex.keys() == our_ex.keys()
        assert sdk_ex["exception.type"] == our_ex["exception.type"]
        assert sdk_ex["exception.message"] == our_ex["exception.message"]

    def test_links_at_start_with_and_without_attributes(self) -> None:
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
        other = SpanContext(0xABC, 0x123, is_remote=True, trace_flags=TraceFlags(0))

        def script(tracer: trace_api.Tracer) -> None:
            links = [Link(remote), Link(trace_api.INVALID_SPAN_CONTEXT), Link(other, {"n": 1})]
            span = tracer.start_span("s", links=links)
            span.add_link(remote, {"late": True})
            span.end()

        sdk, ours = _both(script)
        view = _view(ours)
        assert _view(sdk) == view
        assert [(0xDEF, {}), (0x123, {"n": 1}), (0xDEF, {"late": True})] == view["links"]
        assert [0, 0, 0] == [ln.dropped_attributes for ln in ours.links]
        assert isinstance(ours.links, tuple)

    def test_more_links_at_start_than_the_limit(self) -> None:
        limits = SpanLimits(max_links=2, max_link_attributes=1)
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))

        def script(tracer: trace_api.Tracer) -> None:
            links = [Link(remote, {"i": i, "j": i}) for i in range(4)]
            tracer.start_span("s", links=links).end()

        view = _same(script, limits)
        assert (2, [(0xDEF, {"j": 2}), (0xDEF, {"j": 3})]) == (
            view["dropped_links"],
            view["links"],
        )

    def test_event_and_link_limits(self) -> None:
        limits = SpanLimits(max_events=2, max_links=1)
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))

        def script(tracer: trace_api.Tracer) -> None:
            span = tracer.start_span("s")
            for i in range(4):
                span.add_event(f"e{i}")
                span.add_link(remote, {"i": i})
            span.end()

        view = _same(script, limits)
        assert (2, 3) == (view["dropped_events"], view["dropped_links"])

    @pytest.mark.parametrize(
        "calls",
        [
            [(StatusCode.ERROR, "bad")],
            [(StatusCode.OK, None), (StatusCode.ERROR, "ignored after ok")],
            [(StatusCode.ERROR, "first"), (StatusCode.UNSET, None)],
            [(Status(StatusCode.ERROR, "as object"), None)],
        ],
    )
    def test_status_rules(self, calls: Sequence[tuple[Any, str | None]]) -> None:
        def script(tracer: trace_api.Tracer) -> None:
            span = tracer.start_span("s")
            for status, description in calls:
                span.set_status(status, description)
            span.end()

        _same(script)

    def test_context_manager_records_the_exception(self) -> None:
        def script(tracer: trace_api.Tracer) -> None:
            with pytest.raises(KeyError), tracer.start_as_current_span("s", kind=SpanKind.CLIENT):
                raise KeyError("k")

        view = _same(script)
        assert StatusCode.ERROR == view["status"][0]

    @pytest.mark.parametrize("record_exception", [True, False])
    @pytest.mark.parametrize("set_status", [True, False])
    def test_exception_recording_follows_the_start_flags(
        self, record_exception: bool, set_status: bool
    ) -> None:
        def script(tracer: trace_api.Tracer) -> None:
            span = tracer.start_span(
                "s", record_exception=record_exception, set_status_on_exception=set_status
            )
            with pytest.raises(KeyError), span:
                raise KeyError("k")

        view = _same(script)
        assert [e[0] for e in view["events"]] == (["exception"] if record_exception else [])
        assert view["status"][0] == (StatusCode.ERROR if set_status else StatusCode.UNSET)

    def test_nothing_changes_after_end(self) -> None:
        def script(tracer: trace_api.Tracer) -> None:
            span = tracer.start_span("s")
            span.end()
            span.set_attribute("late", 1)
            span.update_name("renamed")
            span.set_status(StatusCode.ERROR)
            span.add_event("late")
            span.end()

        view = _same(script)
        assert "s" == view["name"]

    def test_parent_and_random_trace_id_flag(self) -> None:
        def script(tracer: trace_api.Tracer) -> None:
            with tracer.start_as_current_span("parent"):
                tracer.start_span("child").end()

        sdk, ours = _both_children(script)
        assert sdk.context is not None and ours.context is not None
        assert sdk.context.trace_flags == ours.context.trace_flags
        assert ours.parent is not None


def _both_children(script: Script) -> tuple[ReadableSpan, ReadableSpan]:
    out = []
    providers: list[sdk_trace.TracerProvider] = [
        sdk_trace.TracerProvider(shutdown_on_exit=False),
        TracerProvider(),
    ]
    for provider in providers:
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        script(provider.get_tracer("parity"))
        out.append(next(s for s in exporter.get_finished_spans() if s.name == "child"))
    return out[0], out[1]


class _Raising(SpanProcessor):
    def on_start(self, span: sdk_trace.Span, parent_context: Context | None = None) -> None:
        raise RuntimeError("on_start broke")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("on_end broke")


class TestPipeline:
    """Sampling, processors and types behave as with the SDK tracer."""

    def test_a_span_is_an_sdk_span(self) -> None:
        span = TracerProvider().get_tracer("t").start_span("s")
        assert isinstance(span, sdk_trace.Span)
        assert isinstance(span, ReadableSpan)
        assert isinstance(span, Span)

    def test_sampler_decides(self) -> None:
        provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
        span = provider.get_tracer("t").start_span("s")
        assert isinstance(span, NonRecordingSpan)
        assert not span.get_span_context().trace_flags.sampled

    def test_sampler_attributes_are_kept(self) -> None:
        class Tagging(Sampler):
            def should_sample(self, *args: Any, **kwargs: Any) -> Any:
                from opentelemetry.sdk.trace.sampling import Decision, SamplingResult

                return SamplingResult(Decision.RECORD_AND_SAMPLE, {"sampled.by": "tagging"})

            def get_description(self) -> str:
                return "Tagging"

        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=Tagging())
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        provider.get_tracer("t").start_span("s", attributes={"ignored": 1}).end()
        [span] = exporter.get_finished_spans()
        assert {"sampled.by": "tagging"} == dict(span.attributes or {})

    def test_record_only_makes_a_recording_span_that_is_not_sampled(self) -> None:
        class RecordOnly(Sampler):
            def should_sample(self, *args: Any, **kwargs: Any) -> Any:
                from opentelemetry.sdk.trace.sampling import Decision, SamplingResult

                return SamplingResult(Decision.RECORD_ONLY, {"kept": True})

            def get_description(self) -> str:
                return "RecordOnly"

        span = TracerProvider(sampler=RecordOnly()).get_tracer("t").start_span("s")
        assert isinstance(span, Span)
        assert span.is_recording()
        assert not span.get_span_context().trace_flags.sampled
        assert {"kept": True} == dict(span.attributes or {})

    @pytest.mark.parametrize(
        "parent",
        [
            None,
            SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(1)),
            SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(0)),
            SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1)),
            SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0)),
            SpanContext(
                1,
                2,
                is_remote=True,
                trace_flags=TraceFlags(1),
                trace_state=trace_api.TraceState([("vendor", "v1")]),
            ),
            SpanContext(
                1,
                2,
                is_remote=True,
                trace_flags=TraceFlags(0),
                trace_state=trace_api.TraceState([("vendor", "v0")]),
            ),
            SpanContext(0, 0, is_remote=True),  # invalid: a root
        ],
        ids=[
            "root",
            "remote-sampled",
            "remote-unsampled",
            "local-sampled",
            "local-unsampled",
            "tracestate-sampled",
            "tracestate-unsampled",
            "invalid",
        ],
    )
    @pytest.mark.parametrize("sampler", ["parentbased_always_on", "always_on", "always_off"])
    def test_inlined_samplers_decide_as_the_sdk(
        self, parent: SpanContext | None, sampler: str
    ) -> None:
        sdk_sampler, our_sampler = {
            "parentbased_always_on": (ParentBased(ALWAYS_ON), ParentBasedAlwaysOn()),
            "always_on": (ALWAYS_ON, ALWAYS_ON),
            "always_off": (ALWAYS_OFF, ALWAYS_OFF),
        }[sampler]
        sdk = sdk_trace.TracerProvider(sampler=sdk_sampler, shutdown_on_exit=False).get_tracer("t")
        ours = TracerProvider(sampler=our_sampler).get_tracer("t")
        context = (
            None if parent is None else trace_api.set_span_in_context(NonRecordingSpan(parent))
        )
        made = [tracer.start_span("s", context, attributes={"a": 1}) for tracer in (sdk, ours)]
        expected, actual = (span.get_span_context() for span in made)
        assert (type(made[0]) is NonRecordingSpan) == (type(made[1]) is NonRecordingSpan)
        assert made[0].is_recording() == made[1].is_recording()
        assert expected.trace_flags == actual.trace_flags
        assert expected.trace_state == actual.trace_state
        assert actual.is_valid
        assert not actual.is_remote
        if parent is not None and parent.is_valid:
            assert parent.trace_id == actual.trace_id
        if made[1].is_recording():
            assert {"a": 1} == dict(made[1].attributes or {})  # type: ignore[attr-defined]
            assert (parent if parent is not None and parent.is_valid else None) == made[1].parent  # type: ignore[attr-defined]

    def test_a_raising_processor_is_reported_and_the_others_still_run(self) -> None:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(_Raising())
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with capture_logs() as logs:
            provider.get_tracer("t").start_span("s").end()
            provider.get_tracer("t").start_span("s2").end()
        assert ["s", "s2"] == [s.name for s in exporter.get_finished_spans()]
        wheres = sorted(e["where"] for e in logs if e.get("component") == "spans")
        assert ["_Raising.on_end", "_Raising.on_start"] == wheres

    def test_tracers_are_cached_per_scope(self) -> None:
        provider = TracerProvider()
        assert provider.get_tracer("a", "1") is provider.get_tracer("a", "1")
        assert provider.get_tracer("a", "1") is not provider.get_tracer("a", "2")

    def test_ending_twice_warns(self, caplog: pytest.LogCaptureFixture) -> None:
        span = TracerProvider().get_tracer("t").start_span("s")
        span.end()
        with caplog.at_level(logging.WARNING, logger="limelight.spans"):
            span.end()
        assert "Calling end() on an ended span." in caplog.text


class TestDefaultSampler:
    """The default sampler decides exactly as the SDK's ParentBased(ALWAYS_ON)."""

    @pytest.mark.parametrize("remote", [True, False])
    @pytest.mark.parametrize("sampled", [True, False, None])
    def test_same_decision_attributes_and_trace_state(
        self, remote: bool, sampled: bool | None
    ) -> None:
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON
        from opentelemetry.trace import TraceState

        from limelight._tracing import ParentBasedAlwaysOn

        context: Context | None = None
        if sampled is not None:
            parent = SpanContext(
                0xABC,
                0xDEF,
                is_remote=remote,
                trace_flags=TraceFlags(1 if sampled else 0),
                trace_state=TraceState([("vendor", "v1")]),
            )
            context = trace_api.set_span_in_context(NonRecordingSpan(parent))
        ours = ParentBasedAlwaysOn().should_sample(context, 0xABC, "s", attributes={"a": 1})
        sdk = ParentBased(ALWAYS_ON).should_sample(context, 0xABC, "s", attributes={"a": 1})
        assert (sdk.decision, dict(sdk.attributes), sdk.trace_state) == (
            ours.decision,
            dict(ours.attributes),
            ours.trace_state,
        )
        description = ParentBasedAlwaysOn().get_description()  # type: ignore[no-untyped-call]
        assert ParentBased(ALWAYS_ON).get_description() == description  # type: ignore[no-untyped-call]


class TestCurrentSpan:
    """The core's fast read of the current span returns what OpenTelemetry's public API does."""

    def test_same_span_everywhere(self) -> None:
        provider = TracerProvider()
        tracer = provider.get_tracer("test")
        seen: list[tuple[object, object]] = []

        def look() -> None:
            seen.append((trace_api.get_current_span(), current_span()))

        look()  # no span: INVALID_SPAN from both
        with tracer.start_as_current_span("outer"):
            look()
            with tracer.start_as_current_span("inner"):
                look()
            look()
            worker = threading.Thread(target=look)  # a new thread starts with no span
            worker.start()
            worker.join()

            async def in_task() -> None:
                look()  # a task inherits the span current where it was made

            asyncio.run(in_task())
        look()
        names = [getattr(ours, "name", None) for _, ours in seen]
        assert [None, "outer", "inner", "outer", None, "outer", None] == names
        assert all(public is ours for public, ours in seen)
        provider.shutdown()

    def test_same_context_everywhere(self) -> None:
        from opentelemetry import context as context_api

        from limelight._context import current_context

        tracer = TracerProvider().get_tracer("test")
        assert context_api.get_current() is current_context()
        with tracer.start_as_current_span("outer"):
            assert context_api.get_current() is current_context()
            token = context_api.attach(context_api.set_value("k", "v"))
            assert "v" == current_context().get("k")
            context_api.detach(token)
        assert context_api.get_current() is current_context()

    def test_a_span_context_is_the_tuple_read_by_position(self) -> None:
        # start_span, the batch processor and the W3C propagator read SpanContext
        # fields by position: this fails first if the API changes its layout
        state = trace_api.TraceState([("k", "v")])
        ctx = SpanContext(0xA, 0xB, is_remote=True, trace_flags=TraceFlags(1), trace_state=state)
        assert (0xA, 0xB, True, 1, state, True) == tuple(ctx)
        fields = (ctx.trace_id, ctx.span_id, ctx.is_remote, ctx.trace_flags)
        assert (*fields, ctx.trace_state, ctx.is_valid) == tuple(ctx)
        assert not SpanContext(0, 0, is_remote=False)[5]
