"""What /metrics serves: the store's registry, or the multiprocess aggregate.

Exposition is prometheus_client's own: text format 0.0.4 or OpenMetrics
(with histogram exemplars) chosen from the request's ``Accept`` header,
gzip when accepted, ``name[]`` filters.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import CollectorRegistry

import limelight
import limelight.metrics
from limelight.export import restricted_metric
from limelight.plugins import get_logger
from limelight_hookspecs import TelemetryView

__all__ = [
    "ServingRegistry",
    "exposition",
    "exposition_registry",
    "make_asgi_app",
    "make_wsgi_app",
    "multiprocess_dir",
    "serving_registry",
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
    value of absolute gauges.
    """
    path = multiprocess_dir()
    if path is None:
        return store.registry
    with _MP_LOCK:
        registry = _MP_REGISTRIES.get(path)
        if registry is None:
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
            _MP_REGISTRIES[path] = registry
        return registry


def exposition(store: limelight.metrics.MetricStore, openmetrics: bool = False) -> bytes:
    """The exposition of *store* (text format 0.0.4, or OpenMetrics with exemplars)."""
    registry = exposition_registry(store)
    if openmetrics:
        from prometheus_client.openmetrics.exposition import generate_latest as om_latest

        return bytes(om_latest(registry))  # type: ignore[no-untyped-call]
    return bytes(prometheus_client.generate_latest(registry))


class ServingRegistry(CollectorRegistry):
    """A registry that collects a telemetry's store (or the running one's) at scrape time.

    It follows restarts: an app built before :func:`limelight.start` serves
    the telemetry running when it is scraped. ``name[]`` filters work as with
    any prometheus_client registry.

    :param telemetry: whose store to serve; ``None`` for the running telemetry.
    """

    def __init__(self, telemetry: TelemetryView | None = None) -> None:
        super().__init__(auto_describe=False)
        self._telemetry = telemetry

    def _store(self) -> limelight.metrics.MetricStore:
        telemetry = self._telemetry if self._telemetry is not None else limelight.current()
        store = telemetry.store
        if not isinstance(store, limelight.metrics.MetricStore):  # pragma: no cover - foreign view
            raise TypeError(f"expected a limelight MetricStore, got {type(store).__name__}")
        return store

    def collect(self) -> Iterable[Metric]:
        registry: Any = exposition_registry(self._store())
        metrics: Iterator[Metric] = iter(registry.collect())
        return metrics

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


def serving_registry(telemetry: TelemetryView | None = None) -> ServingRegistry:
    """A :class:`ServingRegistry` for *telemetry* (the running one when ``None``)."""
    return ServingRegistry(telemetry)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ASGIApp = Callable[..., Any]


def make_wsgi_app(
    telemetry: TelemetryView | None = None, *, disable_compression: bool = False
) -> WSGIApp:
    """A WSGI app serving the metrics, to mount at ``/metrics`` in your own app.

    :param telemetry: whose store to serve; by default the running telemetry's,
        resolved on each scrape.
    :param disable_compression: never gzip, even when the scraper accepts it.
    """
    app: WSGIApp = prometheus_client.make_wsgi_app(
        serving_registry(telemetry), disable_compression=disable_compression
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
    telemetry: TelemetryView | None = None, *, disable_compression: bool = False
) -> MetricsASGIApp:
    """An ASGI app serving the metrics, to route at ``/metrics`` in your own app.

    :param telemetry: whose store to serve; by default the running telemetry's,
        resolved on each scrape.
    :param disable_compression: never gzip, even when the scraper accepts it.
    """
    app: ASGIApp = prometheus_client.make_asgi_app(
        serving_registry(telemetry), disable_compression=disable_compression
    )
    return MetricsASGIApp(app)
