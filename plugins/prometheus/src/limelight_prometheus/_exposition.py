"""What /metrics serves: the store's registry, or the multiprocess aggregate.

Exposition is prometheus_client's own: text format 0.0.4 or OpenMetrics
(with ``# UNIT`` lines and histogram and counter exemplars) chosen from the
request's ``Accept`` header, gzip when accepted, ``name[]`` filters. What
``/metrics`` serves starts with ``target_info``: the resource, as the
OpenTelemetry-to-Prometheus compatibility specification asks.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import prometheus_client
from prometheus_client import values
from prometheus_client.metrics_core import InfoMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

import limelight
import limelight.metrics
from limelight.export import restricted_metric
from limelight.plugins import get_logger
from limelight_hookspecs import TelemetryView

from ._env import LIMELIGHT_PROMETHEUS_TARGET_INFO
from ._multiprocess import LiveProcessCollector

__all__ = [
    "PER_PROCESS_ATTRIBUTES",
    "ServingRegistry",
    "exposition",
    "exposition_registry",
    "make_asgi_app",
    "make_wsgi_app",
    "multiprocess_dir",
    "serving_registry",
    "target_info",
    "write_multiprocess_target_info",
]

_log = get_logger("limelight.prometheus")
_LATE_WARNED = False
_MP_REGISTRIES: dict[str, CollectorRegistry] = {}
_MP_LOCK = threading.Lock()


def multiprocess_dir() -> str | None:
    """The multiprocess directory when prometheus_client runs in multiprocess mode.

    prometheus_client decides once, when it is imported, from
    ``PROMETHEUS_MULTIPROC_DIR``; this follows that decision. A variable set
    after the import has no effect on the values (they stay per process): that
    is reported once and the process's own values are served.
    """
    global _LATE_WARNED
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    if values.ValueClass is values.MutexValue:
        if path and not _LATE_WARNED:
            _LATE_WARNED = True
            _log.warning(
                "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported; "
                "serving this process's values only",
                directory=path,
            )
        return None
    return path


def exposition_registry(store: limelight.metrics.MetricStore) -> CollectorRegistry:
    """The registry to expose for *store*.

    In single-process mode that is ``store.registry``; in multiprocess mode a
    registry holding a :class:`~prometheus_client.multiprocess.MultiProcessCollector`
    over the shared directory, which sums counters and histograms over every
    process, sums additive gauges over the live ones and keeps the most recent
    value of absolute gauges. Processes that no longer run are found from the
    directory's files at every collection, so their live gauges stop counting
    under any server (:class:`~limelight_prometheus._multiprocess.LiveProcessCollector`).
    """
    path = multiprocess_dir()
    if path is None:
        return store.registry
    with _MP_LOCK:
        registry = _MP_REGISTRIES.get(path)
        if registry is None:
            registry = CollectorRegistry(auto_describe=False)
            LiveProcessCollector(registry, path)
            _MP_REGISTRIES[path] = registry
        return registry


def exposition(store: limelight.metrics.MetricStore, openmetrics: bool = False) -> bytes:
    """The exposition of *store* (text format 0.0.4, or OpenMetrics with exemplars)."""
    registry = exposition_registry(store)
    if openmetrics:
        from prometheus_client.openmetrics.exposition import generate_latest as om_latest

        return bytes(om_latest(registry))  # type: ignore[no-untyped-call]
    return bytes(prometheus_client.generate_latest(registry))


PER_PROCESS_ATTRIBUTES = frozenset({"service.instance.id", "process.pid", "process.parent_pid"})
"""Resource attributes left out of ``target_info`` in multiprocess mode: the aggregate
of every worker is no one process."""

_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")


def _label_name(key: str) -> str:
    """A resource attribute key as a Prometheus label name: every character other than
    a letter, digit or ``_`` made ``_``, runs of ``_`` made one, ``key_`` before a digit."""
    name = _UNDERSCORES.sub("_", _NOT_LABEL.sub("_", key))
    if not name or name[0].isdigit():
        name = "key_" + name
    return name


def _label_value(value: object) -> str:
    """An attribute value as the OpenTelemetry attribute specification writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return json.dumps([v if isinstance(v, (str, bool, int, float)) else str(v) for v in value])
    return str(value)


def target_info(
    attributes: Mapping[str, object], multiprocess: bool = False
) -> InfoMetricFamily | None:
    """The ``target_info`` metric of a resource's *attributes* (``None`` for none).

    An OpenMetrics info metric (a gauge ``target_info`` of value 1 in text format
    0.0.4) whose labels are the resource attributes and nothing else, names made
    valid label names as the OpenTelemetry-to-Prometheus compatibility
    specification says: ``service.name`` is ``service_name``; two keys that become
    the same name have their values joined by ``;`` in the order of the keys.

    :param multiprocess: leave out :data:`PER_PROCESS_ATTRIBUTES`.
    """
    labels: dict[str, list[str]] = {}
    for key in sorted(attributes):
        if multiprocess and key in PER_PROCESS_ATTRIBUTES:
            continue
        labels.setdefault(_label_name(key), []).append(_label_value(attributes[key]))
    if not labels:
        return None
    return InfoMetricFamily(
        "target",
        "Target metadata: the OpenTelemetry resource of the service.",
        value={name: ";".join(values) for name, values in labels.items()},
    )


def _wants_target_info(telemetry: TelemetryView, given: bool | None) -> bool:
    if given is not None:
        return given
    wanted: bool = telemetry.config.get(LIMELIGHT_PROMETHEUS_TARGET_INFO)
    return wanted


def _resource_attributes(telemetry: TelemetryView) -> dict[str, object]:
    resource = getattr(telemetry, "resource", None)
    return dict(resource.attributes) if resource is not None else {}


