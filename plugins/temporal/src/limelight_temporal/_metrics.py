"""The Temporal runtime's metric buffer, drained into limelight's metric store.

Temporal's core (Rust) records its metrics into a
:class:`temporalio.runtime.MetricBuffer` when the runtime is built with one;
:func:`runtime` builds that runtime. One process-wide :data:`bridge` drains
every such buffer every ``LIMELIGHT_TEMPORAL_METRICS_INTERVAL`` seconds in its
own thread, and once more when telemetry stops, before the core's last export.
Each update lands in the store through its public tiers: counters add their
delta, gauges set their value, histograms observe it (durations arrive in
seconds). Metrics not known in advance (``metric_meter()`` ones, a newer SDK's)
are declared when first seen; every exporter reads them from the store like
any other metric.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import temporalio.runtime
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    LogForwardingConfig,
    LoggingConfig,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from limelight import Telemetry
from limelight.metrics import Metric, MetricConflictError, MetricDeclaration, MetricKind
from limelight.surface import TelemetryBinding, report_failure

from ._catalog import SDK_METRICS, label_name, store_name
from ._env import LIMELIGHT_TEMPORAL_METRIC_LIMIT, LIMELIGHT_TEMPORAL_METRICS_INTERVAL
from ._plugin import METRIC_UPDATES_DROPPED

__all__ = ["DEFAULT_BUFFER_SIZE", "MetricsBridge", "bridge", "new_runtime", "runtime"]

DEFAULT_BUFFER_SIZE = 100_000
"""Events the buffer holds between two drains (updates and instrument creations)."""

_KINDS = {
    BUFFERED_METRIC_KIND_COUNTER: MetricKind.COUNTER,
    BUFFERED_METRIC_KIND_GAUGE: MetricKind.GAUGE_SET,
    BUFFERED_METRIC_KIND_HISTOGRAM: MetricKind.HISTOGRAM,
}
_KNOWN: dict[str, MetricDeclaration] = {d.name: d for d in SDK_METRICS}
_BUFFER_FULL = "metrics buffer is full"
_MAX_ATTRIBUTE_IDS = 4096
"""Attribute objects remembered per metric by identity before the memo starts afresh."""


def _label_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


class _Series:
    """One buffered metric bound to one store: its metric, label names and bound children.

    A metric known in advance has its catalog labels; one first seen now is
    declared at its first update, with the attribute keys of that update as labels.
    """

    __slots__ = ("by_id", "declared", "description", "kind", "labels", "metric", "name", "unit")

    def __init__(self, name: str, kind: MetricKind, unit: str, description: str) -> None:
        self.name = name
        self.kind = kind
        self.unit = unit
        self.description = description
        self.metric: Metric[Any] | None = None
        self.declared = False
        # (label name, attribute key) per label, in the declaration's order
        self.labels: tuple[tuple[str, str], ...] = ()
        # id(attributes) -> (attributes, record): Temporal hands the same object for the
        # same attribute set; holding it keeps its id from being reused
        self.by_id: dict[int, tuple[object, Any]] = {}


class _Bound:
    """The bridge's view of one telemetry start."""

    def __init__(self, telemetry: Telemetry, stopping: bool = False) -> None:
        store = telemetry.store
        self.active = (stopping or telemetry.enabled) and METRIC_UPDATES_DROPPED.name in store
        self.store = store
        self.limit: int = telemetry.config.get(LIMELIGHT_TEMPORAL_METRIC_LIMIT)
        self.interval: float = telemetry.config.get(LIMELIGHT_TEMPORAL_METRICS_INTERVAL)
        self.series: dict[int, tuple[object, _Series]] = {}
        self.added = 0
        self.dropped = store.get(METRIC_UPDATES_DROPPED.name) if self.active else None
        self.gauges_restored = False


