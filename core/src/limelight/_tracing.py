"""Sampler construction and span-start enrichment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.trace import Span, SpanLimits, SpanProcessor, sampling
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from limelight_hookspecs import Config

from . import _env as env
from ._log import get_logger
from ._metadata import entry_points

__all__ = [
    "OnStartProcessor",
    "ParentBasedAlwaysOn",
    "build_sampler",
    "exemplar_filter",
    "span_limits",
]

_log = get_logger("limelight")


def span_limits(environ: Mapping[str, str]) -> SpanLimits:
    """The span limits the ``OTEL_*_LIMIT`` variables of *environ* give, every one
    explicit so that the SDK never reads (and raises on) the variables itself; an
    invalid value has been reported by the configuration and its default is used.
    The precedence is the SDK's: a span, event or link variable, else the generic
    ``OTEL_ATTRIBUTE_*`` one, else 128 (counts) or unlimited (lengths)."""

    def get(var: Any) -> int | None:
        value: int | None = var.read(environ).value
        return value

    def count(value: int | None, fallback: int | None) -> int:
        if value is not None:
            return value
        return 128 if fallback is None else fallback

    def length(value: int | None) -> int:
        return SpanLimits.UNSET if value is None else value

    attributes = get(env.OTEL_ATTRIBUTE_COUNT_LIMIT)
    attribute_length = get(env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    span_attribute_length = get(env.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    return SpanLimits(
        max_attributes=count(attributes, None),
        max_events=count(get(env.OTEL_SPAN_EVENT_COUNT_LIMIT), None),
        max_links=count(get(env.OTEL_SPAN_LINK_COUNT_LIMIT), None),
        max_span_attributes=count(get(env.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT), attributes),
        max_event_attributes=count(get(env.OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT), attributes),
        max_link_attributes=count(get(env.OTEL_LINK_ATTRIBUTE_COUNT_LIMIT), attributes),
        max_attribute_length=length(attribute_length),
        max_span_attribute_length=length(
            attribute_length if span_attribute_length is None else span_attribute_length
        ),
    )


_EXEMPLAR_FILTERS: dict[str, Callable[[], ExemplarFilter]] = {
    "trace_based": TraceBasedExemplarFilter,
    "always_on": AlwaysOnExemplarFilter,
    "always_off": AlwaysOffExemplarFilter,
}


def exemplar_filter(environ: Mapping[str, str]) -> ExemplarFilter:
    """The exemplar filter ``OTEL_METRICS_EXEMPLAR_FILTER`` names (validated: the SDK
    raises on an unknown name, limelight reports it and uses ``trace_based``)."""
    return _EXEMPLAR_FILTERS[env.OTEL_METRICS_EXEMPLAR_FILTER.read(environ).value]()


def build_sampler(config: Config) -> sampling.Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` / ``_ARG`` name (already validated)."""
    name = config.traces_sampler
    ratio = 1.0 if config.traces_sampler_arg is None else config.traces_sampler_arg
    if name == "always_on":
        return sampling.ALWAYS_ON
    if name == "always_off":
        return sampling.ALWAYS_OFF
    if name == "traceidratio":
        return sampling.TraceIdRatioBased(ratio)
    if name == "parentbased_always_off":
        return sampling.ParentBased(sampling.ALWAYS_OFF)
    if name == "parentbased_traceidratio":
        return sampling.ParentBased(sampling.TraceIdRatioBased(ratio))
    if name == "parentbased_always_on":
        return ParentBasedAlwaysOn()
    for ep in entry_points(group="opentelemetry_traces_sampler", name=name):
        try:
            factory = ep.load()
            sampler = factory(config.traces_sampler_arg)
            if isinstance(sampler, sampling.Sampler):
                return sampler
            raise TypeError(f"{ep.value} returned {sampler!r}, not a Sampler")
        except Exception as exc:
            _log.warning(
                "sampler failed to load; using parentbased_always_on", sampler=name, error=repr(exc)
            )
    return ParentBasedAlwaysOn()


_RECORD_AND_SAMPLE = sampling.Decision.RECORD_AND_SAMPLE
_DROP = sampling.Decision.DROP


class ParentBasedAlwaysOn(sampling.ParentBased):
    """``ParentBased(ALWAYS_ON)`` (the default sampler), deciding in one step.

    The same decisions, attributes and trace state as the SDK's composition of
    samplers: a root span is sampled, a child follows its parent's ``sampled``
    flag, local or remote. The SDK's version looks the parent up twice and goes
    through two sampler objects for every span.
    """

    def __init__(self) -> None:
        super().__init__(sampling.ALWAYS_ON)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> sampling.SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if parent is None or not parent.is_valid:
            return sampling.SamplingResult(_RECORD_AND_SAMPLE, attributes, None)
        if parent.trace_flags.sampled:
            return sampling.SamplingResult(_RECORD_AND_SAMPLE, attributes, parent.trace_state)
        return sampling.SamplingResult(_DROP, None, parent.trace_state)


class OnStartProcessor(SpanProcessor):
    """Calls every ``limelight_spans_enrich`` implementation as a span starts.

    Only added to the tracer provider when some plugin implements the hook.
    The implementations are already guarded by the plugin manager.
    """

    def __init__(self, callers: Sequence[Callable[..., Any]]) -> None:
        self._callers = tuple(callers)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for call in self._callers:
            call(span, parent_context)
