# mypy: disable-error-code="empty-body"
"""Log hooks: exporters and processors of log records.

A specification's body is its documentation only: pluggy never runs it.

The OpenTelemetry SDK's logs signal lives in ``opentelemetry.sdk._logs``; a
plugin gets its types from ``limelight.export`` (``LogRecordExporter``,
``LogRecordExportResult``, ``LogRecordProcessor``, ``ReadableLogRecord``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._markers import hookspec
from ._telemetry import TelemetryView


@hookspec
def limelight_logs_provide_exporters(telemetry: TelemetryView) -> Sequence[Any]:
    """Contribute log record exporters (``LogRecordExporter``); the core batches for them.

    Called once per telemetry start, after the span hooks. Each exporter gets
    its own batch processor configured from ``OTEL_BLRP_*``, whose dropped
    records are counted in ``limelight_logs_dropped_total`` and whose failed
    exports in ``limelight_export_errors_total``; what an export logs is never
    exported itself. Check ``telemetry.config.exporter_enabled("logs", name)``.
    When no plugin contributes an exporter or a processor, no log pipeline is
    built and log records are not converted at all.

    :param telemetry: the telemetry being started.
    :return: log record exporters, possibly empty.
    """


@hookspec
def limelight_logs_provide_processors(telemetry: TelemetryView) -> Sequence[Any]:
    """Contribute log record processors (``LogRecordProcessor``) added to the logger
    provider as given.

    For processors that do their own batching or need every record
    synchronously; ``on_emit`` runs in the thread that logged.

    :param telemetry: the telemetry being started.
    :return: log record processors, possibly empty.
    """
