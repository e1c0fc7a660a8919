"""The plugin as the core sees it, the public names, and the instrument contract."""

from __future__ import annotations

from typing import Any

import limelight_cdc
import psycopg2.extras
import pytest
from limelight_cdc import CDC_METRICS, plugin
from limelight_cdc._psycopg2 import parse_start_replication

import limelight
import limelight.plugins
from limelight.testing import Harness
from limelight_hookspecs import MetricKind

WRAPPED = ("start_replication_expert", "consume_stream", "read_message", "send_feedback")


class TestPlugin:
    """Found through its entry point; declares the catalog metrics and its variable."""

    def test_discovered_through_the_entry_point(self) -> None:
        manager = limelight.plugins.discover(limelight.load_config({}))
        info = next(i for i in manager.infos() if i.name == "cdc")
        assert ("loaded", 250, "limelight-cdc") == (info.status, info.priority, info.distribution)
        assert "limelight_metrics_declare" in info.hooks

    @pytest.mark.limelight(plugins=[plugin])
    def test_declares_the_catalog_metrics(self, telemetry: Harness) -> None:
        shapes = {
            d.name: (telemetry.store.get(d.name).declaration.kind, d.label_names)
            for d in CDC_METRICS
        }
        assert {
            "cdc_changes_total": (MetricKind.COUNTER, ("slot", "op")),
            "cdc_errors_total": (MetricKind.COUNTER, ("slot", "kind")),
            "cdc_last_feedback_timestamp_seconds": (MetricKind.GAUGE_SET, ("slot",)),
            "cdc_retained_wal_bytes": (MetricKind.GAUGE_SET, ("slot",)),
            "cdc_unconfirmed_wal_bytes": (MetricKind.GAUGE_SET, ("slot",)),
            "cdc_slot_active": (MetricKind.GAUGE_SET, ("slot",)),
            "cdc_slot_wal_status": (MetricKind.GAUGE_SET, ("slot", "status")),
            "cdc_slot_safe_wal_size_bytes": (MetricKind.GAUGE_SET, ("slot",)),
        } == shapes

    def test_variables_are_declared(self) -> None:
        assert ["LIMELIGHT_CDC_SPANS"] == [v.name for v in plugin.limelight_config_declare()]

    def test_public_names(self) -> None:
        assert [
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
        ] == limelight_cdc.__all__
        for name in limelight_cdc.__all__:
            assert getattr(limelight_cdc, name) is not None


class TestInstrumentContract:
    """instrument() is idempotent and uninstrument() restores psycopg2 exactly."""

    def test_instrument_twice_patches_once_and_uninstrument_restores(self) -> None:
        cls = psycopg2.extras.ReplicationCursor
        before = {name: vars(cls).get(name) for name in WRAPPED}
        assert all(v is None for v in before.values())  # inherited from the C cursor
        assert ("psycopg2",) == limelight_cdc.instrument()
        assert () == limelight_cdc.instrument("psycopg2")
        assert limelight_cdc.is_instrumented("psycopg2") and limelight_cdc.is_instrumented()
        assert all(name in vars(cls) for name in WRAPPED)
        assert ("psycopg2",) == limelight_cdc.uninstrument()
        assert before == {name: vars(cls).get(name) for name in WRAPPED}
        assert not limelight_cdc.is_instrumented()
        c_cursor: Any = cls.__mro__[1]
        assert cls.consume_stream is c_cursor.consume_stream  # the C cursor's own again

    def test_unknown_library(self) -> None:
        with pytest.raises(ValueError, match="cannot instrument"):
            limelight_cdc.instrument("asyncpg")


class TestStartReplicationCommand:
    """The slot and options are read from the command psycopg2 sends."""

    @pytest.mark.parametrize(
        ("command", "expected"),
        [
            (
                'START_REPLICATION SLOT "orders" LOGICAL 0/0 ("proto_version" \'1\', '
                "\"publication_names\" 'a,b')",
                ("orders", {"proto_version": "1", "publication_names": "a,b"}),
            ),
            ('START_REPLICATION SLOT "we""ird" LOGICAL 1/A0', ('we"ird', {})),
            (
                "start_replication slot Debezium logical 0/16B3748 (\"format-version\" '2')",
                ("debezium", {"format-version": "2"}),
            ),
            (b'START_REPLICATION SLOT "b" LOGICAL 0/0', ("b", {})),
            ('START_REPLICATION SLOT "phys" 0/0', None),  # physical
            ("IDENTIFY_SYSTEM", None),
        ],
    )
    def test_parse(self, command: str | bytes, expected: object) -> None:
        assert expected == parse_start_replication(command)
