"""limelight-cdc: PostgreSQL logical replication, changes counted and every slot's WAL watched.

Two parts, usable apart:

- the **slot monitor** works for any consumer (a Python one, Debezium, anything)::

      from limelight_cdc import SlotMonitor

      SlotMonitor("host=db dbname=app user=monitor", interval=15).start()

  ``cdc_retained_wal_bytes``, ``cdc_unconfirmed_wal_bytes``, ``cdc_slot_active``,
  ``cdc_slot_wal_status`` and ``cdc_slot_safe_wal_size_bytes`` per slot;

- the **instrumented consumer** for psycopg2's ``LogicalReplicationConnection``::

      import limelight_cdc

      limelight_cdc.instrument()   # psycopg2's replication cursor, when installed

  ``cdc_changes_total`` by slot and operation (pgoutput, wal2json,
  test_decoding), ``cdc_errors_total``, ``cdc_last_feedback_timestamp_seconds``,
  and a span per transaction when ``LIMELIGHT_CDC_SPANS=true``.

See ``docs/plugins/cdc.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports
from limelight.surface import Instrumentation, Instrumentor, Patches

if _TYPE_CHECKING:
    from ._decode import FORMATS, DecodeError
    from ._instruments import count_error
    from ._monitor import DRIVERS, SlotMonitor
    from ._plugin import (
        CDC_CHANGES,
        CDC_ERRORS,
        CDC_LAST_FEEDBACK,
        CDC_METRICS,
        CDC_RETAINED_WAL,
        CDC_SLOT_ACTIVE,
        CDC_SLOT_SAFE_WAL_SIZE,
        CDC_SLOT_WAL_STATUS,
        CDC_UNCONFIRMED_WAL,
        ERROR_KINDS,
        LIMELIGHT_CDC_SPANS,
        OPS,
        WAL_STATUSES,
        CdcPlugin,
        plugin,
    )
    from ._psycopg2 import decode_as, stream_of
    from ._stream import CHANGES_ATTRIBUTE, SLOT_ATTRIBUTE, ChangeStream

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
    "CHANGES_ATTRIBUTE",
    "DRIVERS",
    "ERROR_KINDS",
    "FORMATS",
    "LIMELIGHT_CDC_SPANS",
    "OPS",
    "SLOT_ATTRIBUTE",
    "WAL_STATUSES",
    "CdcPlugin",
    "ChangeStream",
    "DecodeError",
    "SlotMonitor",
    "count_error",
    "decode_as",
    "instrument",
    "is_instrumented",
    "plugin",
    "stream_of",
    "uninstrument",
]


def _install_psycopg2(patches: Patches) -> None:
    from . import _psycopg2

    _psycopg2.install(patches)


_instrumentation = Instrumentation("cdc", [Instrumentor("psycopg2", _install_psycopg2)])
instrument = _instrumentation.instrument
instrument_on_import = _instrumentation.instrument_on_import
uninstrument = _instrumentation.uninstrument
is_instrumented = _instrumentation.is_instrumented

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._decode": ("FORMATS", "DecodeError"),
        "._instruments": ("count_error",),
        "._monitor": ("DRIVERS", "SlotMonitor"),
        "._plugin": (
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
        ),
        "._psycopg2": ("decode_as", "stream_of"),
        "._stream": ("CHANGES_ATTRIBUTE", "SLOT_ATTRIBUTE", "ChangeStream"),
    },
)
