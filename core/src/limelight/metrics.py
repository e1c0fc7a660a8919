"""The metric store and its instruments, for plugin authors.

One store per process holds every observation; Prometheus exposition and OTLP
export both read it. A surface declares its metrics with
:class:`MetricDeclaration` (returned from ``limelight_metrics_declare``) and
emits through bound children it creates once, off the hot path::

    from limelight.metrics import MetricStore

    def bind(store: MetricStore):
        ok = store.counter("jobs_total").labels("default", "ok")
        return ok.inc   # one call per job, no lookup, no allocation

Names are given without the namespace prefix (``LIMELIGHT_METRICS_NAMESPACE``);
the store adds it.
"""

from __future__ import annotations

from limelight_hookspecs import DEFAULT_BUCKETS, MetricDeclaration, MetricKind

from ._store import (
    OVERFLOW_LABEL_VALUE,
    BoundCounter,
    BoundGaugeAdd,
    BoundGaugeSet,
    BoundHistogram,
    Counter,
    GaugeAdd,
    GaugeSet,
    Histogram,
    Metric,
    MetricConflictError,
    MetricStore,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "OVERFLOW_LABEL_VALUE",
    "BoundCounter",
    "BoundGaugeAdd",
    "BoundGaugeSet",
    "BoundHistogram",
    "Counter",
    "GaugeAdd",
    "GaugeSet",
    "Histogram",
    "Metric",
    "MetricConflictError",
    "MetricDeclaration",
    "MetricKind",
    "MetricStore",
]