def write_multiprocess_target_info(telemetry: TelemetryView) -> None:
    """In multiprocess mode, write *telemetry*'s ``target_info`` to the shared directory.

    Each worker writes the same series (its per-process attributes left out), kept
    as the most recent value, so the aggregate any process serves (a worker, or
    the master's :func:`start_http_server`, which runs no telemetry) has the one
    ``target_info`` of the service. It is a gauge there: the worker files keep no
    other metric types. Does nothing outside multiprocess mode or when
    ``target_info`` is turned off.
    """
    if multiprocess_dir() is None or not _wants_target_info(telemetry, None):
        return
    info = target_info(_resource_attributes(telemetry), multiprocess=True)
    if info is None:
        return
    [sample] = info.samples
    labels = dict(sample.labels)
    gauge = prometheus_client.Gauge(
        "target_info",
        info.documentation,
        tuple(labels),
        registry=None,
        multiprocess_mode="mostrecent",
    )
    gauge.labels(**labels).set(1)


class ServingRegistry(CollectorRegistry):
    """A registry that collects a telemetry's store (or the running one's) at scrape time.

    It follows restarts: an app built before :func:`limelight.start` serves
    the telemetry running when it is scraped. ``name[]`` filters work as with
    any prometheus_client registry. The first metric is :func:`target_info`,
    the telemetry's resource.

    :param telemetry: whose store to serve; ``None`` for the running telemetry.
    :param target_info: serve ``target_info``; ``None`` means
        ``LIMELIGHT_PROMETHEUS_TARGET_INFO`` (default true).
    """

    def __init__(
        self, telemetry: TelemetryView | None = None, target_info: bool | None = None
    ) -> None:
        super().__init__(auto_describe=False)
        self._telemetry = telemetry
        self._serve_target_info = target_info
        # Bound here, in the thread that builds the registry: the first read of
        # limelight.current imports its module, and an import running on a server
        # thread while a pre-forking master forks leaves the module's import lock
        # held in the child (a gunicorn worker then hangs in its first import).
        self._current = limelight.current
        if telemetry is None:
            # and the inactive telemetry current() returns while none runs is built
            # here too: built by a scrape, it would hold limelight's process lock (and
            # prometheus_client's value lock, in multiprocess mode) on the server thread,
            # where a fork at that moment leaves them held in the child for good
            self._current()

    def _view(self) -> TelemetryView:
        return self._telemetry if self._telemetry is not None else self._current()

    def _store(self) -> limelight.metrics.MetricStore:
        store = self._view().store
        if not isinstance(store, limelight.metrics.MetricStore):  # pragma: no cover - foreign view
            raise TypeError(f"expected a limelight MetricStore, got {type(store).__name__}")
        return store

    def collect(self) -> Iterable[Metric]:
        telemetry = self._view()
        store = self._store()
        registry: Any = exposition_registry(store)
        info = None
        # in multiprocess mode the workers write it to the shared directory
        single = registry is store.registry
        wanted = _wants_target_info(telemetry, self._serve_target_info)
        if single and wanted and "target_info" not in store:
            info = target_info(_resource_attributes(telemetry))
        metrics: Iterator[Metric] = iter(registry.collect())
        if info is None:
            return metrics
        return _first(info, metrics)

    def restricted_registry(self, names: Iterable[str]) -> Any:
        return _Restricted(self, frozenset(names))


class _Restricted:
    def __init__(self, registry: ServingRegistry, names: frozenset[str]) -> None:
        self._registry = registry
        self._names = names

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            restricted = restricted_metric(metric, self._names)
            if restricted is not None:
                yield restricted


def _first(info: Metric, metrics: Iterator[Metric]) -> Iterator[Metric]:
    yield info
    yield from metrics


def serving_registry(
    telemetry: TelemetryView | None = None, target_info: bool | None = None
) -> ServingRegistry:
    """A :class:`ServingRegistry` for *telemetry* (the running one when ``None``)."""
    return ServingRegistry(telemetry, target_info)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ASGIApp = Callable[..., Any]


def make_wsgi_app(
    telemetry: TelemetryView | None = None,
    *,
    disable_compression: bool = False,
    target_info: bool | None = None,
) -> WSGIApp:
    """A WSGI app serving the metrics, to mount at ``/metrics`` in your own app.

    :param telemetry: whose store to serve; by default the running telemetry's,
        resolved on each scrape.
    :param disable_compression: never gzip, even when the scraper accepts it.
    :param target_info: serve ``target_info`` (the resource); ``None`` means
        ``LIMELIGHT_PROMETHEUS_TARGET_INFO``.
    """
    app: WSGIApp = prometheus_client.make_wsgi_app(
        serving_registry(telemetry, target_info), disable_compression=disable_compression
    )
    return app


class MetricsASGIApp:
    """The ASGI app :func:`make_asgi_app` returns.

    An object rather than a function, so frameworks treat it as an ASGI app
    wherever it is routed: Starlette's ``Route("/metrics", make_asgi_app())``
    serves ``/metrics`` itself, and ``Mount`` works as well.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def make_asgi_app(
    telemetry: TelemetryView | None = None,
    *,
    disable_compression: bool = False,
    target_info: bool | None = None,
) -> MetricsASGIApp:
    """An ASGI app serving the metrics, to route at ``/metrics`` in your own app.

    :param telemetry: whose store to serve; by default the running telemetry's,
        resolved on each scrape.
    :param disable_compression: never gzip, even when the scraper accepts it.
    :param target_info: serve ``target_info`` (the resource); ``None`` means
        ``LIMELIGHT_PROMETHEUS_TARGET_INFO``.
    """
    app: ASGIApp = prometheus_client.make_asgi_app(
        serving_registry(telemetry, target_info), disable_compression=disable_compression
    )
    return MetricsASGIApp(app)
