"""The cdc plugin: declares the change-data-capture metrics and the variables it reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from limelight.surface import LIMELIGHT_AUTO_INSTRUMENT
from limelight_hookspecs import (
    Config,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    TelemetryView,
    hookimpl,
    parse_bool,
)

__all__ = [
    "CDC_CHANGES",
    "CDC_ERRORS",
    "CDC_LAST_FEEDBACK",
    "CDC_METRICS",
    "CDC_RETAINED_WAL",
    "CDC_SLOT_ACTIVE",
    "CDC_SLOT_SAFE_WAL_SIZE",
    "CDC_SLOT_WAL_STATUS",
    "CDC_UNCONFIRMED_WAL",
    "ERROR_KINDS",
    "LIMELIGHT_CDC_SPANS",
    "OPS",
    "WAL_STATUSES",
    "CdcPlugin",
    "plugin",
]

OPS: tuple[str, ...] = ("insert", "update", "delete", "truncate")
"""The ``op`` label values of ``cdc_changes_total``."""

ERROR_KINDS: tuple[str, ...] = ("stream", "decode", "feedback", "monitor")
"""The ``kind`` label values of ``cdc_errors_total``.

``stream``: the replication stream raised (connection lost, walsender
terminated, a server error, a keepalive or data message the driver could not
parse); ``decode``: a message the decoder did not understand; ``feedback``:
sending feedback raised; ``monitor``: the slot monitor could not connect or
query.
"""

WAL_STATUSES: tuple[str, ...] = ("reserved", "extended", "unreserved", "lost")
"""The ``status`` label values of ``cdc_slot_wal_status`` (``pg_replication_slots.wal_status``)."""

_SLOTS = 1000  # a server has at most max_replication_slots slots: well below

CDC_CHANGES = MetricDeclaration(
    "cdc_changes_total",
    MetricKind.COUNTER,
    "Row changes decoded from a logical replication stream, by slot and operation "
    "(insert, update, delete; truncate counts each truncated table).",
    unit="1",
    label_names=("slot", "op"),
    series_limit=4 * _SLOTS,
)
CDC_ERRORS = MetricDeclaration(
    "cdc_errors_total",
    MetricKind.COUNTER,
    "Failures of change data capture, by slot and kind (stream, decode, feedback, monitor); "
    "the slot monitor's own failures have an empty slot.",
    unit="1",
    label_names=("slot", "kind"),
    series_limit=4 * _SLOTS,
)
CDC_LAST_FEEDBACK = MetricDeclaration(
    "cdc_last_feedback_timestamp_seconds",
    MetricKind.GAUGE_SET,
    "Unix time at which the consumer of a slot last sent feedback (confirmed its position); "
    "time() minus this is the time since the last feedback.",
    unit="s",
    label_names=("slot",),
    series_limit=_SLOTS,
)
CDC_RETAINED_WAL = MetricDeclaration(
    "cdc_retained_wal_bytes",
    MetricKind.GAUGE_SET,
    "WAL the server keeps for a replication slot: the current WAL position minus the "
    "slot's restart_lsn, in bytes.",
    unit="By",
    label_names=("slot",),
    series_limit=_SLOTS,
)
CDC_UNCONFIRMED_WAL = MetricDeclaration(
    "cdc_unconfirmed_wal_bytes",
    MetricKind.GAUGE_SET,
    "WAL a logical slot's consumer has not confirmed: the current WAL position minus the "
    "slot's confirmed_flush_lsn, in bytes.",
    unit="By",
    label_names=("slot",),
    series_limit=_SLOTS,
)
CDC_SLOT_ACTIVE = MetricDeclaration(
    "cdc_slot_active",
    MetricKind.GAUGE_SET,
    "Whether a consumer is connected to the replication slot (1) or not (0).",
    unit="1",
    label_names=("slot",),
    series_limit=_SLOTS,
)
CDC_SLOT_WAL_STATUS = MetricDeclaration(
    "cdc_slot_wal_status",
    MetricKind.GAUGE_SET,
    "The slot's wal_status: 1 for the current one of reserved, extended, unreserved and "
    "lost, 0 for the others (PostgreSQL 13 and later).",
    unit="1",
    label_names=("slot", "status"),
    series_limit=4 * _SLOTS,
)
CDC_SLOT_SAFE_WAL_SIZE = MetricDeclaration(
    "cdc_slot_safe_wal_size_bytes",
    MetricKind.GAUGE_SET,
    "WAL that can still be written before the slot is in danger of losing what it needs "
    "(safe_wal_size; PostgreSQL 13 and later, only when max_slot_wal_keep_size is set).",
    unit="By",
    label_names=("slot",),
    series_limit=_SLOTS,
)

CDC_METRICS: tuple[MetricDeclaration, ...] = (
    CDC_CHANGES,
    CDC_ERRORS,
    CDC_LAST_FEEDBACK,
    CDC_RETAINED_WAL,
    CDC_UNCONFIRMED_WAL,
    CDC_SLOT_ACTIVE,
    CDC_SLOT_WAL_STATUS,
    CDC_SLOT_SAFE_WAL_SIZE,
)
"""Every metric the plugin declares."""

LIMELIGHT_CDC_SPANS = EnvVar(
    "LIMELIGHT_CDC_SPANS",
    False,
    parse_bool,
    "Create a CONSUMER span per decoded transaction of an instrumented replication stream "
    "(a root span: db.system.name, the slot, the number of changes). Off by default.",
    "true",
)


class CdcPlugin:
    """Declares the cdc metrics.

    The instrumented consumer (:func:`~limelight_cdc.instrument`) and the slot
    monitor (:class:`~limelight_cdc.SlotMonitor`) record into them while this
    plugin is loaded; without it they record nothing and change nothing.
    """

    limelight_name = "cdc"
    limelight_priority = 250

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return CDC_METRICS

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return (LIMELIGHT_CDC_SPANS,)

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        # limelight run (LIMELIGHT_AUTO_INSTRUMENT): psycopg2's replication cursor when
        # the application imports psycopg2, never imported for nothing
        if telemetry.config.get(LIMELIGHT_AUTO_INSTRUMENT):
            import limelight_cdc

            limelight_cdc.instrument_on_import()


plugin = CdcPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
