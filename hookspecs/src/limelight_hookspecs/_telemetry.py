"""What a plugin sees of the running telemetry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._config_types import Config
from ._metric_types import SnapshotSource

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["SelfMetrics", "TelemetryView"]


@runtime_checkable
class SelfMetrics(Protocol):
    """limelight's own health counters, for exporters to report into."""

    def export_error(self, exporter: str, count: int = 1) -> None:
        """Count a failed export in ``limelight_export_errors_total{exporter}``."""
        ...

    def spans_dropped(self, count: int = 1) -> None:
        """Count spans lost before export in ``limelight_spans_dropped_total``."""
        ...

    def logs_dropped(self, count: int = 1) -> None:
        """Count log records lost before export in ``limelight_logs_dropped_total``."""
        ...


@runtime_checkable
class TelemetryView(Protocol):
    """The running telemetry as passed to lifecycle, metric and span hooks.

    Which parts exist when a hook is called: ``config``, ``resource`` and
    ``store`` always; ``tracer_provider`` from ``limelight_spans_*`` on (it is
    being built while they are called, so use it only in
    ``limelight_lifecycle_start``); ``meter_provider`` from ``limelight_metrics_provide_readers``
    on.
    """

    @property
    def config(self) -> Config:
        """The effective configuration."""
        ...

    @property
    def resource(self) -> Resource:
        """The OpenTelemetry resource shared by every signal."""
        ...

    @property
    def store(self) -> SnapshotSource:
        """The metric store; exporters read it with ``snapshot()``."""
        ...

    @property
    def self_metrics(self) -> SelfMetrics:
        """Counters for export errors, dropped spans and dropped log records."""
        ...

    @property
    def tracer_provider(self) -> TracerProvider:
        """The SDK tracer provider owned by the core."""
        ...

    @property
    def meter_provider(self) -> MeterProvider:
        """The SDK meter provider owned by the core (for OpenTelemetry API instruments)."""
        ...
