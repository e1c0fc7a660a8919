"""The metric store: one per process, read by every exporter.

Values live in prometheus_client value cells (so Prometheus multiprocess mode
works unchanged); every exporter reads them through :meth:`MetricStore.snapshot`
or, for Prometheus text exposition, through :attr:`MetricStore.registry`.
An observation is therefore recorded exactly once whatever the number of
exporters, and histogram buckets are the same in every sink.

Emission goes through *bound children*: one object per label set, created on
first use and cached, that add straight into prometheus_client's value cells.

Values read from elsewhere (the process's CPU time and memory, the garbage
collector's counts) are set by *observers*: functions the store calls before
every read, as OpenTelemetry calls the callbacks of its observable instruments.
"""

from __future__ import annotations

import bisect
import enum
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs
import prometheus_client
from opentelemetry import trace as _otel_trace
from prometheus_client.samples import Exemplar as _Exemplar
from prometheus_client.samples import Sample

from limelight_hookspecs import (
    Exemplar,
    HistogramPoint,
    MetricDeclaration,
    MetricFamily,
    MetricKind,
    MetricsSnapshot,
    NumberPoint,
)

from ._context import current_span as _current_span
from ._failures import report_failure
from ._log import get_logger
from ._sdk.prometheus import cell_add as _cell_add
from ._sdk.prometheus import cell_value, counter_cell, fork_reset_available, histogram_cells
from ._sdk.prometheus import reset_after_fork as _reset_after_fork
from ._sdk.spans import trace_flags as _trace_flags

_INVALID_SPAN = _otel_trace.INVALID_SPAN

__all__ = [
    "OVERFLOW_LABEL_VALUE",
    "SELF_METRICS",
    "BoundCounter",
    "BoundGaugeAdd",
    "BoundGaugeSet",
    "BoundHistogram",
    "Counter",
    "GaugeAdd",
    "GaugeSet",
    "Histogram",
    "IntervalReader",
    "Metric",
    "MetricConflictError",
    "MetricStore",
    "ProcessMetricDeclaration",
]

OVERFLOW_LABEL_VALUE = "_overflow"
"""Every label of the overflow series has this value."""

SPANS_DROPPED = MetricDeclaration(
    "limelight_spans_dropped_total",
    MetricKind.COUNTER,
    "Spans lost before export (queue full or exporter failure).",
    unit="1",
)
LOGS_DROPPED = MetricDeclaration(
    "limelight_logs_dropped_total",
    MetricKind.COUNTER,
    "Log records lost before export (queue full, exporter failure or shutdown timeout).",
    unit="1",
)
EXPORT_ERRORS = MetricDeclaration(
    "limelight_export_errors_total",
    MetricKind.COUNTER,
    "Exports that failed, by exporter.",
    unit="1",
    label_names=("exporter",),
    series_limit=100,
)
SERIES_OVERFLOW = MetricDeclaration(
    "limelight_series_overflow_total",
    MetricKind.COUNTER,
    "Label-set lookups redirected to the overflow series because the metric hit its "
    "series limit, by metric.",
    unit="1",
    label_names=("metric",),
    series_limit=1000,
)
SELF_METRICS: tuple[MetricDeclaration, ...] = (
    SPANS_DROPPED,
    LOGS_DROPPED,
    EXPORT_ERRORS,
    SERIES_OVERFLOW,
)
"""limelight's own metrics, declared by every store."""


class MetricConflictError(ValueError):
    """A metric name was declared twice with a different shape."""


@attrs.frozen
class ProcessMetricDeclaration(MetricDeclaration):
    """A metric describing the process that reports it (its CPU time, its memory).

    Values of two processes are never combined: in Prometheus multiprocess
    mode an absolute gauge is kept per live process, labelled ``pid``
    (prometheus_client's ``liveall``), where the gauges of other metrics keep
    the most recent value any process set. (A counter is summed over the
    processes that wrote it, as every counter is: one that must stay per
    process declares a ``pid`` label of its own.)
    """


_bisect_left = bisect.bisect_left
_monotonic = time.monotonic
_time = time.time
_isnan = math.isnan
_INF = math.inf
_log = get_logger("limelight")

_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()
"""Whether this interpreter runs with the GIL. A histogram's min/max update is a
comparison and a list store with no call, loop or allocation between them, so under
the GIL no other thread runs in between; a free-threaded build takes a lock."""

_MISSED_EXEMPLAR_RETRY = 0.01
"""Seconds before a counter looks for a sampled span again after an increment made
outside one (at most 100 lookups a second per series, never one per increment)."""


