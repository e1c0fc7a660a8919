"""The runtime metrics: the built-in plugin "limelight.runtime_metrics" (priority 12).

What prometheus_client's default registry gives every application that uses
it, and the standard Python dashboards read: the process's CPU time, memory,
file descriptors and start time (``process_*``), the garbage collector's counts
(``python_gc_*``) and the interpreter (``python_info``). The values are read by
prometheus_client's own collectors (``ProcessCollector``, ``GCCollector``,
``PlatformCollector``) and set into the store by an observer before every read,
so Prometheus exposition and OTLP export show the same values, under the names
and help texts prometheus_client uses. Only what the platform gives is
declared: the ``process_*`` metrics need ``/proc`` (Linux), ``python_gc_*``
CPython.

In Prometheus multiprocess mode each process writes its own values into the
shared directory (every ``LIMELIGHT_RUNTIME_METRICS_INTERVAL`` seconds, from a
thread) and every series carries a ``pid`` label: the gauges are
prometheus_client's ``liveall`` (one series per live process), the counters
declare a ``pid`` label, so nothing is summed over processes.

``LIMELIGHT_RUNTIME_METRICS=false`` (or ``LIMELIGHT_DISABLED_PLUGINS=
limelight.runtime_metrics``) turns them off.
"""

from __future__ import annotations

import gc
import os
import platform
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import prometheus_client
from prometheus_client import values as prometheus_values
from prometheus_client.metrics_core import Metric as PrometheusFamily

from limelight_hookspecs import (
    Config,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    TelemetryView,
    hookimpl,
    parse_bool,
    parse_float,
)

from ._export import ExportWorker
from ._sdk.prometheus import cell_setter, set_created
from ._store import Metric, MetricStore, ProcessMetricDeclaration

__all__ = [
    "LIMELIGHT_RUNTIME_METRICS",
    "LIMELIGHT_RUNTIME_METRICS_INTERVAL",
    "RUNTIME_METRICS",
    "RuntimeMetricsPlugin",
    "RuntimeSampler",
    "multiprocess_mode",
    "runtime_declarations",
    "runtime_metrics",
]


def _parse_interval(raw: str) -> float:
    value = parse_float(minimum=0)(raw)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


LIMELIGHT_RUNTIME_METRICS = EnvVar(
    "LIMELIGHT_RUNTIME_METRICS",
    True,
    parse_bool,
    "Report the runtime metrics: the process's CPU time, memory, open and maximum file "
    "descriptors and start time (process_*), the garbage collector's counts (python_gc_*) "
    "and python_info, read by prometheus_client's process, GC and platform collectors, in "
    "every metric exporter. false leaves them out.",
    "false",
)
LIMELIGHT_RUNTIME_METRICS_INTERVAL = EnvVar(
    "LIMELIGHT_RUNTIME_METRICS_INTERVAL",
    5.0,
    _parse_interval,
    "In Prometheus multiprocess mode, seconds between two readings of the runtime metrics "
    "that each process writes to the shared directory (a scrape shows them as of that "
    "reading). Otherwise they are read at every scrape and export, and this is not used.",
    "1",
)

RUNTIME_METRICS: dict[str, str] = {
    "process_cpu_seconds_total": "s",
    "process_virtual_memory_bytes": "By",
    "process_resident_memory_bytes": "By",
    "process_start_time_seconds": "s",
    "process_open_fds": "1",
    "process_max_fds": "1",
    "python_gc_objects_collected_total": "1",
    "python_gc_objects_uncollectable_total": "1",
    "python_gc_collections_total": "1",
    "python_info": "1",
}
"""Every runtime metric limelight reports, with its unit, in catalog order; names,
kinds, help texts and labels are those of prometheus_client's collectors."""

PID_LABEL = "pid"


def multiprocess_mode() -> bool:
    """Whether prometheus_client runs in multiprocess mode (decided when it was imported,
    from ``PROMETHEUS_MULTIPROC_DIR``)."""
    return prometheus_values.ValueClass is not prometheus_values.MutexValue


def _collectors() -> list[Any]:
    """prometheus_client's own collectors for this process (the instances its default
    registry holds), those the platform supports."""
    found: list[Any] = [prometheus_client.PROCESS_COLLECTOR]
    # GCCollector's own condition for registering itself
    if hasattr(gc, "get_stats") and platform.python_implementation() == "CPython":
        found.append(prometheus_client.GC_COLLECTOR)
    found.append(prometheus_client.PLATFORM_COLLECTOR)
    return found


def _collect() -> Iterable[PrometheusFamily]:
    for collector in _collectors():
        yield from collector.collect()


def _exported_name(family: PrometheusFamily) -> str:
    return f"{family.name}_total" if family.type == "counter" else family.name


