"""The metric store as OTLP: a snapshot converted to SDK ``MetricsData``, pushed periodically,
with the aggregation temporality ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` asks for."""

from __future__ import annotations

import enum
import functools
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import attrs
from opentelemetry.sdk.metrics import (
    Counter,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics import Exemplar as OtelExemplar
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
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
    EnvVar,
    Exemplar,
    HistogramPoint,
    MetricDeclaration,
    MetricFamily,
    MetricKind,
    MetricsSnapshot,
    NumberPoint,
    SelfMetrics,
    SnapshotSource,
)

from ._logs import LogGate

__all__ = [
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OtlpConverter",
    "OtlpMetricsReader",
    "Temporality",
    "api_temporality",
    "to_metrics_data",
]

_log = get_logger("limelight.otlp")
_CUMULATIVE = AggregationTemporality.CUMULATIVE
_DELTA = AggregationTemporality.DELTA


class Temporality(enum.StrEnum):
    """What ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` may ask for."""

    CUMULATIVE = "cumulative"
    """Every metric cumulative: each push sends the totals since the start."""
    DELTA = "delta"
    """Counters and histograms as deltas (what changed since the previous push);
    additive gauges (UpDownCounters) cumulative."""
    LOWMEMORY = "lowmemory"
    """As ``delta``, except observed counters (asynchronous: the process's CPU
    time), which stay cumulative."""


def _parse_temporality(raw: str) -> Temporality:
    value = raw.strip().lower()
    try:
        return Temporality(value)
    except ValueError:
        raise ValueError("expected cumulative, delta or lowmemory") from None


OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE = EnvVar(
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    Temporality.CUMULATIVE,
    _parse_temporality,
    "Aggregation temporality of OTLP metric pushes, by the OpenTelemetry specification's "
    "rules (case-insensitive): cumulative (every metric); delta (counters and histograms "
    "send what changed since the previous push, additive gauges stay cumulative); "
    "lowmemory (as delta, but observed counters such as process_cpu_seconds_total stay "
    "cumulative). For backends that want deltas (Datadog, Dynatrace, New Relic).",
    "delta",
)


def temporality(declaration: MetricDeclaration, preference: Temporality) -> AggregationTemporality:
    """The aggregation temporality *declaration* is exported with under *preference*
    (an absolute gauge has none in OTLP: its points are sent as they are)."""
    kind = declaration.kind
    if preference is Temporality.CUMULATIVE or kind in (MetricKind.GAUGE_ADD, MetricKind.GAUGE_SET):
        return _CUMULATIVE
    if kind is MetricKind.COUNTER and declaration.observed and preference is Temporality.LOWMEMORY:
        return _CUMULATIVE
    return _DELTA


def api_temporality(preference: Temporality) -> dict[type, AggregationTemporality]:
    """*preference* as the OpenTelemetry SDK maps it per instrument type, for the
    reader of the OpenTelemetry API instruments (what opentelemetry-exporter-otlp
    reads from the same variable)."""
    delta = preference is not Temporality.CUMULATIVE
    observable_counter = preference is Temporality.DELTA
    return {
        Counter: _DELTA if delta else _CUMULATIVE,
        UpDownCounter: _CUMULATIVE,
        HistogramInstrument: _DELTA if delta else _CUMULATIVE,
        ObservableCounter: _DELTA if observable_counter else _CUMULATIVE,
        ObservableUpDownCounter: _CUMULATIVE,
        ObservableGauge: _CUMULATIVE,
    }


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


def _exemplars(exemplars: Sequence[Exemplar | None], since: float) -> list[OtelExemplar]:
    """The exemplars taken at or after *since* (seconds since the epoch)."""
    return [_exemplar(ex) for ex in exemplars if ex is not None and ex.timestamp >= since]


_SeriesKey = tuple[str, tuple[str, ...]]


def _key(name: str, labels: Mapping[str, str]) -> _SeriesKey:
    # a series' labels come in its metric's declared order: the values name it
    return name, tuple(labels.values())