def _link_exemplar(cell: Any, value: float) -> bool:
    """Give *cell* the current sampled span as its exemplar; false when there is none."""
    span = _current_span()
    if span is _INVALID_SPAN:
        return False
    ctx = span.get_span_context()
    if not _trace_flags(ctx) & 1:  # not sampled
        return False
    cell.set_exemplar(
        _Exemplar(
            {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"},
            value,
            _time(),
        )
    )
    return True


def _label_value(value: object) -> str:
    """The exported label value: ``str(value)``, a str subclass as its string value."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    return str(value)


class _Exact:
    """A label value in an alias key: equal to values of its own type only.

    ``200.0 == 200`` and ``True == 1`` with equal hashes, but their label values
    differ (``"200.0"``, ``"True"``); wrapped, the alias of ``(200,)`` does not
    answer a lookup of ``(200.0,)``. Only consulted when hashes match, so the
    lookup of string label values never calls it.
    """

    __slots__ = ("_hash", "kind", "value")

    def __init__(self, value: object) -> None:
        self.value = value
        self.kind = type(value)
        self._hash = hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if type(other) is _Exact:
            return other.kind is self.kind and other.value == self.value
        return type(other) is self.kind and other == self.value


def _alias_key(values: tuple[object, ...]) -> tuple[object, ...] | None:
    """The alias key of *values*, or ``None`` when they cannot be cached: a value of
    a type whose equal values print differently (``-0.0`` and ``0.0``, ``Decimal``)
    or whose text can change (arbitrary objects)."""
    key: list[object] = []
    for value in values:
        kind = type(value)
        if kind is str:
            key.append(value)
        elif isinstance(value, str):
            key.append(str.__str__(value))  # equal to its value, and labelled so
        elif (
            kind is int
            or kind is bool
            or value is None
            or isinstance(value, enum.Enum)
            or (kind is float and value != 0.0 and not _isnan(value))  # type: ignore[arg-type]
        ):
            key.append(_Exact(value))
        else:
            return None
    return tuple(key)


class BoundCounter:
    """One series of a counter. ``inc(amount=1)``; *amount* must be >= 0.

    Adds straight into the prometheus_client value cell (prometheus_client's
    own ``Counter.inc`` spends three more calls on checks done here once).

    An increment inside a sampled span gives the series an exemplar with the
    span's trace and span ids (OpenMetrics exposition, OTLP), at most once per
    ``exemplar_interval`` seconds: between two, an increment costs one clock
    read more. After an increment outside any sampled span, the next look for
    one is 10 ms later (or at the next increment when the interval is shorter).
    """

    __slots__ = ("_add", "_cell", "_due", "_interval", "_retry", "inc", "labels")

    def __init__(
        self, child: Any, labels: Mapping[str, str], exemplar_interval: float | None = None
    ) -> None:
        self._add = _cell_add(child)
        self.labels = labels
        self._cell = counter_cell(child) if exemplar_interval is not None else None
        self._interval = exemplar_interval or 0.0
        self._retry = min(self._interval, _MISSED_EXEMPLAR_RETRY)
        self._due = 0.0
        self.inc = self._inc if self._cell is None else self._inc_linked

    def _inc(self, amount: float = 1) -> None:
        """Add *amount* (>= 0)."""
        if amount < 0:
            raise ValueError("a counter can only be incremented by a non-negative amount")
        self._add(amount)

    def _after_fork(self) -> None:
        self._due = 0.0

    def _inc_linked(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter can only be incremented by a non-negative amount")
        self._add(amount)
        if _monotonic() < self._due:
            return
        linked = _link_exemplar(self._cell, amount)
        self._due = _monotonic() + (self._interval if linked else self._retry)


class BoundGaugeAdd:
    """One series of an additive gauge. ``inc(amount=1)``, ``dec(amount=1)``.

    ``add(amount)`` adds a signed *amount* with one call less (no default, no
    negation): ``add(1)`` and ``add(-1)`` on a hot path.
    """

    __slots__ = ("add", "labels")

    def __init__(self, child: Any, labels: Mapping[str, str]) -> None:
        self.add = _cell_add(child)
        self.labels = labels

    def inc(self, amount: float = 1) -> None:
        """Add *amount*."""
        self.add(amount)

    def _after_fork(self) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        """Subtract *amount*."""
        self.add(-amount)


class BoundGaugeSet:
    """One series of an absolute gauge. ``set(value)``."""

    __slots__ = ("labels", "set")

    def __init__(self, child: Any, labels: Mapping[str, str]) -> None:
        self.set = child.set
        self.labels = labels

    def _after_fork(self) -> None:
        pass


class BoundHistogram:
    """One series of a histogram. ``observe(value)``.

    The bucket is found by bisection over the bounds (prometheus_client's own
    ``observe`` scans them linearly) and the value recorded in the same
    prometheus_client cells, so exposition and multiprocess mode are unchanged.
    The smallest and largest values observed are kept beside them (NaN never
    counts), for OTLP's min and max.

    Inside a sampled span the observation carries the span's trace and span
    ids as an exemplar (shown in OpenMetrics exposition and exported over OTLP).
    Each bucket takes a new exemplar at most once per ``exemplar_interval``
    seconds, so the cost of linking is paid once per bucket and interval, not
    per observation; a rare slow bucket gets the exemplar of its first
    observation at once.
    """

    __slots__ = (
        "_bounds",
        "_buckets",
        "_due",
        "_extremes",
        "_inner",
        "_interval",
        "_lock",
        "_sum",
        "_windows",
        "labels",
        "observe",
    )

    def __init__(
        self,
        child: Any,
        labels: Mapping[str, str],
        bounds: tuple[float, ...],
        exemplar_interval: float | None,
        windows: int = 0,
    ) -> None:
        self.labels = labels
        self._bounds = bounds
        # [min, max] since the series began, and one pair per open IntervalReader
        self._extremes = [_INF, -_INF]
        self._windows = [[_INF, -_INF] for _ in range(windows)]
        self._lock = threading.Lock()
        found = histogram_cells(child, len(bounds))
        if found is None:
            # an unexpected prometheus_client layout: use its public observe()
            self._buckets: tuple[Any, ...] = ()
            self._sum: Any = child.observe
            self._interval = 0.0
            self._due: list[float] = []
            self._inner = self._observe_public
        else:
            cells, total = found
            self._buckets = cells
            self._sum = total.inc
            self._interval = exemplar_interval or 0.0
            self._due = [0.0] * (len(bounds) + 1)
            self._inner = self._observe if exemplar_interval is None else self._observe_linked
        self.observe = self._inner if _GIL else self._observe_locked

    def _widen(self, value: float) -> None:
        # the windows of IntervalReaders; a reader swaps a pair for a new one when it reads
        for pair in self._windows:
            if value < pair[0]:  # noqa: PLR1730 - min() would let a thread in
                pair[0] = value
            if value > pair[1]:  # noqa: PLR1730
                pair[1] = value

    def _observe_public(self, value: float) -> None:
        extremes = self._extremes
        if value < extremes[0]:  # noqa: PLR1730 - min() would let a thread in
            extremes[0] = value
        if value > extremes[1]:  # noqa: PLR1730
            extremes[1] = value
        if self._windows:
            self._widen(value)
        self._sum(value)

    def _observe(self, value: float) -> None:
        # min/max before the counts, so a read that sees an observation counted
        # (buckets first, extremes last) sees its value in min/max too
        extremes = self._extremes
        if value < extremes[0]:  # noqa: PLR1730 - min() would let a thread in
            extremes[0] = value
        if value > extremes[1]:  # noqa: PLR1730
            extremes[1] = value
        if self._windows:
            self._widen(value)
        self._sum(value)
        # NaN compares false with every bound: count it in +Inf, not the first bucket
        index = _bisect_left(self._bounds, value) if not _isnan(value) else len(self._bounds)
        self._buckets[index].inc(1)

    def _observe_linked(self, value: float) -> None:
        extremes = self._extremes
        if value < extremes[0]:  # noqa: PLR1730 - min() would let a thread in
            extremes[0] = value
        if value > extremes[1]:  # noqa: PLR1730
            extremes[1] = value
        if self._windows:
            self._widen(value)
        index = _bisect_left(self._bounds, value) if not _isnan(value) else len(self._bounds)
        self._sum(value)
        cell = self._buckets[index]
        cell.inc(1)
        span = _current_span()
        if span is _INVALID_SPAN:
            return
        ctx = span.get_span_context()
        if not _trace_flags(ctx) & 1:  # not sampled
            return
        now = _monotonic()
        if now < self._due[index]:
            return
        self._due[index] = now + self._interval
        cell.set_exemplar(
            _Exemplar(
                {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"},
                value,
                _time(),
            )
        )

    def _observe_locked(self, value: float) -> None:
        with self._lock:
            self._inner(value)

    def _after_fork(self) -> None:
        # a thread of the parent may have held the lock at the fork
        self._lock = threading.Lock()
        self._extremes = [_INF, -_INF]
        self._windows = [[_INF, -_INF] for _ in self._windows]
        self._due = [0.0] * len(self._due)

    def _open_window(self) -> None:
        with self._lock:
            self._windows.append([_INF, -_INF])

    def _take_window(self, index: int) -> tuple[float | None, float | None]:
        """The (min, max) of window *index* since it was last taken, and a new window."""
        with self._lock:
            pair = self._windows[index]
            self._windows[index] = [_INF, -_INF]
        return _extremes(pair)

    def extremes(self) -> tuple[float | None, float | None]:
        """The smallest and largest values observed, ``(None, None)`` before any."""
        return _extremes(self._extremes)


def _extremes(pair: list[float]) -> tuple[float | None, float | None]:
    low, high = pair[0], pair[1]
    if low > high:
        return None, None
    return low, high


B = TypeVar("B", BoundCounter, BoundGaugeAdd, BoundGaugeSet, BoundHistogram)


class Metric(Generic[B]):
    """A declared metric. ``labels(...)`` returns the bound child for a label set.

    Bind once and keep the child where you can (``requests = metric.labels("GET",
    "/items")``); ``labels()`` itself is a cached dictionary lookup.
    """

    __slots__ = (
        "_aliases",
        "_children",
        "_default",
        "_lock",
        "_overflow",
        "_overflowed",
        "_prom",
        "_series",
        "_store",
        "declaration",
        "declarer",
        "series_limit",
        "start_time_ns",
    )

    def __init__(
        self,
        store: MetricStore,
        declaration: MetricDeclaration,
        declarer: str,
        prom: Any,
        series_limit: int,
    ) -> None:
        self._store = store
        self.declaration = declaration
        self.declarer = declarer
        self._prom = prom
        self.series_limit = series_limit
        self.start_time_ns = time.time_ns()
        # label values -> child. Keys are the exported (str) values, and aliases for
        # other values whose non-str members are wrapped in _Exact: 200.0 and True
        # equal 200 and 1 but are other series, so an alias matches its own types only
        self._children: dict[tuple[Any, ...], B] = {}
        self._aliases = 0
        self._lock = threading.Lock()
        self._overflow: B | None = None
        self._overflowed = False
        # (labels, prometheus_client child, bound child) per label set
        self._series: list[tuple[Mapping[str, str], Any, B]] = []
        self._default: B | None = None
        if not declaration.label_names:
            self._default = self._new(prom, {})
            self._children[()] = self._default

    @property
    def name(self) -> str:
        """The exported name (namespace included)."""
        return self.declaration.name

    def _make(self, child: Any, labels: Mapping[str, str]) -> B:
        raise NotImplementedError

    def _new(self, child: Any, labels: Mapping[str, str]) -> B:
        bound = self._make(child, labels)
        self._series.append((labels, child, bound))
        return bound

    def labels(self, *values: object, **by_name: object) -> B:
        """The bound child for these label values (positional, or by name).

        Values are converted with ``str`` (a ``str`` subclass, such as a
        str-valued enum member, counts as its string value), so ``200`` and
        ``"200"`` are one series while ``200.0`` and ``True`` are others. String
        values are the fast path. Past the metric's series limit a new label set
        gets the overflow series (every label ``_overflow``) and
        ``limelight_series_overflow_total`` counts it.
        """
        if by_name:
            values = self._order(values, by_name)
        child = self._children.get(values)
        if child is not None:
            return child
        return self._slow_labels(values)

    def _order(
        self, values: tuple[object, ...], by_name: Mapping[str, object]
    ) -> tuple[object, ...]:
        names = self.declaration.label_names
        if values or set(by_name) != set(names):
            raise ValueError(
                f"{self.name}: expected labels {names!r}, got {tuple(values) + tuple(by_name)!r}"
            )
        return tuple(by_name[n] for n in names)

    def _slow_labels(self, values: tuple[object, ...]) -> B:
        names = self.declaration.label_names
        if len(values) != len(names):
            raise ValueError(
                f"{self.name}: expected {len(names)} label values {names!r}, got {len(values)}"
            )
        key = tuple(_label_value(v) for v in values)
        first_overflow = False
        with self._lock:
            found = self._children.get(key)
            overflowing = found is None and len(self._series) >= self.series_limit
            if found is not None:
                child = found
            elif overflowing:
                child = self._overflow_child()
                first_overflow, self._overflowed = not self._overflowed, True
            else:
                child = self._new(self._prom.labels(*key), dict(zip(names, key, strict=True)))
                self._children[key] = child
            if not overflowing and any(type(v) is not str for v in values):
                alias = _alias_key(values)
                if (
                    alias is not None
                    and alias not in self._children
                    and self._aliases < 4 * self.series_limit
                ):
                    self._children[alias] = child
                    self._aliases += 1
        if overflowing:
            self._store._series_overflow(self.name)
            if first_overflow:  # once per metric, outside its lock
                _log.warning(
                    "metric reached its series limit; new label sets go to its overflow series",
                    metric=self.name,
                    series_limit=self.series_limit,
                    overflow_label_value=OVERFLOW_LABEL_VALUE,
                    counted_in=SERIES_OVERFLOW.name,
                )
        return child

    def _overflow_child(self) -> B:
        if self._overflow is None:
            key = (OVERFLOW_LABEL_VALUE,) * len(self.declaration.label_names)
            self._overflow = self._new(
                self._prom.labels(*key), dict(zip(self.declaration.label_names, key, strict=True))
            )
        return self._overflow

    def _unlabeled(self) -> B:
        if self._default is None:
            raise ValueError(
                f"{self.name} has labels {self.declaration.label_names!r}: call labels(...) first"
            )
        return self._default

    def remove(self, *values: object, **by_name: object) -> bool:
        """Remove the series of these label values (positional, or by name) from the store.

        Every exporter stops reporting it (a gauge of something that no longer
        exists, say), and it no longer counts against the series limit. A bound
        child kept for it still accepts calls, which go nowhere; ``labels(...)``
        with the same values afterwards starts a new series from zero.

        :return: true when the series existed.
        :raises ValueError: the metric has no labels, or the values do not match them.
        """
        names = self.declaration.label_names
        if not names:
            raise ValueError(f"{self.name} has no labels: its one series cannot be removed")
        if by_name:
            values = self._order(values, by_name)
        if len(values) != len(names):
            raise ValueError(
                f"{self.name}: expected {len(names)} label values {names!r}, got {len(values)}"
            )
        key = tuple(_label_value(v) for v in values)
        with self._lock:
            child = self._children.pop(key, None)
            if child is None:
                return False
            aliases = [k for k, c in self._children.items() if c is child]
            for alias in aliases:
                del self._children[alias]
            self._aliases -= len(aliases)
            # a new list: readers iterate the one they took
            self._series = [s for s in self._series if s[2] is not child]
            self._prom.remove(*key)
            return True

    def _after_fork(self, now: int, reset: bool) -> bool:
        """See :meth:`MetricStore.after_fork`: a new lock, a start at *now*, and
        with *reset* every series from 0 (absolute gauges keep their values)."""
        self._lock = threading.Lock()
        self.start_time_ns = now
        if not reset or self.declaration.kind is MetricKind.GAUGE_SET:
            return True
        own = True
        for _labels, child, bound in self._series:
            own = _reset_after_fork(self._prom, child, now / 1e9) and own
            bound._after_fork()
        return own

    def series_count(self) -> int:
        """How many label sets currently exist (the overflow series included)."""
        return len(self._series)


class Counter(Metric[BoundCounter]):
    """A monotonic counter."""

    __slots__ = ()

    def _make(self, child: Any, labels: Mapping[str, str]) -> BoundCounter:
        store = self._store
        return BoundCounter(child, labels, store.exemplar_interval if store.exemplars else None)

    def inc(self, amount: float = 1) -> None:
        """Increment a counter that has no labels."""
        self._unlabeled().inc(amount)


class GaugeAdd(Metric[BoundGaugeAdd]):
    """An additive gauge (OpenTelemetry UpDownCounter)."""

    __slots__ = ()

    def _make(self, child: Any, labels: Mapping[str, str]) -> BoundGaugeAdd:
        return BoundGaugeAdd(child, labels)

    def inc(self, amount: float = 1) -> None:
        """Add to a gauge that has no labels."""
        self._unlabeled().inc(amount)

    def dec(self, amount: float = 1) -> None:
        """Subtract from a gauge that has no labels."""
        self._unlabeled().dec(amount)


class GaugeSet(Metric[BoundGaugeSet]):
    """An absolute gauge."""

    __slots__ = ()

    def _make(self, child: Any, labels: Mapping[str, str]) -> BoundGaugeSet:
        return BoundGaugeSet(child, labels)

    def set(self, value: float) -> None:
        """Set a gauge that has no labels."""
        self._unlabeled().set(value)


class Histogram(Metric[BoundHistogram]):
    """A histogram over explicit bucket bounds."""

    __slots__ = ()

    def _make(self, child: Any, labels: Mapping[str, str]) -> BoundHistogram:
        store = self._store
        return BoundHistogram(
            child,
            labels,
            self.declaration.bucket_bounds,
            store.exemplar_interval if store.exemplars else None,
            store._windows,
        )

    def observe(self, value: float) -> None:
        """Observe a value on a histogram that has no labels."""
        self._unlabeled().observe(value)

    def _add_window(self) -> None:
        # under the metric's lock: a series made meanwhile gets the store's count
        with self._lock:
            for _labels, _child, bound in self._series:
                bound._open_window()


_KIND_CLASS: dict[MetricKind, type[Metric[Any]]] = {
    MetricKind.COUNTER: Counter,
    MetricKind.GAUGE_ADD: GaugeAdd,
    MetricKind.GAUGE_SET: GaugeSet,
    MetricKind.HISTOGRAM: Histogram,
}


def _same_shape(a: MetricDeclaration, b: MetricDeclaration) -> bool:
    return (
        a.kind == b.kind
        and a.label_names == b.label_names
        and (a.kind is not MetricKind.HISTOGRAM or a.bucket_bounds == b.bucket_bounds)
    )


class _ObserverCollector:
    """Registered first in the store's registry: a Prometheus collection of the
    registry runs the store's observers before any metric is read."""

    def __init__(self, store: MetricStore) -> None:
        self._store = store

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self._store.observe()
        return []


class MetricStore:
    """Every metric of the process, declared once, read by every exporter.

    :param namespace: prefix added to every metric name, limelight's own included
        (``shop`` makes ``shop_http_requests_total``), even to a name that already
        starts with it.
    :param series_limit: default number of label sets per metric.
    :param exemplars: attach the current sampled span to histogram observations
        and counter increments.
    :param exemplar_interval: seconds before a histogram bucket's or a counter
        series' exemplar may be replaced (``0`` links every observation).
    """

    def __init__(
        self,
        namespace: str = "",
        series_limit: int = 2000,
        exemplars: bool = True,
        exemplar_interval: float = 1.0,
    ) -> None:
        self.namespace = namespace
        self.series_limit = series_limit
        self.exemplars = exemplars
        self.exemplar_interval = exemplar_interval
        self.registry = prometheus_client.CollectorRegistry(auto_describe=False)
        """The prometheus_client registry holding the values (for Prometheus exposition)."""
        self._observers: list[Callable[[], object]] = []
        self.registry.register(_ObserverCollector(self))
        self._lock = threading.RLock()
        self._metrics: dict[str, Metric[Any]] = {}
        self._windows = 0
        for decl in SELF_METRICS:
            self.declare(decl, declarer="limelight")
        self._overflow_counter: Counter = self.get(SERIES_OVERFLOW.name)  # type: ignore[assignment]

    # -- declaration -------------------------------------------------------------------

    def full_name(self, name: str) -> str:
        """*name* with the namespace prefix applied, always (as prometheus_client's
        ``namespace`` does): with namespace ``http``, ``http_requests_total`` is
        exported as ``http_http_requests_total``."""
        return f"{self.namespace}_{name}" if self.namespace else name

    def declare(self, declaration: MetricDeclaration, declarer: str = "application") -> Metric[Any]:
        """Declare a metric and return its handle; idempotent for the same shape.

        :param declaration: the metric (name without namespace).
        :param declarer: who declares it (a plugin name), used in conflict errors.
        :raises MetricConflictError: the name exists with another kind, labels or
            buckets; the message names both declarers.
        """
        with self._lock:
            existing = self._metrics.get(declaration.name)
            if existing is not None:
                if not _same_shape(existing.declaration, declaration):
                    raise MetricConflictError(
                        f"metric {declaration.name!r} declared by {declarer!r} as "
                        f"{_describe(declaration)} conflicts with the declaration by "
                        f"{existing.declarer!r} as {_describe(existing.declaration)}"
                    )
                return existing
            exported = declaration.with_name(self.full_name(declaration.name))
            prom = self._make_prom(exported)
            cls = _KIND_CLASS[declaration.kind]
            limit = declaration.series_limit or self.series_limit
            metric = cls(self, exported, declarer, prom, limit)
            self._metrics[declaration.name] = metric
            return metric

    def _make_prom(self, decl: MetricDeclaration) -> Any:
        names = decl.label_names
        # the name ends with it (checked at declaration): OpenMetrics shows # UNIT
        unit = decl.prometheus_unit
        try:
            if decl.kind is MetricKind.COUNTER:
                return prometheus_client.Counter(
                    decl.name, decl.help, names, unit=unit, registry=self.registry
                )
            if decl.kind is MetricKind.GAUGE_ADD:
                return prometheus_client.Gauge(
                    decl.name,
                    decl.help,
                    names,
                    unit=unit,
                    registry=self.registry,
                    multiprocess_mode="livesum",
                )
            if decl.kind is MetricKind.GAUGE_SET:
                per_process = isinstance(decl, ProcessMetricDeclaration)
                return prometheus_client.Gauge(
                    decl.name,
                    decl.help,
                    names,
                    unit=unit,
                    registry=self.registry,
                    multiprocess_mode="liveall" if per_process else "mostrecent",
                )
            return prometheus_client.Histogram(
                decl.name,
                decl.help,
                names,
                unit=unit,
                registry=self.registry,
                buckets=(*decl.bucket_bounds, float("inf")),
            )
        except ValueError as exc:
            raise MetricConflictError(f"metric {decl.name!r}: {exc}") from exc

    def get(self, name: str) -> Metric[Any]:
        """The handle of a declared metric (name without namespace)."""
        try:
            return self._metrics[name]
        except KeyError:
            raise KeyError(f"metric {name!r} is not declared") from None

    def __contains__(self, name: object) -> bool:
        return name in self._metrics

    def declarations(self) -> tuple[MetricDeclaration, ...]:
        """Every declaration as exported (namespace applied), in declaration order."""
        with self._lock:
            return tuple(m.declaration for m in self._metrics.values())

    def metrics(self) -> tuple[Metric[Any], ...]:
        """Every metric handle, in declaration order."""
        with self._lock:
            return tuple(self._metrics.values())

    # -- convenience declarations -----------------------------------------------------

    def _quick(
        self,
        kind: MetricKind,
        name: str,
        help: str,
        labels: Sequence[str],
        unit: str,
        declarer: str,
        buckets: Sequence[float] | None = None,
    ) -> Any:
        return self.declare(
            MetricDeclaration(name, kind, help, unit, tuple(labels), buckets), declarer
        )

    def counter(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        unit: str = "",
        declarer: str = "application",
    ) -> Counter:
        """Declare (or get) a counter."""
        return self._quick(MetricKind.COUNTER, name, help, labels, unit, declarer)  # type: ignore[no-any-return]

    def gauge_add(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        unit: str = "",
        declarer: str = "application",
    ) -> GaugeAdd:
        """Declare (or get) an additive gauge."""
        return self._quick(MetricKind.GAUGE_ADD, name, help, labels, unit, declarer)  # type: ignore[no-any-return]

    def gauge_set(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        unit: str = "",
        declarer: str = "application",
    ) -> GaugeSet:
        """Declare (or get) an absolute gauge."""
        return self._quick(MetricKind.GAUGE_SET, name, help, labels, unit, declarer)  # type: ignore[no-any-return]

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        unit: str = "",
        buckets: Sequence[float] | None = None,
        declarer: str = "application",
    ) -> Histogram:
        """Declare (or get) a histogram (Prometheus default buckets unless given)."""
        return self._quick(  # type: ignore[no-any-return]
            MetricKind.HISTOGRAM, name, help, labels, unit, declarer, buckets
        )

    # -- self metrics -------------------------------------------------------------------

    def _series_overflow(self, metric: str) -> None:
        if metric != self._overflow_counter.name:
            self._overflow_counter.labels(metric).inc()

    def export_error(self, exporter: str, count: int = 1) -> None:
        """Count failed exports in ``limelight_export_errors_total{exporter}``."""
        self._metrics[EXPORT_ERRORS.name].labels(exporter).inc(count)

    def spans_dropped(self, count: int = 1) -> None:
        """Count lost spans in ``limelight_spans_dropped_total``."""
        if count > 0:
            counter: Counter = self._metrics[SPANS_DROPPED.name]  # type: ignore[assignment]
            counter.inc(count)

    def logs_dropped(self, count: int = 1) -> None:
        """Count lost log records in ``limelight_logs_dropped_total``."""
        if count > 0:
            counter: Counter = self._metrics[LOGS_DROPPED.name]  # type: ignore[assignment]
            counter.inc(count)

    # -- observers ----------------------------------------------------------------------

    def add_observer(self, observer: Callable[[], object]) -> Callable[[], None]:
        """Call *observer* before every read of the store: each :meth:`snapshot`
        and each collection of :attr:`registry` (a Prometheus scrape).

        An observer sets the values of metrics measured elsewhere, read when
        they are wanted rather than recorded as they happen (the process's CPU
        time, a queue's depth), as OpenTelemetry's observable instruments call
        their callbacks. An exception in it is reported once and the read goes
        on with the values as they were.

        :return: a function that removes the observer.
        """
        with self._lock:
            self._observers.append(observer)

        def remove() -> None:
            with self._lock:
                if observer in self._observers:
                    self._observers.remove(observer)

        return remove

    def observe(self) -> None:
        """Run every observer now (reads do it themselves)."""
        with self._lock:
            observers = tuple(self._observers)
        for observer in observers:
            try:
                observer()
            except Exception as exc:
                report_failure("metric store", f"observer {observer!r}", exc)

    # -- forks --------------------------------------------------------------------------

    def after_fork(self) -> bool:
        """In a process just forked from the one that filled this store: make the
        counters, histograms and additive gauges this process's own, from 0.

        Each of them starts now (its start time, and its ``_created`` sample),
        so a push exporter of the child reports what the child records and never
        its parent's values a second time; absolute gauges keep the value they
        had at the fork until the child sets them. Locks the parent's threads may
        have held at the fork are made anew. In multiprocess mode prometheus_client
        already gives the child files of its own, and nothing is reset.

        :return: whether the values are the child's own now (false when the cells
            cannot be reset: see the ``prometheus-fork-reset`` assumption).
        """
        self._lock = threading.RLock()
        multiprocess = not fork_reset_available()
        now = time.time_ns()
        own = True
        for metric in self._metrics.values():
            own = metric._after_fork(now, reset=not multiprocess) and own
        return own or multiprocess

    # -- reading ------------------------------------------------------------------------

    def snapshot(self) -> MetricsSnapshot:
        """Read every metric: a typed, cumulative view for exporters.

        Safe to call from any thread while emission goes on; each series is
        read atomically (a histogram's count always equals its bucket total).
        The observers run first.
        """
        return self._snapshot(None)

    def interval_reader(self) -> IntervalReader:
        """A reader whose snapshots give each histogram's min and max over the
        observations since its previous snapshot (what a delta export sends).

        Counts and sums stay cumulative, as in :meth:`snapshot`; only min and max
        are per interval. Each reader keeps its own interval, for as long as the
        store lives (one more min/max pair per histogram observation).
        """
        with self._lock:
            index = self._windows
            self._windows += 1
            for metric in self._metrics.values():
                if isinstance(metric, Histogram):
                    metric._add_window()
        return IntervalReader(self, index)

    def _snapshot(self, window: int | None) -> MetricsSnapshot:
        self.observe()
        now = time.time_ns()
        families = [self._read(m, window) for m in self.metrics()]
        return MetricsSnapshot(tuple(families), now)

    def _read(self, metric: Metric[Any], window: int | None = None) -> MetricFamily:
        decl = metric.declaration
        try:
            points = _read_cells(metric, window)
        except AttributeError:
            # an unexpected prometheus_client layout: go through its public collect()
            points = _read_collected(metric, window)
        return MetricFamily(decl, tuple(points), metric.start_time_ns)


