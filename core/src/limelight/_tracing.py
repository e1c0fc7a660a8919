"""Sampler construction and span-start enrichment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor, sampling
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from limelight_hookspecs import Config

from ._log import get_logger

__all__ = ["OnStartProcessor", "ParentBasedAlwaysOn", "build_sampler"]

_log = get_logger("limelight")


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
