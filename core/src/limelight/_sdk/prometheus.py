"""prometheus_client's value cells, counters' creation time, metric restriction and
cells started afresh in a forked child.

Assumptions ``prometheus-cells``, ``prometheus-created``, ``restricted-metric``
and ``prometheus-fork-reset`` (see :mod:`limelight._sdk`), checked at import on
metrics of a throwaway registry.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection
from typing import Any

import prometheus_client
from prometheus_client import values as prometheus_values
from prometheus_client.metrics_core import Metric

from . import fallback

__all__ = [
    "PROMETHEUS_CELLS",
    "cell_add",
    "cell_setter",
    "cell_value",
    "counter_cell",
    "fork_reset_available",
    "histogram_cells",
    "reset_after_fork",
    "restricted_metric",
    "set_created",
]


def _in_process_memory(probe: Callable[[], str | None]) -> Callable[[], str | None]:
    """Run *probe* with its throwaway metrics' values in this process's memory.

    In multiprocess mode a metric's values go to the shared directory, whatever
    registry it is in: the probes would be served by every scrape of the
    aggregate. Their cells have the same methods either way.
    """

    @functools.wraps(probe)
    def run() -> str | None:
        saved = prometheus_values.ValueClass
        prometheus_values.ValueClass = prometheus_values.MutexValue
        try:
            return probe()
        finally:
            prometheus_values.ValueClass = saved

    return run


@_in_process_memory
def cells_problem() -> str | None:
    """Why prometheus_client's children do not keep their values where the store
    reads them, or ``None`` when they do."""
    try:
        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        counter = prometheus_client.Counter("probe", "p", ["a"], registry=registry).labels("x")
        counter._value.inc(2)
        if counter._value.get() != 2 or registry.get_sample_value("probe_total", {"a": "x"}) != 2:
            return "a counter child does not keep its value in _value"
        counter._value.set_exemplar(None)  # the store links counter exemplars through it
        counter._value.get_exemplar()
        counter._value.set(5)
        if registry.get_sample_value("probe_total", {"a": "x"}) != 5:
            return "a counter child's _value.set does not set what it exposes"
        gauge = prometheus_client.Gauge("probe_g", "p", registry=registry)
        gauge._value.inc(-1)
        if registry.get_sample_value("probe_g") != -1:
            return "a gauge does not keep its value in _value"
        bounds = (0.1, 1.0)
        histogram = prometheus_client.Histogram(
            "probe_h", "p", registry=registry, buckets=(*bounds, float("inf"))
        )
        cells, total = histogram._buckets, histogram._sum
        if len(cells) != len(bounds) + 1:
            return f"a histogram keeps {len(cells)} bucket cells for {len(bounds)} bounds"
        cells[1].inc(1)
        total.inc(0.5)
        if (
            registry.get_sample_value("probe_h_bucket", {"le": "1.0"}) != 1
            or registry.get_sample_value("probe_h_bucket", {"le": "0.1"}) != 0
            or registry.get_sample_value("probe_h_sum") != 0.5
        ):
            return "a histogram's _buckets/_sum are not what it exposes"
        for cell in cells:
            cell.get_exemplar()
            cell.set_exemplar  # noqa: B018 - the store links exemplars through it
    except Exception as exc:
        return repr(exc)
    return None


_problem = cells_problem()
PROMETHEUS_CELLS = _problem is None
"""Whether bound children may add into, and the store read, prometheus_client's cells."""
if not PROMETHEUS_CELLS:
    fallback("prometheus-cells", "the children's inc/observe and collect()", _problem)


def cell_add(child: Any) -> Any:
    """A function adding to a counter or gauge child: its value cell's ``inc``,
    or the child's own ``inc``."""
    if PROMETHEUS_CELLS:
        return child._value.inc
    return child.inc


def counter_cell(child: Any) -> Any | None:
    """A counter child's value cell (``set_exemplar``/``get_exemplar``), or ``None``
    when the cells are not where :data:`PROMETHEUS_CELLS` says."""
    if not PROMETHEUS_CELLS:
        return None
    return getattr(child, "_value", None)


def histogram_cells(child: Any, bounds: int) -> tuple[tuple[Any, ...], Any] | None:
    """A histogram child's bucket cells (one per bound and ``+Inf``) and its sum
    cell, or ``None`` when they are not where :data:`PROMETHEUS_CELLS` says."""
    if not PROMETHEUS_CELLS:
        return None
    cells = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if cells is None or total is None or len(cells) != bounds + 1:
        return None
    return tuple(cells), total


def cell_setter(child: Any) -> Any:
    """A function setting the value of a counter child (an observed total, such as
    the process's CPU time): its value cell's ``set``, or, where the cells are not
    reachable, ``inc`` by what the value grew since the last call (a value that went
    down is not followed)."""
    if PROMETHEUS_CELLS:
        return child._value.set
    last = [0.0]

    def set_by_inc(value: float) -> None:
        if value > last[0]:
            child.inc(value - last[0])
            last[0] = value

    return set_by_inc


@_in_process_memory
def created_problem() -> str | None:
    """Why a counter child's creation time (its ``_created`` sample) is not kept
    in ``_created``, or ``None`` when it is."""
    try:
        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        counter = prometheus_client.Counter("probe", "p", ["a"], registry=registry).labels("x")
        counter._created = 12.5
        created = [
            s.value
            for metric in registry.collect()
            for s in metric.samples
            if s.name == "probe_created"
        ]
        if created not in ([12.5], []):  # [] when PROMETHEUS_DISABLE_CREATED_SERIES is set
            return f"the _created sample is {created!r} after setting _created"
    except Exception as exc:
        return repr(exc)
    return None


