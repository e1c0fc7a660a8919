"""The metric store as OTLP: a snapshot converted to SDK ``MetricsData``, pushed periodically."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from contextlib import nullcontext
from importlib.metadata import PackageNotFoundError, version

from opentelemetry.sdk.metrics import Exemplar as OtelExemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from limelight.export import ExportHealth, ExportWorker, suppressed
from limelight.plugins import get_logger
from limelight_hookspecs import (
    Exemplar,
    HistogramPoint,
    MetricFamily,
    MetricKind,
    MetricsSnapshot,
    NumberPoint,
    SelfMetrics,
    SnapshotSource,
)

from ._logs import LogGate

__all__ = ["OtlpMetricsReader", "to_metrics_data"]

_log = get_logger("limelight.otlp")
_CUMULATIVE = AggregationTemporality.CUMULATIVE


@functools.cache
def _scope() -> InstrumentationScope:
    try:
        core_version: str | None = version("limelight")
    except PackageNotFoundError:  # pragma: no cover - source tree
        core_version = None
    return InstrumentationScope("limelight", core_version)


def _exemplar(ex: Exemplar) -> OtelExemplar:
    return OtelExemplar(
        filtered_attributes={},
        value=ex.value,
        time_unix_nano=int(ex.timestamp * 1e9),
        span_id=int(ex.span_id, 16) if ex.span_id else None,
        trace_id=int(ex.trace_id, 16) if ex.trace_id else None,
    )


def _metric(family: MetricFamily, now: int) -> Metric | None:
    if not family.points:
        return None
    decl = family.declaration
    start = family.start_time_ns
    data: Sum | Gauge | Histogram
    if decl.kind is MetricKind.HISTOGRAM:
        hist_points: Sequence[HistogramPoint] = family.points  # type: ignore[assignment]
        data = Histogram(
            data_points=[
                HistogramDataPoint(
                    attributes=dict(p.labels),
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    count=p.count,
                    sum=p.sum,
                    bucket_counts=list(p.bucket_counts),
                    explicit_bounds=list(p.bounds),
                    # Prometheus histograms keep no min/max: left unset in OTLP
                    min=None,  # type: ignore[arg-type]
                    max=None,  # type: ignore[arg-type]
                    exemplars=[_exemplar(ex) for ex in p.exemplars if ex is not None],
                )
                for p in hist_points
            ],
            aggregation_temporality=_CUMULATIVE,
        )
    else:
        number_points: Sequence[NumberPoint] = family.points  # type: ignore[assignment]
        points = [
            NumberDataPoint(
                attributes=dict(p.labels),
                start_time_unix_nano=start,
                time_unix_nano=now,
                value=p.value,
            )
            for p in number_points
        ]
        if decl.kind is MetricKind.GAUGE_SET:
            data = Gauge(data_points=points)
        else:
            data = Sum(
                data_points=points,
                aggregation_temporality=_CUMULATIVE,
                is_monotonic=decl.kind is MetricKind.COUNTER,
            )
    return Metric(name=decl.name, description=decl.help, unit=decl.unit, data=data)


def to_metrics_data(
    snapshot: MetricsSnapshot, resource: Resource, scope: InstrumentationScope | None = None
) -> MetricsData:
    """A store snapshot as OpenTelemetry SDK ``MetricsData`` (cumulative temporality).

    Counters become monotonic sums, additive gauges non-monotonic sums,
    absolute gauges gauges, histograms explicit-bucket histograms with the
    store's own bounds and exemplars. Metrics without series are left out.
    """
    metrics = [m for m in (_metric(f, snapshot.time_ns) for f in snapshot) if m is not None]
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=resource,
                scope_metrics=[
                    ScopeMetrics(scope=scope or _scope(), metrics=metrics, schema_url="")
                ],
                schema_url="",
            )
        ]
    )


class OtlpMetricsReader:
    """Pushes the metric store over OTLP every *interval* seconds and on :meth:`force_flush`.

    Exports run in one worker thread; :meth:`force_flush` and :meth:`shutdown`
    wait for it with a deadline, so a down or slow endpoint never holds the
    caller longer than its timeout. When telemetry stops, the core calls
    :meth:`force_flush` (the last push) and then :meth:`shutdown`. A failed export is counted in
    ``limelight_export_errors_total{exporter}``; a warning is logged when
    failures start and an info line when they stop, never once per export.

    :param store: what is read (``telemetry.store``).
    :param resource: the resource every export carries.
    :param exporter: the OTLP metric exporter.
    :param interval: seconds between two exports.
    :param timeout: seconds one export may take.
    :param self_metrics: where failures are counted.
    :param gate: the exporter's log gate, reopened on success.
    :param name: the exporter label in ``limelight_export_errors_total``.
    :param api_reader: a reader on the core's OpenTelemetry ``MeterProvider``;
        the instruments libraries create through the OpenTelemetry metrics API
        are read from it and sent in the same export as the store.
    """

    def __init__(
        self,
        store: SnapshotSource,
        resource: Resource,
        exporter: MetricExporter,
        interval: float,
        timeout: float,
        self_metrics: SelfMetrics,
        gate: LogGate | None = None,
        name: str = "otlp",
        api_reader: InMemoryMetricReader | None = None,
    ) -> None:
        self.store = store
        self.api_reader = api_reader
        self.resource = resource
        self.exporter = exporter
        self.interval = interval
        self.timeout = timeout
        self.name = name
        self._gate = gate
        self._scope = _scope()
        self._health = ExportHealth(
            self_metrics,
            name,
            "metric export",
            "counted in limelight_export_errors_total until it recovers",
        )
        self._worker = ExportWorker(f"limelight-metric-export-{name}", interval, self._push)

    @property
    def failures(self) -> int:
        """Failed exports so far."""
        return self._health.failures

    # -- StoreReader ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the export thread."""
        self._worker.start()

    def force_flush(self, timeout: float) -> bool:
        """Export the store now; true when the export finished (successfully) within *timeout*."""
        failures = self._health.failures
        return self._worker.flush(timeout) and self._health.failures == failures

    def shutdown(self, timeout: float) -> None:
        """Stop the thread and shut the exporter down, within *timeout*.

        It does not push: the core's :meth:`force_flush` just before it was the last push.
        """
        deadline = time.monotonic() + timeout
        if not self._worker.alive:
            return
        self._worker.close(timeout)
        try:
            with self._gate.exporting() if self._gate is not None else nullcontext():
                self.exporter.shutdown(timeout_millis=max(0.0, deadline - time.monotonic()) * 1000)
        except Exception as exc:
            _log.warning("metric exporter failed to shut down", exporter=self.name, error=repr(exc))

    def _with_api_metrics(self, data: MetricsData) -> MetricsData:
        """*data* plus what OpenTelemetry API instruments recorded, in one payload."""
        reader = self.api_reader
        if reader is None:
            return data
        extra = reader.get_metrics_data()
        if extra is None:
            return data
        scopes = [
            scope
            for resource_metrics in extra.resource_metrics
            for scope in resource_metrics.scope_metrics
            if scope.metrics
        ]
        if not scopes:
            return data
        [ours] = data.resource_metrics
        return MetricsData(
            resource_metrics=[
                ResourceMetrics(
                    resource=ours.resource,
                    scope_metrics=[*ours.scope_metrics, *scopes],
                    schema_url=ours.schema_url,
                )
            ]
        )

    def _push(self, flush: bool) -> None:
        # every run pushes the whole store: a periodic run and a flush are the same
        self.export_once()

    def export_once(self) -> bool:
        """Read the store and export it (in the calling thread); true on success."""
        with suppressed():
            try:
                data = to_metrics_data(self.store.snapshot(), self.resource, self._scope)
                data = self._with_api_metrics(data)
                with self._gate.exporting() if self._gate is not None else nullcontext():
                    result = self.exporter.export(data, timeout_millis=self.timeout * 1000)
                error = None if result is MetricExportResult.SUCCESS else "export returned FAILURE"
            except Exception as exc:
                error = repr(exc)
        if error is None:
            if self._gate is not None:
                self._gate.reset()
            self._health.succeeded()
            return True
        self._health.failed(error)
        return False