def runtime_declarations(multiprocess: bool | None = None) -> tuple[MetricDeclaration, ...]:
    """The runtime metrics this platform gives, as the collectors describe them.

    :param multiprocess: declare for Prometheus multiprocess mode (a ``pid`` label on
        the counters); by default, whether prometheus_client runs in it.
    """
    if multiprocess is None:
        multiprocess = multiprocess_mode()
    found: dict[str, MetricDeclaration] = {}
    for family in _collect():
        name = _exported_name(family)
        unit = RUNTIME_METRICS.get(name)
        if unit is None or not family.samples:
            continue
        counter = family.type == "counter"
        labels = tuple(family.samples[0].labels)
        if counter and multiprocess:
            labels = (*labels, PID_LABEL)
        found[name] = ProcessMetricDeclaration(
            name,
            MetricKind.COUNTER if counter else MetricKind.GAUGE_SET,
            family.documentation,
            unit=unit,
            label_names=labels,
            observed=True,
        )
    return tuple(found[name] for name in RUNTIME_METRICS if name in found)


class RuntimeSampler:
    """Reads the collectors and sets their values into the store's runtime metrics.

    Counters are set to the collectors' totals (they count from the process's
    start, which is also their creation time: ``_created`` in Prometheus, the
    start time over OTLP). A forked child that inherited the store sets its
    own values (and, in multiprocess mode, its own ``pid`` series) on its
    first reading.

    :param store: the store whose declared runtime metrics are set.
    """

    def __init__(self, store: MetricStore) -> None:
        self._store = store
        self.metrics: dict[str, Metric[Any]] = {
            name: store.get(name) for name in RUNTIME_METRICS if name in store
        }
        self._lock = threading.Lock()
        self._pid = -1
        self._start: float | None = None
        self._setters: dict[tuple[str, tuple[str, ...]], Callable[[float], None] | None] = {}

    def observe(self) -> None:
        """Read every collector once and set the values (thread-safe)."""
        with self._lock:
            pid = os.getpid()
            if pid != self._pid:
                self._pid, self._start, self._setters = pid, None, {}
            for family in _collect():
                name = _exported_name(family)
                for sample in family.samples:
                    if sample.name != name:
                        continue
                    key = (name, tuple(sample.labels.values()))
                    setter = self._setters.get(key, _MISSING)
                    if setter is _MISSING:
                        setter = self._setters[key] = self._bind(name, sample.labels)
                    if setter is not None:
                        setter(sample.value)
                    if name == "process_start_time_seconds":
                        self._start = sample.value

    def _bind(self, name: str, labels: dict[str, str]) -> Callable[[float], None] | None:
        metric = self.metrics.get(name)
        if metric is None:
            return None
        values = list(labels.values())
        if metric.declaration.kind is not MetricKind.COUNTER:
            setter: Callable[[float], None] = metric.labels(*values).set
            return setter
        if PID_LABEL in metric.declaration.label_names:
            values.append(str(self._pid))
        metric.labels(*values)  # the series, in the store
        child = metric._prom.labels(*values) if values else metric._prom
        if self._start is not None:
            set_created(child, self._start)
            metric.start_time_ns = int(self._start * 1e9)
        total: Callable[[float], None] = cell_setter(child)
        return total


_MISSING: Any = object()


class RuntimeMetricsPlugin:
    """Declares the runtime metrics and keeps them current while telemetry runs."""

    limelight_name = "limelight.runtime_metrics"
    limelight_priority = 12

    def __init__(self) -> None:
        self._running: weakref.WeakKeyDictionary[
            TelemetryView, tuple[Callable[[], None], RuntimeSampler, ExportWorker | None]
        ] = weakref.WeakKeyDictionary()

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (LIMELIGHT_RUNTIME_METRICS, LIMELIGHT_RUNTIME_METRICS_INTERVAL)

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        if not config.get(LIMELIGHT_RUNTIME_METRICS):
            return ()
        return runtime_declarations()

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        store = telemetry.store
        if not isinstance(store, MetricStore):
            return
        sampler = RuntimeSampler(store)
        if not sampler.metrics:
            return
        sampler.observe()  # listed, with their values, from the first scrape on
        remove = store.add_observer(sampler.observe)
        worker = None
        if multiprocess_mode():
            # the shared directory is read by whichever process answers a scrape:
            # each process writes its own values there, this often
            interval = telemetry.config.get(LIMELIGHT_RUNTIME_METRICS_INTERVAL)
            worker = ExportWorker(
                "limelight-runtime-metrics", interval, lambda flush: sampler.observe()
            )
            worker.start()
        self._running[telemetry] = (remove, sampler, worker)

    @hookimpl
    def limelight_lifecycle_stop(self, telemetry: TelemetryView, timeout: float) -> None:
        running = self._running.pop(telemetry, None)
        if running is None:
            return
        remove, sampler, worker = running
        if worker is not None:
            worker.close(timeout)
        sampler.observe()  # the last values: what a process that exits used in all
        remove()


runtime_metrics = RuntimeMetricsPlugin()
"""The plugin instance registered through the ``limelight.plugins`` entry point."""