class MetricsBridge:
    """Drains Temporal metric buffers into the running telemetry's store.

    Gauges keep their last value per label set across telemetry restarts, so a
    new store shows the worker's slots and pollers before they next change.
    """

    def __init__(self) -> None:
        self._buffers: list[MetricBuffer] = []
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._binding = TelemetryBinding(_Bound)
        self._gauges: dict[tuple[str, tuple[str, ...]], float] = {}
        self._full = 0
        self._stopping: _Bound | None = None
        self._reported: set[tuple[str, str]] = set()

    # -- buffers ------------------------------------------------------------------------

    def add(self, buffer: MetricBuffer) -> None:
        """Drain *buffer* from now on (its runtime must exist)."""
        with self._lock:
            if buffer not in self._buffers:
                self._buffers.append(buffer)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="limelight-temporal-metrics", daemon=True
                )
                self._thread.start()

    def buffer_full(self) -> None:
        """Count one update the runtime dropped because its buffer was full."""
        self._full += 1

    def telemetry_started(self) -> None:
        """Wake the drain thread so a new store gets the current state at once."""
        self._wake.set()

    def _run(self) -> None:
        while True:
            bound = self._binding.get()
            self._wake.wait(bound.interval if bound.active else 1.0)
            self._wake.clear()
            try:
                self.drain()
            except Exception as exc:  # never let the thread die
                report_failure("temporal", "metric drain", exc)

    # -- draining -----------------------------------------------------------------------

    def drain(self, telemetry: Telemetry | None = None) -> int:
        """Move every buffered update into the store now; return how many were read.

        :param telemetry: the telemetry whose store receives them (the running
            one by default; a stopping one passes itself). With none running (or
            the plugin not loaded) the updates are read and discarded.
        """
        with self._lock:
            bound = self._binding.get()
            if telemetry is not None and bound.store is not telemetry.store:
                last = self._stopping
                if last is None or last.store is not telemetry.store:
                    last = self._stopping = _Bound(telemetry, stopping=True)
                bound = last
            count = 0
            for buffer in self._buffers:
                try:
                    updates = buffer.retrieve_updates()
                except Exception as exc:
                    report_failure("temporal", "metric buffer", exc)
                    continue
                count += len(updates)
                for update in updates:
                    try:
                        self._apply(bound, update)
                    except Exception as exc:
                        self._drop(bound, "invalid")
                        report_failure("temporal", "metric update", exc)
            if bound.active:
                if not bound.gauges_restored:
                    bound.gauges_restored = True
                    self._restore_gauges(bound)
                full, self._full = self._full, 0
                if full and bound.dropped is not None:
                    bound.dropped.labels("buffer_full").inc(full)
            return count

    def _drop(self, bound: _Bound, reason: str, count: int = 1) -> None:
        if bound.dropped is not None:
            bound.dropped.labels(reason).inc(count)

    def _apply(self, bound: _Bound, update: Any) -> None:
        buffered = update.metric
        found = bound.series.get(id(buffered))
        series = found[1] if found is not None else self._series(bound, buffered)
        attributes = update.attributes
        known = series.by_id.get(id(attributes))
        record = known[1] if known is not None else self._record(bound, series, attributes)
        value = update.value
        if record is not None:
            record(value)
        if series.kind is MetricKind.GAUGE_SET and series.metric is not None:
            self._gauges[series.name, _values(series, attributes)] = value

    def _series(self, bound: _Bound, buffered: Any) -> _Series:
        kind = _KINDS.get(buffered.kind)
        if kind is None:
            raise ValueError(f"unknown buffered metric kind {buffered.kind!r}")
        seconds = buffered.unit == "s"
        name = store_name(buffered.name, kind, seconds, buffered.unit or "")
        unit = "s" if seconds else (buffered.unit or ("1" if kind is MetricKind.COUNTER else ""))
        description = buffered.description or f"Temporal SDK metric {buffered.name}."
        series = _Series(name, kind, unit, description)
        bound.series[id(buffered)] = (buffered, series)
        return series

    def _declare(self, bound: _Bound, series: _Series, attributes: Mapping[str, Any]) -> None:
        """Bind *series* to its store metric, declaring it when it is not known yet."""
        series.declared = True
        store, name = bound.store, series.name
        known = _KNOWN.get(name)
        if name in store:
            metric = store.get(name)
            if metric.declaration.kind is not series.kind:
                self._report(name, "conflict", f"declared as {metric.declaration.kind.value}")
                return
        elif known is None and bound.added >= bound.limit:
            self._report(name, "metric_limit", f"past {bound.limit} metrics not known in advance")
            return
        else:
            labels: list[str] = []
            for key in sorted(attributes):
                label = label_name(key)
                if label is not None and label not in labels:
                    labels.append(label)
            declaration = known or MetricDeclaration(
                name,
                series.kind,
                series.description,
                unit=series.unit,
                label_names=tuple(labels),
            )
            try:
                metric = store.declare(declaration, declarer="temporal")
            except MetricConflictError as exc:
                self._report(name, "conflict", str(exc))
                return
            if known is None:
                bound.added += 1
        label_names = metric.declaration.label_names
        by_label = {label_name(key): key for key in attributes}
        series.labels = tuple((label, by_label.get(label) or label) for label in label_names)
        series.metric = metric

    def _record(self, bound: _Bound, series: _Series, attributes: Mapping[str, Any]) -> Any:
        if not series.declared and bound.active:
            self._declare(bound, series, attributes)
        metric = series.metric
        record: Any = None
        if metric is not None:
            keys = {key for _, key in series.labels}
            extra = [key for key in attributes if key not in keys]
            if extra:
                self._report(series.name, "labels", f"attributes {extra!r} are not labels")
            values = _values(series, attributes)
            child = metric.labels(*values)
            kind = series.kind
            record = (
                child.inc
                if kind is MetricKind.COUNTER
                else child.set
                if kind is MetricKind.GAUGE_SET
                else child.observe
            )
        elif bound.active:
            record = self._dropper(bound, series)
        if len(series.by_id) >= _MAX_ATTRIBUTE_IDS:
            series.by_id.clear()
        series.by_id[id(attributes)] = (attributes, record)
        return record

    def _dropper(self, bound: _Bound, series: _Series) -> Any:
        """What records an update of a metric the store could not take: a count."""
        reason = "conflict" if series.name in bound.store else "metric_limit"
        assert bound.dropped is not None
        inc = bound.dropped.labels(reason).inc

        def dropped(value: float) -> None:
            inc()

        return dropped

    def _restore_gauges(self, bound: _Bound) -> None:
        store = bound.store
        for (name, values), value in list(self._gauges.items()):
            if name not in store:
                continue
            metric = store.get(name)
            if metric.declaration.kind is MetricKind.GAUGE_SET and len(values) == len(
                metric.declaration.label_names
            ):
                metric.labels(*values).set(value)

    def _report(self, name: str, reason: str, detail: str) -> None:
        if (name, reason) not in self._reported:
            self._reported.add((name, reason))
            report_failure("temporal", f"metric {reason}", ValueError(f"{name}: {detail}"))


