"""The plugin as the core sees it: entry point, priority, metrics and variables."""

from __future__ import annotations

import limelight_kv
import pytest
from limelight_kv import KV_BUCKETS, MemoryStore, op_label, plugin

import limelight
import limelight.plugins
from limelight.testing import Harness
from limelight_hookspecs import MetricKind


class TestPlugin:
    """The installed plugin is found through its entry point and declares the catalog metrics."""

    def test_discovered_through_the_entry_point(self) -> None:
        manager = limelight.plugins.discover(limelight.load_config({}))
        info = next(i for i in manager.infos() if i.name == "kv")
        assert ("loaded", 220, "limelight-kv") == (info.status, info.priority, info.distribution)
        assert "limelight_metrics_declare" in info.hooks
        assert "limelight_config_declare" in info.hooks

    @pytest.mark.limelight(plugins=[plugin])
    def test_declares_the_catalog_metrics(self, telemetry: Harness) -> None:
        ops = telemetry.store.get("kv_ops_total").declaration
        duration = telemetry.store.get("kv_op_duration_seconds").declaration
        assert (ops.kind, ops.label_names) == (MetricKind.COUNTER, ("namespace", "op", "result"))
        assert (
            duration.kind,
            duration.label_names,
        ) == (MetricKind.HISTOGRAM, ("namespace", "op", "result"))
        assert (duration.unit, duration.bucket_bounds) == ("s", KV_BUCKETS)

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_METRICS_NAMESPACE": "shop"})
    def test_metrics_namespace_prefix(self, telemetry: Harness) -> None:
        MemoryStore("cache").get("a")
        assert 1 == telemetry.value(
            "shop_kv_ops_total", namespace="cache", op="get", result="not_found"
        )

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "maybe"})
    def test_invalid_spans_setting_falls_back_to_off(self, telemetry: Harness) -> None:
        MemoryStore("cache").get("a")
        assert [] == telemetry.spans()
        assert 1 == telemetry.value("kv_ops_total", namespace="cache", op="get", result="not_found")

    def test_variables_are_declared(self) -> None:
        names = [v.name for v in plugin.limelight_config_declare()]
        assert ["LIMELIGHT_KV_SPANS"] == names

    @pytest.mark.limelight(plugins=[plugin], env={"OTEL_SDK_DISABLED": "true"})
    def test_sdk_disabled_records_nothing(self, telemetry: Harness) -> None:
        store: MemoryStore[int] = MemoryStore("cache")
        store.set("a", 1)
        assert 1 == store.get("a")
        assert "kv_ops_total" not in telemetry.store


class TestOpLabel:
    """Command names become bounded op labels."""

    @pytest.mark.parametrize(
        ("command", "label"),
        [
            ("GET", "get"),
            ("DEL", "delete"),
            ("CLIENT LIST", "client list"),
            ("JSON.GET", "json.get"),
            ("get user:42 now", "other"),
            ("", "other"),
            ("ZZ" * 40, "other"),
            ("{evil}", "other"),
        ],
    )
    def test_op_label(self, command: str, label: str) -> None:
        assert label == op_label(command)

    @pytest.mark.limelight(plugins=[plugin])
    def test_distinct_ops_per_namespace_are_capped(self, telemetry: Harness) -> None:
        from limelight_kv._instruments import namespace_binding

        ns = namespace_binding("capped").get()
        labels = {ns.op(f"CMD{i}").label for i in range(limelight_kv.MAX_OPS + 10)}
        assert len(labels) == limelight_kv.MAX_OPS + 1
        assert limelight_kv.OTHER_OP in labels

    @pytest.mark.limelight(plugins=[plugin])
    def test_command_names_made_of_data_do_not_grow_the_cache(self, telemetry: Harness) -> None:
        from limelight_kv._instruments import _MAX_CACHED_OPS, namespace_binding

        ns = namespace_binding("flooded").get()
        for i in range(_MAX_CACHED_OPS + 500):
            ns.op(f"GET user:{i} now").ok(0.001)
        assert len(ns.ops) == _MAX_CACHED_OPS
        assert _MAX_CACHED_OPS + 500 == telemetry.value(
            "kv_ops_total", namespace="flooded", op="other", result="ok"
        )


class TestPublicApi:
    """The package exports exactly its documented names."""

    def test_all(self) -> None:
        assert sorted(limelight_kv.__all__) == sorted(
            name for name in dir(limelight_kv) if not name.startswith("_") and name != "annotations"
        )
