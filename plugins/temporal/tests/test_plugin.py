"""The distribution: its names, its catalog, how buffered metrics are named."""

from __future__ import annotations

import limelight_temporal
import pytest
from limelight_temporal._catalog import label_name, store_name

from limelight.testing import Harness
from limelight_hookspecs import MetricDeclaration, MetricKind


def test_all_names_resolve() -> None:
    for name in limelight_temporal.__all__:
        assert getattr(limelight_temporal, name) is not None
    assert sorted(limelight_temporal.__all__) == sorted(set(limelight_temporal.__all__))


class TestCatalog:
    """The SDK metrics known in advance are declared at start, named the Prometheus way."""

    def test_declared_at_start(self) -> None:
        with Harness(plugins=[limelight_temporal.plugin]) as telemetry:
            for declaration in limelight_temporal.PLUGIN_METRICS:
                assert declaration.name in telemetry.store

    def test_names(self) -> None:
        names = {d.name: d for d in limelight_temporal.SDK_METRICS}
        assert MetricKind.COUNTER is names["temporal_request_total"].kind
        assert "s" == names["temporal_activity_execution_latency_seconds"].unit
        assert MetricKind.GAUGE_SET is names["temporal_worker_task_slots_available"].kind
        assert all(n.startswith("temporal_") for n in names)

    @pytest.mark.parametrize(
        ("name", "kind", "seconds", "expected"),
        [
            ("temporal_request", MetricKind.COUNTER, False, "temporal_request_total"),
            ("done_total", MetricKind.COUNTER, False, "done_total"),
            ("temporal_x_latency", MetricKind.HISTOGRAM, True, "temporal_x_latency_seconds"),
            ("sizes", MetricKind.HISTOGRAM, False, "sizes"),
            ("my.metric-name", MetricKind.GAUGE_SET, False, "my_metric_name"),
            ("9lives", MetricKind.GAUGE_SET, False, "_9lives"),
        ],
    )
    def test_store_names(self, name: str, kind: MetricKind, seconds: bool, expected: str) -> None:
        assert expected == store_name(name, kind, seconds)

    @pytest.mark.parametrize(
        ("name", "kind", "unit", "expected"),
        [
            ("temporal_cache_age", MetricKind.GAUGE_SET, "s", "temporal_cache_age_seconds"),
            ("temporal_x_latency", MetricKind.HISTOGRAM, "ms", "temporal_x_latency_milliseconds"),
            ("temporal_sent", MetricKind.COUNTER, "By", "temporal_sent_bytes_total"),
            ("temporal_sent_bytes_total", MetricKind.COUNTER, "By", "temporal_sent_bytes_total"),
            ("temporal_polls", MetricKind.COUNTER, "1", "temporal_polls_total"),
        ],
    )
    def test_store_names_carry_the_unit_a_declaration_needs(
        self, name: str, kind: MetricKind, unit: str, expected: str
    ) -> None:
        got = store_name(name, kind, False, unit)
        assert expected == got
        MetricDeclaration(got, kind, "Help.", unit=unit)  # accepted as declared

    @pytest.mark.parametrize(
        ("key", "expected"),
        [("task_queue", "task_queue"), ("my-key", "my_key"), ("le", None), ("__x", None)],
    )
    def test_label_names(self, key: str, expected: str | None) -> None:
        assert expected == label_name(key)

    def test_variables_are_declared(self) -> None:
        with Harness(plugins=[limelight_temporal.plugin]) as telemetry:
            assert 1.0 == telemetry.telemetry.config.get(
                limelight_temporal.LIMELIGHT_TEMPORAL_METRICS_INTERVAL
            )