class IntervalReader:
    """Snapshots of a store whose histogram min/max cover one interval each:
    the observations since this reader's previous snapshot (see
    :meth:`MetricStore.interval_reader`)."""

    def __init__(self, store: MetricStore, index: int) -> None:
        self._store = store
        self._index = index

    def snapshot(self) -> MetricsSnapshot:
        """Read every metric; histogram min/max since the previous call, and a new interval."""
        return self._store._snapshot(self._index)


def _histogram_extremes(
    bound: BoundHistogram, window: int | None
) -> tuple[float | None, float | None]:
    if window is None:
        return bound.extremes()
    return bound._take_window(window)


def _read_cells(metric: Metric[Any], window: int | None = None) -> list[Any]:
    """Read each series' prometheus_client cells directly (no sample objects).

    :param window: the :class:`IntervalReader` whose interval gives histogram min/max.
    :raises AttributeError: the cells are not where this prometheus_client keeps them.
    """
    decl = metric.declaration
    series = list(metric._series)
    if decl.kind is MetricKind.COUNTER:
        points: list[Any] = []
        for labels, child, _bound in series:
            cell = counter_cell(child)
            if cell is None:
                raise AttributeError("counter cell not found")
            points.append(NumberPoint(labels, cell_value(child), _exemplar(cell.get_exemplar())))
        return points
    if decl.kind is not MetricKind.HISTOGRAM:
        return [NumberPoint(labels, cell_value(child)) for labels, child, _bound in series]
    bounds = decl.bucket_bounds
    points = []
    for labels, child, bound in series:
        found = histogram_cells(child, len(bounds))
        if found is None:
            raise AttributeError("histogram cells not found")
        cells, total = found
        counts = tuple(round(cell.get()) for cell in cells)
        exemplars = tuple(_exemplar(cell.get_exemplar()) for cell in cells)
        total_value = float(total.get())
        # read last: every observation counted above is in them (observe updates them first)
        low, high = _histogram_extremes(bound, window)
        points.append(
            HistogramPoint(
                labels=labels,
                count=sum(counts),
                sum=total_value,
                bounds=bounds,
                bucket_counts=counts,
                exemplars=exemplars,
                min=low,
                max=high,
            )
        )
    return points