_created_problem = created_problem()
if _created_problem is not None:
    fallback("prometheus-created", "the time the series was first used", _created_problem)


def set_created(child: Any, seconds: float) -> None:
    """Make *seconds* (since the epoch) the creation time of a counter child: when
    what it counts started (the process's start for its CPU time), not when limelight
    first used the series."""
    if _created_problem is None:
        child._created = seconds


def cell_value(child: Any) -> float:
    """The value of a counter or gauge child.

    :raises AttributeError: the cells are not readable (use ``collect()``).
    """
    if not PROMETHEUS_CELLS:
        raise AttributeError("prometheus_client cells are not readable here")
    return float(child._value.get())


def _restricted(metric: Metric, names: Collection[str]) -> Metric | None:
    samples = [s for s in metric.samples if s.name in names]
    if not samples:
        return None
    restricted = Metric(metric.name, metric.documentation, metric.type)
    restricted.samples = samples
    return restricted


def restriction_problem() -> str | None:
    """Why ``Metric._restricted_metric`` is not the restriction prometheus_client's
    registry applies, or ``None``."""
    try:
        metric = Metric("probe", "p", "counter")
        metric.add_sample("probe_total", {}, 1.0)
        metric.add_sample("probe_created", {}, 2.0)
        restrict: Any = metric._restricted_metric
        got, want = restrict({"probe_total"}), _restricted(metric, {"probe_total"})
        if got != want or restrict({"other"}) is not None:
            return f"_restricted_metric returned {got!r}"
    except Exception as exc:
        return repr(exc)
    return None


_restriction = restriction_problem()
if _restriction is not None:
    fallback("restricted-metric", "the restriction rebuilt from public samples", _restriction)


def restricted_metric(metric: Metric, names: Collection[str]) -> Metric | None:
    """*metric* with only the samples called one of *names* (``None`` when none is),
    as prometheus_client's registry answers ``?name[]=``."""
    if _restriction is None:
        restricted: Metric | None = metric._restricted_metric(names)  # type: ignore[no-untyped-call]
        return restricted
    return _restricted(metric, names)


def _reset_cells(prom: Any, child: Any, created: float) -> bool:
    cells = [child._value] if hasattr(child, "_value") else [*child._buckets, child._sum]
    if any(getattr(cell, "_multiprocess", False) for cell in cells):
        # values in files named after the pid: prometheus_client gives a forked
        # child its own at its first read or write
        return False
    for cell in cells:
        cell._lock = threading.Lock()
        cell._value = 0.0
        cell._exemplar = None
    for owner in (prom, child):
        if hasattr(owner, "_lock"):
            owner._lock = threading.Lock()
    if hasattr(child, "_created"):
        child._created = created
    return True


@_in_process_memory
def fork_reset_problem() -> str | None:
    """Why a child's cells cannot be started afresh by :func:`reset_after_fork`,
    or ``None`` when they can."""
    try:
        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        counter = prometheus_client.Counter("probe", "p", ["a"], registry=registry)
        child = counter.labels("x")
        child.inc(2)
        histogram = prometheus_client.Histogram(
            "probe_h", "p", registry=registry, buckets=(1.0, float("inf"))
        )
        histogram.observe(0.5)
        gauge = prometheus_client.Gauge("probe_g", "p", registry=registry)
        gauge.inc(3)
        for prom, each in ((counter, child), (histogram, histogram), (gauge, gauge)):
            if not _reset_cells(prom, each, 7.5):
                return "the cells are not in process memory"
        child.inc(1)
        histogram.observe(2.0)
        sample = registry.get_sample_value
        got = (
            sample("probe_total", {"a": "x"}),
            sample("probe_h_count"),
            sample("probe_h_sum"),
            sample("probe_h_bucket", {"le": "1.0"}),
            sample("probe_g"),
        )
        if got != (1.0, 1.0, 2.0, 0.0, 0.0):
            return f"after a reset the values read {got!r}"
        counter.labels("y").inc()  # the metric's own lock works
    except Exception as exc:
        return repr(exc)
    return None


_fork_reset_problem = fork_reset_problem()
if _fork_reset_problem is not None:
    fallback(
        "prometheus-fork-reset",
        "a forked child does not push its metrics (its values are its parent's)",
        _fork_reset_problem,
    )


def reset_after_fork(prom: Any, child: Any, created: float) -> bool:
    """Start *child* (a series of the prometheus_client metric *prom*) afresh in a
    forked process: values at 0, no exemplar, created at *created* (seconds since
    the epoch), new locks (a thread of the parent may have held the old ones when
    it forked, and no thread of the child would ever release them).

    :return: false when it cannot (multiprocess mode, where prometheus_client keeps
        each process's values apart itself, or the cells are not where assumed).
    """
    if _fork_reset_problem is not None:
        return False
    return _reset_cells(prom, child, created)


def fork_reset_available() -> bool:
    """Whether :func:`reset_after_fork` can start cells afresh in this process."""
    return (
        _fork_reset_problem is None and prometheus_values.ValueClass is prometheus_values.MutexValue
    )
