"""The plugin as the core sees it: entry point, priority, metrics and variables."""

from __future__ import annotations

import sqlite3

import limelight_sql
import pytest
from limelight_sql import SQL_BUCKETS, instrument_connection, plugin

import limelight
import limelight.plugins
from limelight.testing import Harness
from limelight_hookspecs import MetricKind


class TestPlugin:
    """The installed plugin is found through its entry point and declares the catalog metrics."""

    def test_discovered_through_the_entry_point(self) -> None:
        manager = limelight.plugins.discover(limelight.load_config({}))
        info = next(i for i in manager.infos() if i.name == "sql")
        assert ("loaded", 230, "limelight-sql") == (info.status, info.priority, info.distribution)
        assert "limelight_metrics_declare" in info.hooks
        assert "limelight_config_declare" in info.hooks

    @pytest.mark.limelight(plugins=[plugin])
    def test_declares_the_catalog_metrics(self, telemetry: Harness) -> None:
        ops = telemetry.store.get("sql_ops_total").declaration
        duration = telemetry.store.get("sql_op_duration_seconds").declaration
        labels = ("db_system", "op", "result")
        assert (ops.kind, ops.label_names) == (MetricKind.COUNTER, labels)
        assert (duration.kind, duration.label_names) == (MetricKind.HISTOGRAM, labels)
        assert (duration.unit, duration.bucket_bounds) == ("s", SQL_BUCKETS)

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_METRICS_NAMESPACE": "shop"})
    def test_metrics_namespace_prefix(self, telemetry: Harness) -> None:
        instrument_connection(sqlite3.connect(":memory:")).execute("SELECT 1")
        assert 1 == telemetry.value(
            "shop_sql_ops_total", db_system="sqlite", op="query", result="ok"
        )

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SQL_SPANS": "sometimes"})
    def test_invalid_spans_setting_falls_back_to_off(self, telemetry: Harness) -> None:
        instrument_connection(sqlite3.connect(":memory:")).execute("SELECT 1")
        assert [] == telemetry.spans()
        assert 1 == telemetry.value("sql_ops_total", db_system="sqlite", op="query", result="ok")

    @pytest.mark.limelight(plugins=[plugin], env={"OTEL_SDK_DISABLED": "true"})
    def test_sdk_disabled_passes_through(self, telemetry: Harness) -> None:
        conn = instrument_connection(sqlite3.connect(":memory:"))
        assert (1,) == conn.execute("SELECT 1").fetchone()
        assert "sql_ops_total" not in telemetry.store

    def test_variables_are_declared(self) -> None:
        assert ["LIMELIGHT_SQL_SPANS"] == [v.name for v in plugin.limelight_config_declare()]


class TestPublicApi:
    """The package exports exactly its documented names."""

    def test_all(self) -> None:
        public = {n for n in dir(limelight_sql) if not n.startswith("_") and n != "annotations"}
        assert sorted(limelight_sql.__all__) == sorted(public)
