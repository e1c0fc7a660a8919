"""The runtime metrics (process_*, python_gc_*, python_info) at a real OTLP receiver,
from the same store Prometheus reads, with the values the kernel gives."""

from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from limelight_otlp import plugin
from limelight_testsupport.otlp import OtlpReceiver, otlp_receiver
from opentelemetry.proto.metrics.v1 import metrics_pb2

from limelight.testing import Harness

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the process collector reads /proc (Linux)"
)

CUMULATIVE = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


def _start_time() -> float:
    """This process's start, as the kernel gives it."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    [btime] = [
        line.split()[1] for line in Path("/proc/stat").read_text().splitlines() if "btime" in line
    ]
    return float(fields[19]) / os.sysconf("SC_CLK_TCK") + float(btime)


def _burn(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def _attributes(point: Any) -> dict[str, str]:
    return {a.key: a.value.string_value for a in point.attributes}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as rx:
        yield rx


class TestRuntimeOverOtlp:
    """Counters as cumulative monotonic sums from the process's start, gauges as gauges."""

    def test_the_runtime_metrics_arrive_with_true_values(self, receiver: OtlpReceiver) -> None:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }
        with Harness(plugins=[plugin], env=env) as harness:
            assert harness.telemetry.force_flush()
            first = receiver.wait_for_metric("process_cpu_seconds_total")
            _burn(0.3)
            gc.collect()
            assert harness.telemetry.force_flush()
        start = _start_time()

        assert first is not None
        [before] = first.sum.data_points
        cpu = receiver.wait_for_metric(
            "process_cpu_seconds_total",
            lambda m: m.sum.data_points[0].as_double >= before.as_double + 0.25,
        )
        assert cpu is not None, "the CPU time spent between two exports"
        assert "s" == cpu.unit
        assert cpu.sum.is_monotonic
        assert CUMULATIVE == cpu.sum.aggregation_temporality
        [point] = cpu.sum.data_points
        assert point.as_double <= time.process_time() + 0.05
        # a cumulative sum counted from the process's start
        assert int(start * 1e9) == pytest.approx(point.start_time_unix_nano, abs=1e6)

        started = receiver.wait_for_metric("process_start_time_seconds")
        assert started is not None
        assert start == pytest.approx(started.gauge.data_points[0].as_double, abs=1e-6)

        resident = receiver.wait_for_metric("process_resident_memory_bytes")
        assert resident is not None
        assert "By" == resident.unit
        status = Path("/proc/self/status").read_text()
        [rss_kb] = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
        assert resident.gauge.data_points[0].as_double == pytest.approx(
            float(rss_kb) * 1024, rel=0.25
        )

        collections = receiver.wait_for_metric(
            "python_gc_collections_total",
            lambda m: any(
                _attributes(p) == {"generation": "2"} and p.as_double >= 1
                for p in m.sum.data_points
            ),
        )
        assert collections is not None, "the full collection"
        assert {"0", "1", "2"} <= {
            _attributes(p)["generation"] for p in collections.sum.data_points
        }

        info = receiver.wait_for_metric("python_info")
        assert info is not None
        [point] = info.gauge.data_points
        assert platform.python_version() == _attributes(point)["version"]
        assert 1.0 == point.as_double

        fds = receiver.wait_for_metric("process_open_fds")
        assert fds is not None
        assert fds.gauge.data_points[0].as_double > 0