def _exemplar(ex: Any) -> Exemplar | None:
    if ex is None:
        return None
    return Exemplar(
        value=float(ex.value),
        trace_id=ex.labels.get("trace_id", ""),
        span_id=ex.labels.get("span_id", ""),
        timestamp=float(ex.timestamp or 0.0),
    )


def _read_collected(metric: Metric[Any], window: int | None = None) -> list[Any]:
    decl = metric.declaration
    series = list(metric._series)
    samples: list[Sample] = [s for fam in metric._prom.collect() for s in fam.samples]
    if decl.kind is MetricKind.HISTOGRAM:
        bounds = {_label_key(labels): bound for labels, _child, bound in series}
        points = _histogram_points(samples, decl)
        for i, point in enumerate(points):
            bound = bounds.get(_label_key(point.labels))
            if bound is not None:
                low, high = _histogram_extremes(bound, window)
                points[i] = attrs.evolve(point, min=low, max=high)
        return points
    suffix = "_total" if decl.kind is MetricKind.COUNTER else ""
    want = _prom_base_name(decl) + suffix
    return [
        NumberPoint(dict(s.labels), float(s.value), _exemplar(s.exemplar))
        for s in samples
        if s.name == want
    ]


def _label_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _prom_base_name(decl: MetricDeclaration) -> str:
    if decl.kind is MetricKind.COUNTER and decl.name.endswith("_total"):
        return decl.name[: -len("_total")]
    return decl.name