def _values(series: _Series, attributes: Mapping[str, Any]) -> tuple[str, ...]:
    get = attributes.get
    return tuple(_label_value(v) if (v := get(key)) is not None else "" for _, key in series.labels)


bridge = MetricsBridge()
"""The process-wide bridge every buffer made by :func:`runtime` is drained through."""


class _BufferFullCounter(logging.Filter):
    """Counts the core's "metrics buffer is full" errors (one per dropped update) and
    lets one through per minute, so a full buffer does not flood the log."""

    def __init__(self) -> None:
        super().__init__("limelight-temporal")
        self._next = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if _BUFFER_FULL not in record.getMessage():
            return True
        bridge.buffer_full()
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + 60.0
        return True


_full_counter = _BufferFullCounter()


def _logging(config: LoggingConfig | None) -> LoggingConfig | None:
    """*config* with the core's log records forwarded to Python logging (the
    ``temporalio.sdk_core`` logger unless it forwards to one already), where the
    full-buffer errors are counted."""
    if config is None:
        return None
    forwarding = config.forwarding
    if forwarding is None:
        forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.sdk_core"))
        config = dataclasses.replace(config, forwarding=forwarding)
    if _full_counter not in forwarding.logger.filters:
        forwarding.logger.addFilter(_full_counter)
    return config