def _lower(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _higher(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


@attrs.frozen
class Conversion:
    """One push: the payload, and the state a delta export keeps once it was sent.

    :param data: what to export.
    :param baseline: every delta series' cumulative state as of this snapshot.
    :param extremes: the histogram min/max read for this push, per series.
    :param time_ns: the snapshot's time, the start of the next delta interval.
    """

    data: MetricsData
    baseline: dict[_SeriesKey, Any]
    extremes: dict[_SeriesKey, tuple[float | None, float | None]]
    time_ns: int


class OtlpConverter:
    """Store snapshots as OTLP data with the temporality the backend asks for.

    Cumulative metrics are the snapshot as it is. A delta metric's point is what
    changed since the previous *sent* push (:meth:`sent`): a counter's increase,
    a histogram's new observations per bucket with their sum and, from an
    :class:`~limelight.metrics.IntervalReader` snapshot, the min/max of that
    interval; a recorded series that did not change is not sent, as the
    OpenTelemetry SDK sends no point for an attribute set without measurements
    (an observed counter was read, so it sends its 0, as an asynchronous counter
    does). A push that failed
    is folded into the next one (the delta runs from the last push that was
    sent), so a failed export loses nothing. A total that went down (a series
    removed and made again) starts a new interval from zero.

    :param preference: the temporality preference.
    :param resource: the resource every payload carries.
    :param scope: the instrumentation scope of the store's metrics.
    """

    def __init__(
        self,
        preference: Temporality = Temporality.CUMULATIVE,
        resource: Resource | None = None,
        scope: InstrumentationScope | None = None,
    ) -> None:
        self.preference = Temporality(preference)
        self.resource = resource if resource is not None else Resource.get_empty()
        self._scope = scope
        self._baseline: dict[_SeriesKey, Any] = {}
        self._pending: dict[_SeriesKey, tuple[float | None, float | None]] = {}
        self._sent_ns: int | None = None

    @property
    def scope(self) -> InstrumentationScope:
        """The instrumentation scope of the store's metrics (limelight's, by default:
        its version is read at the first push, not when telemetry starts)."""
        if self._scope is None:
            self._scope = _scope()
        return self._scope

    def convert(self, snapshot: MetricsSnapshot) -> Conversion:
        """The OTLP payload of *snapshot*; nothing is kept until :meth:`sent`."""
        now = snapshot.time_ns
        baseline: dict[_SeriesKey, Any] = {}
        extremes: dict[_SeriesKey, tuple[float | None, float | None]] = {}
        metrics = []
        for family in snapshot:
            if not family.points:
                continue
            metric: Metric | None
            if temporality(family.declaration, self.preference) is _CUMULATIVE:
                metric = self._cumulative(family, now)
            else:
                metric = self._delta(family, now, baseline, extremes)
            if metric is not None:
                metrics.append(metric)
        data = MetricsData(
            resource_metrics=[
                ResourceMetrics(
                    resource=self.resource,
                    scope_metrics=[ScopeMetrics(scope=self.scope, metrics=metrics, schema_url="")],
                    schema_url="",
                )
            ]
        )
        return Conversion(data, baseline, extremes, now)

    def sent(self, conversion: Conversion) -> None:
        """*conversion* reached the backend: the next deltas start from it."""
        self._baseline = conversion.baseline
        self._pending = {}
        self._sent_ns = conversion.time_ns

    def failed(self, conversion: Conversion) -> None:
        """*conversion* did not: its min/max are kept for the next push, which covers it too."""
        self._pending = conversion.extremes

    # -- cumulative -----------------------------------------------------------------------

    def _cumulative(self, family: MetricFamily, now: int) -> Metric:
        decl = family.declaration
        start = family.start_time_ns
        data: Sum | Gauge | Histogram
        if decl.kind is MetricKind.HISTOGRAM:
            hist_points: Sequence[HistogramPoint] = family.points  # type: ignore[assignment]
            data = Histogram(
                data_points=[
                    _histogram_point(
                        p.labels,
                        start,
                        now,
                        p.count,
                        p.sum,
                        p.bucket_counts,
                        p.bounds,
                        (p.min, p.max),
                        _exemplars(p.exemplars, 0.0),
                    )
                    for p in hist_points
                ],
                aggregation_temporality=_CUMULATIVE,
            )
            return Metric(name=decl.name, description=decl.help, unit=decl.unit, data=data)
        number_points: Sequence[NumberPoint] = family.points  # type: ignore[assignment]
        points = [
            NumberDataPoint(
                attributes=dict(p.labels),
                start_time_unix_nano=start,
                time_unix_nano=now,
                value=p.value,
                exemplars=_exemplars((p.exemplar,), 0.0),
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

    # -- delta ----------------------------------------------------------------------------

    def _delta(
        self,
        family: MetricFamily,
        now: int,
        baseline: dict[_SeriesKey, Any],
        extremes: dict[_SeriesKey, tuple[float | None, float | None]],
    ) -> Metric | None:
        decl = family.declaration
        sent = self._sent_ns
        # the interval starts at the last push sent, or when the metric was declared
        start = family.start_time_ns if sent is None else max(sent, family.start_time_ns)
        since = start / 1e9  # exemplars taken in this interval only
        data: Sum | Histogram
        if decl.kind is MetricKind.HISTOGRAM:
            hist_points: list[HistogramDataPoint] = []
            for p in family.points:
                assert isinstance(p, HistogramPoint)
                key = _key(decl.name, p.labels)
                baseline[key] = p
                pending = self._pending.get(key, (None, None))
                interval = (_lower(pending[0], p.min), _higher(pending[1], p.max))
                extremes[key] = interval
                before: HistogramPoint | None = self._baseline.get(key)
                counts = p.bucket_counts
                total = p.sum
                if before is not None and all(
                    b <= c for b, c in zip(before.bucket_counts, counts, strict=True)
                ):
                    counts = tuple(c - b for b, c in zip(before.bucket_counts, counts, strict=True))
                    total = p.sum - before.sum
                count = sum(counts)
                if count == 0:
                    continue
                hist_points.append(
                    _histogram_point(
                        p.labels,
                        start,
                        now,
                        count,
                        total,
                        counts,
                        p.bounds,
                        interval,
                        _exemplars(p.exemplars, since),
                    )
                )
            if not hist_points:
                return None
            data = Histogram(data_points=hist_points, aggregation_temporality=_DELTA)
        else:
            number_points: list[NumberDataPoint] = []
            for q in family.points:
                assert isinstance(q, NumberPoint)
                key = _key(decl.name, q.labels)
                baseline[key] = q.value
                previous = self._baseline.get(key, 0.0)
                value = q.value - previous if q.value >= previous else q.value
                if value == 0 and not decl.observed:
                    # nothing recorded in the interval; an observed counter was still read
                    continue
                number_points.append(
                    NumberDataPoint(
                        attributes=dict(q.labels),
                        start_time_unix_nano=start,
                        time_unix_nano=now,
                        value=value,
                        exemplars=_exemplars((q.exemplar,), since),
                    )
                )
            if not number_points:
                return None
            data = Sum(data_points=number_points, aggregation_temporality=_DELTA, is_monotonic=True)
        return Metric(name=decl.name, description=decl.help, unit=decl.unit, data=data)


def _histogram_point(
    labels: Mapping[str, str],
    start: int,
    now: int,
    count: int,
    total: float,
    counts: Sequence[int],
    bounds: Sequence[float],
    extremes: tuple[float | None, float | None],
    exemplars: list[OtelExemplar],
) -> HistogramDataPoint:
    low, high = extremes
    return HistogramDataPoint(
        attributes=dict(labels),
        start_time_unix_nano=start,
        time_unix_nano=now,
        count=count,
        sum=total,
        bucket_counts=list(counts),
        explicit_bounds=list(bounds),
        # unset when unknown (no observation in the interval): the fields are optional
        min=low,  # type: ignore[arg-type]
        max=high,  # type: ignore[arg-type]
        exemplars=exemplars,
    )


def to_metrics_data(
    snapshot: MetricsSnapshot, resource: Resource, scope: InstrumentationScope | None = None
) -> MetricsData:
    """A store snapshot as OpenTelemetry SDK ``MetricsData`` (cumulative temporality).

    Counters become monotonic sums, additive gauges non-monotonic sums,
    absolute gauges gauges, histograms explicit-bucket histograms with the
    store's own bounds, min, max and exemplars (a counter's exemplar too).
    Metrics without series are left out. :class:`OtlpConverter` gives the other
    temporalities.
    """
    return OtlpConverter(Temporality.CUMULATIVE, resource, scope).convert(snapshot).data


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
    :param temporality: the temporality preference (see :class:`OtlpConverter`);
        for delta min/max the store is read through its ``interval_reader()``.
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
        temporality: Temporality = Temporality.CUMULATIVE,
    ) -> None:
        self.store = store
        self.temporality = Temporality(temporality)
        self._source: SnapshotSource = store
        interval_reader = getattr(store, "interval_reader", None)
        if self.temporality is not Temporality.CUMULATIVE and interval_reader is not None:
            # histogram min/max per push, not since the start
            self._source = interval_reader()
        self.api_reader = api_reader
        self.resource = resource
        self.exporter = exporter
        self.interval = interval
        self.timeout = timeout
        self.name = name
        self._gate = gate
        self._converter = OtlpConverter(self.temporality, resource)
        self._pushing = threading.Lock()  # one push at a time: deltas follow each other
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

    def after_fork(self, resource: Resource) -> None:
        """In a child forked after :meth:`start`: push the child's metrics as its own.

        The core calls it once the store holds the child's own values (see
        :class:`~limelight_hookspecs.StoreReader`): exports carry *resource* (the
        child's ``process.pid`` and ``service.instance.id``), delta temporality
        starts afresh, the exporter makes a connection of its own, and the export
        thread, which the fork did not copy, runs again. The OpenTelemetry API
        instruments are left out in the child: their SDK ``MeterProvider`` holds
        the parent's values and cannot be reset.
        """
        if not self._worker.started:
            return
        self.resource = resource
        self._converter = OtlpConverter(self.temporality, resource)
        self._pushing = threading.Lock()
        self.api_reader = None
        after_fork = getattr(self.exporter, "after_fork", None)
        if after_fork is not None:
            after_fork()
        self._worker.restart()

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
        with self._pushing:
            return self._export_once()

    def _export_once(self) -> bool:
        conversion: Conversion | None = None
        with suppressed():
            try:
                conversion = self._converter.convert(self._source.snapshot())
                data = self._with_api_metrics(conversion.data)
                with self._gate.exporting() if self._gate is not None else nullcontext():
                    result = self.exporter.export(data, timeout_millis=self.timeout * 1000)
                error = None if result is MetricExportResult.SUCCESS else "export returned FAILURE"
            except Exception as exc:
                error = repr(exc)
        if conversion is not None:
            if error is None:
                self._converter.sent(conversion)
            else:
                self._converter.failed(conversion)
        if error is None:
            if self._gate is not None:
                self._gate.reset()
            self._health.succeeded()
            return True
        self._health.failed(error)
        return False