def _histogram_points(samples: Iterable[Sample], decl: MetricDeclaration) -> list[HistogramPoint]:
    base = decl.name
    bounds = decl.bucket_bounds
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for s in samples:
        if s.name == base + "_bucket":
            labels = {k: v for k, v in s.labels.items() if k != "le"}
            entry = series.setdefault(tuple(sorted(labels.items())), {"labels": labels})
            entry.setdefault("cumulative", []).append(float(s.value))
            entry.setdefault("exemplars", []).append(_exemplar(s.exemplar))
        elif s.name == base + "_sum":
            entry = series.setdefault(tuple(sorted(s.labels.items())), {"labels": dict(s.labels)})
            entry["sum"] = float(s.value)
    points = []
    for entry in series.values():
        cumulative = entry.get("cumulative", [0.0] * (len(bounds) + 1))
        counts = []
        prev = 0.0
        for c in cumulative:
            counts.append(round(c - prev))
            prev = c
        points.append(
            HistogramPoint(
                labels=entry["labels"],
                count=round(cumulative[-1]) if cumulative else 0,
                sum=entry.get("sum", 0.0),
                bounds=bounds,
                bucket_counts=tuple(counts),
                exemplars=tuple(entry.get("exemplars", ())),
            )
        )
    return points


def _describe(decl: MetricDeclaration) -> str:
    text = f"{decl.kind.value} with labels {list(decl.label_names)!r}"
    if decl.kind is MetricKind.HISTOGRAM:
        text += f" and buckets {list(decl.bucket_bounds)!r}"
    return text
