# mypy: disable-error-code="empty-body"
"""Metric hooks: declare metrics, contribute readers of the metric store.

A specification's body is its documentation only: pluggy never runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._config_types import Config
from ._markers import hookspec
from ._metric_types import MetricDeclaration, StoreReader
from ._telemetry import TelemetryView

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader


@hookspec
def limelight_metrics_declare(config: Config) -> Sequence[MetricDeclaration]:
    """Declare the metrics a plugin emits.

    Called once per telemetry start, before readers are created, so every
    exporter sees every metric (with zero series) from the first scrape on. A
    name declared twice with another kind, labels or buckets is an error
    naming both plugins.

    :param config: the effective configuration.
    :return: the plugin's metric declarations (names without namespace).
    """


@hookspec
def limelight_metrics_provide_readers(telemetry: TelemetryView) -> Sequence[StoreReader]:
    """Contribute exporters that read the metric store.

    Called once per telemetry start after every metric is declared. The core
    calls ``start()`` on each reader, and ``force_flush()`` then ``shutdown()``
    on stop. Read ``telemetry.store.snapshot()``; check
    ``telemetry.config.exporter_enabled("metrics", name)``.

    :param telemetry: the telemetry being started.
    :return: readers, possibly empty.
    """


@hookspec
def limelight_metrics_provide_otel_readers(telemetry: TelemetryView) -> Sequence[MetricReader]:
    """Contribute OpenTelemetry SDK metric readers for the core's MeterProvider.

    These export instruments created through the OpenTelemetry metrics API (by
    libraries that instrument themselves), not limelight's own store, which
    :func:`limelight_metrics_provide_readers` covers.

    :param telemetry: the telemetry being started.
    :return: SDK metric readers, possibly empty.
    """
