"""Metric value types: declarations and the store snapshot exporters read."""

from __future__ import annotations

import enum
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "DEFAULT_BUCKETS",
    "Exemplar",
    "HistogramPoint",
    "MetricDeclaration",
    "MetricFamily",
    "MetricKind",
    "MetricsSnapshot",
    "NumberPoint",
    "SnapshotSource",
    "StoreReader",
    "prometheus_unit",
]

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
"""Histogram bucket upper bounds (seconds) used when a declaration gives none.

These are the Prometheus client defaults; the same bounds are exported over
OTLP, so both sinks always agree.
"""

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_UNIT_WORDS: dict[str, str] = {
    # time
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    # information
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tebibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "bit": "bits",
    # SI
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    # other
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
"""UCUM units and their Prometheus names (the OpenTelemetry collector's table)."""
_PER_UNIT_WORDS: dict[str, str] = {
    "s": "second",
    "min": "minute",
    "h": "hour",
    "d": "day",
    "wk": "week",
    "mo": "month",
    "a": "year",
}
"""The singular names used after ``_per_`` (``By/s`` is ``bytes_per_second``)."""
_ANNOTATION_RE = re.compile(r"\{[^}]*\}")
_NOT_NAME_RE = re.compile(r"[^a-zA-Z0-9]+")


def prometheus_unit(unit: str) -> str:
    """The Prometheus name of a UCUM *unit*, as the OpenTelemetry-to-Prometheus
    compatibility specification converts it, or ``""`` for none.

    Abbreviations become words (``s`` is ``seconds``, ``By`` is ``bytes``),
    ``a/b`` becomes ``a_per_b`` (``By/s`` is ``bytes_per_second``), annotations
    in braces are dropped (``{request}`` counts are unitless). A unit outside the
    table is kept, with every run of characters other than letters and digits
    made one ``_``. ``1`` is unitless here: limelight declares counts with it,
    where the specification reads ``ratio`` (see :attr:`MetricDeclaration.unit`).
    """
    text = _ANNOTATION_RE.sub("", unit).strip()
    main, per_sign, per = text.partition("/")
    main, per = main.strip(), per.strip()
    words = "" if main in ("", "1") else _UNIT_WORDS.get(main, main)
    if per_sign and per not in ("", "1"):
        per_word = _PER_UNIT_WORDS.get(per) or _UNIT_WORDS.get(per, per)
        words = f"{words}_per_{per_word}" if words else f"per_{per_word}"
    return _NOT_NAME_RE.sub("_", words).strip("_")


class MetricKind(enum.StrEnum):
    """What a metric measures and how it is emitted."""

    COUNTER = "counter"
    """Monotonic sum: ``inc(amount >= 0)``. Name ends in ``_total``."""
    GAUGE_SET = "gauge_set"
    """Absolute value: ``set(value)``; exported as a gauge."""
    GAUGE_ADD = "gauge_add"
    """Additive value: ``inc()``/``dec()``; an OpenTelemetry UpDownCounter,
    exported as a non-monotonic sum."""
    HISTOGRAM = "histogram"
    """Distribution over explicit bucket bounds: ``observe(value)``."""


def _check_name(_: object, __: object, value: str) -> None:
    if not _NAME_RE.match(value):
        raise ValueError(f"invalid metric name {value!r}: must match {_NAME_RE.pattern}")


def _check_labels(_: object, __: object, value: tuple[str, ...]) -> None:
    for name in value:
        if not _LABEL_RE.match(name) or name.startswith("__"):
            raise ValueError(
                f"invalid label name {name!r}: must match {_LABEL_RE.pattern} "
                "and not start with '__'"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"duplicate label names in {value!r}")


def _to_names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _to_buckets(value: object) -> tuple[float, ...] | None:
    if value is None:
        return None
    bounds = tuple(float(b) for b in value)  # type: ignore[attr-defined]
    bounds = tuple(b for b in bounds if not math.isinf(b))
    if not bounds:
        raise ValueError("a histogram needs at least one finite bucket bound")
    if any(b2 <= b1 for b1, b2 in itertools.pairwise(bounds)):
        raise ValueError(f"bucket bounds must be strictly increasing: {bounds!r}")
    return bounds


@attrs.frozen
class MetricDeclaration:
    """A metric a surface emits: the one place its shape is defined.

    :param name: Prometheus-style name in base units, for example
        ``http_request_duration_seconds``; counters end in ``_total``. The
        optional namespace prefix is added by the store, not here.
    :param kind: see :class:`MetricKind`.
    :param help: one sentence describing what is measured.
    :param unit: UCUM unit for OTLP (``s``, ``By``, ``1``, or ``""``). A unit
        with a Prometheus name (:func:`prometheus_unit`) must end the metric name,
        before ``_total`` for a counter: a histogram in ``s`` is ``..._seconds``,
        a counter in ``By`` is ``..._bytes_total``. ``1``, ``""`` and annotations
        (``{request}``) ask for no suffix; ``1`` on a name ending in ``_ratio`` is
        exposed with the Prometheus unit ``ratio``.
    :param label_names: the label names, in the order ``labels()`` takes values.
    :param buckets: histogram bucket upper bounds; ``None`` means
        :data:`DEFAULT_BUCKETS`. ``+Inf`` is implicit.
    :param series_limit: maximum number of label sets before new ones collapse
        into the overflow series; ``None`` uses the store's default.
    :param observed: the values are readings set just before each read of the
        store (an OpenTelemetry asynchronous instrument, such as the process's CPU
        time), not recorded as they happen. OTLP's ``lowmemory`` temporality sends
        an observed counter cumulative, a recorded one as deltas.
    """

    name: str = attrs.field(validator=_check_name)
    kind: MetricKind = attrs.field(converter=MetricKind)
    help: str
    unit: str = ""
    label_names: tuple[str, ...] = attrs.field(
        default=(), converter=_to_names, validator=_check_labels
    )
    buckets: tuple[float, ...] | None = attrs.field(default=None, converter=_to_buckets)
    series_limit: int | None = None
    observed: bool = False

    def __attrs_post_init__(self) -> None:
        if self.kind is MetricKind.COUNTER and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end in '_total'")
        if self.kind is not MetricKind.HISTOGRAM and self.buckets is not None:
            raise ValueError(f"{self.name!r}: only histograms take buckets")
        if self.series_limit is not None and self.series_limit < 1:
            raise ValueError(f"{self.name!r}: series_limit must be >= 1")
        suffix = prometheus_unit(self.unit)
        if suffix and not self._base_name().endswith("_" + suffix):
            where = " before '_total'" if self.kind is MetricKind.COUNTER else ""
            raise ValueError(
                f"{self.kind.value} {self.name!r} has unit {self.unit!r}: its name must end "
                f"in '_{suffix}'{where} (Prometheus names carry their unit), for example "
                f"{self._suggest(suffix)!r}"
            )

    def _base_name(self) -> str:
        """The name without a counter's ``_total``."""
        if self.kind is MetricKind.COUNTER:
            return self.name.removesuffix("_total")
        return self.name

    def _suggest(self, suffix: str) -> str:
        name = f"{self._base_name()}_{suffix}"
        return name + "_total" if self.kind is MetricKind.COUNTER else name

    @property
    def prometheus_unit(self) -> str:
        """The unit of the Prometheus exposition (OpenMetrics ``# UNIT``), or ``""``.

        :func:`prometheus_unit` of :attr:`unit`; ``ratio`` for unit ``1`` on a name
        ending in ``_ratio``. The name always ends with it (checked at declaration).
        """
        suffix = prometheus_unit(self.unit)
        if not suffix and self.unit == "1" and self._base_name().endswith("_ratio"):
            return "ratio"
        return suffix

    @property
    def bucket_bounds(self) -> tuple[float, ...]:
        """The effective finite bucket bounds of a histogram."""
        return self.buckets if self.buckets is not None else DEFAULT_BUCKETS

    def with_name(self, name: str) -> MetricDeclaration:
        """The same declaration under another name (used for the namespace prefix);
        itself when the name is its own (it is immutable)."""
        if name == self.name:
            return self
        return attrs.evolve(self, name=name)


@attrs.frozen
class Exemplar:
    """A sample observation linked to a trace.

    :param value: the observed value.
    :param trace_id: 32 lowercase hex digits.
    :param span_id: 16 lowercase hex digits.
    :param timestamp: seconds since the epoch.
    """

    value: float
    trace_id: str
    span_id: str
    timestamp: float


@attrs.frozen
class NumberPoint:
    """The current value of one series of a counter or gauge.

    :param exemplar: a counter's latest exemplar (an increment made inside a
        sampled span), or ``None``.
    """

    labels: Mapping[str, str]
    value: float
    exemplar: Exemplar | None = None


@attrs.frozen
class HistogramPoint:
    """The state of one series of a histogram.

    :param bounds: finite bucket upper bounds (``+Inf`` is implicit).
    :param bucket_counts: observations per bucket, not cumulative;
        ``len(bounds) + 1`` entries, the last one for ``(bounds[-1], +Inf)``.
    :param exemplars: per bucket, the latest exemplar or ``None``.
    :param min: the smallest value observed (NaN never counts), ``None`` when
        unknown or nothing was observed.
    :param max: the largest value observed, ``None`` likewise.
    """

    labels: Mapping[str, str]
    count: int
    sum: float
    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    exemplars: tuple[Exemplar | None, ...] = ()
    min: float | None = None
    max: float | None = None

    def cumulative_counts(self) -> tuple[int, ...]:
        """Cumulative counts per bound, the last being ``+Inf`` (Prometheus ``le``)."""
        total = 0
        out = []
        for c in self.bucket_counts:
            total += c
            out.append(total)
        return tuple(out)


@attrs.frozen
class MetricFamily:
    """Every series of one metric at the time of a snapshot.

    :param declaration: the declaration, with the store's namespace applied.
    :param points: one point per label set.
    :param start_time_ns: when the metric was declared (start of the
        cumulative interval), in nanoseconds since the epoch.
    """

    declaration: MetricDeclaration
    points: tuple[NumberPoint, ...] | tuple[HistogramPoint, ...]
    start_time_ns: int

    @property
    def name(self) -> str:
        """The metric name as exported."""
        return self.declaration.name

    @property
    def kind(self) -> MetricKind:
        """The metric kind."""
        return self.declaration.kind


@attrs.frozen
class MetricsSnapshot:
    """A consistent read of the metric store; cumulative since each metric's start.

    :param families: one family per declared metric, in declaration order.
    :param time_ns: when the snapshot was taken, in nanoseconds since the epoch.
    """

    families: tuple[MetricFamily, ...]
    time_ns: int

    def __iter__(self) -> Iterator[MetricFamily]:
        return iter(self.families)

    def family(self, name: str) -> MetricFamily:
        """The family called *name*; :class:`KeyError` when it was not declared."""
        for fam in self.families:
            if fam.name == name:
                return fam
        raise KeyError(name)


@runtime_checkable
class SnapshotSource(Protocol):
    """Anything that can produce a :class:`MetricsSnapshot` (the metric store)."""

    def snapshot(self) -> MetricsSnapshot:
        """Read every declared metric; safe to call from any thread."""
        ...


@runtime_checkable
class StoreReader(Protocol):
    """A metric exporter that reads the store, contributed by ``limelight_metrics_provide_readers``.

    The core calls :meth:`start` once the store holds every declaration, and
    when telemetry stops, :meth:`force_flush` and then :meth:`shutdown`, each
    bounded by *timeout* seconds. A pull exporter (Prometheus) serves
    ``store.snapshot()`` on request; a push exporter exports periodically, and
    its final export is the ``force_flush`` at stop, so :meth:`shutdown` only
    releases resources (a boot that fails half-way calls ``shutdown`` alone).

    A push exporter may also define ``after_fork(resource)``: in a child forked
    from a process whose telemetry runs, the core calls it once the store holds
    the child's own values (counters, histograms and additive gauges from 0),
    with the resource of the child (its ``process.pid``, ``process.parent_pid``
    and ``service.instance.id``), so the reader can restart the thread the fork
    did not copy and push the child's metrics as the child's. A reader without
    it does not export from a forked child.
    """

    def start(self) -> None:
        """Begin serving or exporting."""
        ...

    def force_flush(self, timeout: float) -> bool:
        """Export what has been recorded so far; true on success."""
        ...

    def shutdown(self, timeout: float) -> None:
        """Stop serving or exporting and release resources (no further export)."""
        ...
