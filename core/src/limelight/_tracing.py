"""Sampler construction and span-start enrichment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

import structlog
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor, sampling

from limelight_hookspecs import Config

__all__ = ["OnStartProcessor", "build_sampler"]

_log = structlog.get_logger("limelight")


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
        return sampling.ParentBased(sampling.ALWAYS_ON)
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
    return sampling.ParentBased(sampling.ALWAYS_ON)


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

    def on_end(self, span: Any) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