_lock = threading.Lock()
_runtime: Runtime | None = None


def new_runtime(
    telemetry: TelemetryConfig | None = None, *, buffer_size: int = DEFAULT_BUFFER_SIZE
) -> Runtime:
    """A new Temporal :class:`~temporalio.runtime.Runtime` whose metrics limelight bridges.

    Prefer :func:`runtime` (one per process: every runtime has its own thread pool).

    :param telemetry: the rest of the runtime's telemetry configuration (logging,
        global tags, metric prefix); its ``metrics`` must be unset, since the
        runtime records them into the buffer limelight drains. The core's log
        records are forwarded to the ``temporalio.sdk_core`` Python logger unless
        *telemetry* forwards them already.
    :param buffer_size: events the buffer holds between two drains; past it the
        core drops updates, counted in
        ``limelight_temporal_metric_updates_dropped_total{reason="buffer_full"}``.
    :raises ValueError: *telemetry* already sends its metrics somewhere, or
        *buffer_size* is not positive.
    """
    base = telemetry or TelemetryConfig()
    if base.metrics is not None:
        raise ValueError(
            f"this TelemetryConfig already sends its metrics to {type(base.metrics).__name__}; "
            "limelight bridges them through its own MetricBuffer: pass a TelemetryConfig "
            "without metrics (its logging, global_tags and metric_prefix are kept)"
        )
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be positive, got {buffer_size!r}")
    buffer = MetricBuffer(buffer_size, MetricBufferDurationFormat.SECONDS)
    config = dataclasses.replace(base, metrics=buffer, logging=_logging(base.logging))
    made = Runtime(telemetry=config)
    bridge.add(buffer)
    return made


def runtime(
    telemetry: TelemetryConfig | None = None,
    *,
    set_default: bool = False,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
) -> Runtime:
    """The process's Temporal runtime whose metrics land in limelight's store.

    Pass it to ``Client.connect(..., runtime=limelight_temporal.runtime())``;
    workers take their client's runtime. The first call builds it (see
    :func:`new_runtime` for *telemetry* and *buffer_size*); later calls return
    the same runtime.

    A runtime's metrics go where its configuration said when it was built: a
    client connected on another runtime (Temporal's default one, or one you built
    yourself) keeps reporting there, and its metrics never reach the store. Move
    the configuration of a runtime of your own into *telemetry* instead.

    :param set_default: also make it Temporal's default runtime, so clients
        connected without ``runtime=`` use it.
    :raises RuntimeError: *set_default* while Temporal's default runtime exists
        already (a client was connected without ``runtime=``, or
        ``Runtime.default()`` was called): clients on it could not be bridged.
    :raises ValueError: a later call asks for another *telemetry* than the first,
        or *telemetry* already sends its metrics somewhere.
    """
    global _runtime
    with _lock:
        if _runtime is None:
            made = new_runtime(telemetry, buffer_size=buffer_size)
            _runtime = made
            _runtime_config[0] = telemetry
        elif telemetry is not None and telemetry != _runtime_config[0]:
            raise ValueError(
                "limelight_temporal.runtime() was built already with another TelemetryConfig; "
                "pass the same one, none, or use new_runtime() for a second runtime"
            )
        made = _runtime
    if set_default:
        try:
            Runtime.set_default(made, error_if_already_set=True)
        except RuntimeError as exc:
            if temporalio.runtime.Runtime.default() is made:
                return made
            raise RuntimeError(
                "Temporal's default runtime exists already (a client was connected without "
                "runtime=, or Runtime.default() was called); clients on it do not report "
                "into limelight. Call limelight_temporal.runtime(set_default=True) before "
                "the first Client.connect, or pass runtime=limelight_temporal.runtime()"
            ) from exc
    return made


_runtime_config: list[TelemetryConfig | None] = [None]
