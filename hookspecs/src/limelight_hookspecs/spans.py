# mypy: disable-error-code="empty-body"
"""Span hooks: exporters and processors, sampling, enrichment.

A specification's body is its documentation only: pluggy never runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._markers import hookspec
from ._telemetry import TelemetryView

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span, SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler


@hookspec
def limelight_spans_provide_exporters(telemetry: TelemetryView) -> Sequence[SpanExporter]:
    """Contribute span exporters; the core batches for them.

    Each exporter gets its own batch processor configured from ``OTEL_BSP_*``,
    whose dropped spans are counted in ``limelight_spans_dropped_total`` and
    whose failed exports in ``limelight_export_errors_total``. Check
    ``telemetry.config.exporter_enabled("traces", name)``.

    :param telemetry: the telemetry being started.
    :return: span exporters, possibly empty.
    """


@hookspec
def limelight_spans_provide_processors(telemetry: TelemetryView) -> Sequence[SpanProcessor]:
    """Contribute span processors added to the tracer provider as given.

    For processors that do their own batching or need every span synchronously.

    :param telemetry: the telemetry being started.
    :return: span processors, possibly empty.
    """


@hookspec(firstresult=True)
def limelight_spans_provide_sampler(telemetry: TelemetryView) -> Sampler | None:
    """Provide the sampler instead of the one ``OTEL_TRACES_SAMPLER`` names.

    Called once per telemetry start, before the tracer provider is built.
    Stops at first non-None result. The first plugin in priority order that
    returns a sampler wins; a value that is not a sampler is reported as that
    plugin's failure and the next plugin is asked.

    :param telemetry: the telemetry being started.
    :return: a sampler, or ``None`` to leave the decision to the configuration.
    """


@hookspec
def limelight_spans_enrich(span: Span, parent_context: Context | None) -> None:
    """Enrich a span as it starts (add attributes from the context, for example).

    Called for every span as it starts, in plugin priority order, and only
    when at least one plugin implements it: the core then adds one span
    processor that calls every implementation (bound once, not through
    pluggy); otherwise span start pays nothing for this hook. What it returns
    is ignored; an implementation that raises is reported once and the span
    goes on.

    :param span: the span that just started (writable).
    :param parent_context: the context it was started in.
    """
