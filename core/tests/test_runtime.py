"""The runtime metrics: process_*, python_gc_* and python_info, from prometheus_client's
own collectors, true values in every read of the store."""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from prometheus_client import parser

from limelight._catalog import catalog_text, declared_metrics, metric_catalog_markdown
from limelight._runtime import RUNTIME_METRICS, runtime_declarations
from limelight.metrics import MetricKind, MetricStore
from limelight.testing import Harness

LINUX = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not LINUX, reason="the process collector reads /proc (Linux)")


def _burn(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def _collected() -> dict[str, Any]:
    """What prometheus_client's own collectors give, by exported name."""
    families: dict[str, Any] = {}
    for collector in (
        prometheus_client.PROCESS_COLLECTOR,
        prometheus_client.GC_COLLECTOR,
        prometheus_client.PLATFORM_COLLECTOR,
    ):
        for family in collector.collect():
            name = f"{family.name}_total" if family.type == "counter" else family.name
            families[name] = family
    return families


@needs_proc
class TestDeclarations:
    """The declarations are what prometheus_client's collectors describe, every one of them."""

    def test_every_metric_the_collectors_give_is_declared_with_their_shape(self) -> None:
        collected = _collected()
        declared = {d.name: d for d in runtime_declarations(multiprocess=False)}
        # a metric a new prometheus_client adds is noticed here, not silently left out
        assert set(collected) == set(RUNTIME_METRICS)
        assert list(RUNTIME_METRICS) == list(declared)
        for name, family in collected.items():
            decl = declared[name]
            assert family.documentation == decl.help
            kind = MetricKind.COUNTER if family.type == "counter" else MetricKind.GAUGE_SET
            assert kind == decl.kind
            assert tuple(family.samples[0].labels) == decl.label_names
            assert decl.observed  # readings, not recordings
        assert ("generation",) == declared["python_gc_collections_total"].label_names
        assert "s" == declared["process_cpu_seconds_total"].unit
        assert "By" == declared["process_resident_memory_bytes"].unit

    def test_in_multiprocess_mode_counters_carry_the_pid(self) -> None:
        declared = {d.name: d for d in runtime_declarations(multiprocess=True)}
        assert ("pid",) == declared["process_cpu_seconds_total"].label_names
        assert ("generation", "pid") == declared["python_gc_collections_total"].label_names
        # gauges get theirs from prometheus_client (liveall), not from the declaration
        assert () == declared["process_resident_memory_bytes"].label_names


@needs_proc
class TestValues:
    """Every read of the store (snapshot, Prometheus collection) sees the process as it is."""

    def test_cpu_time_grows_with_work(self) -> None:
        with Harness() as h:
            before = h.value("process_cpu_seconds_total")
            _burn(0.3)
            after = h.value("process_cpu_seconds_total")
        assert after - before >= 0.25
        assert after >= time.process_time() - 0.05  # the whole process's, from its start

    def test_resident_memory_follows_an_allocation(self) -> None:
        with Harness() as h:
            before = h.value("process_resident_memory_bytes")
            block = bytearray(64 * 1024 * 1024)  # zero-filled pages are touched
            for i in range(0, len(block), 4096):
                block[i] = 1
            after = h.value("process_resident_memory_bytes")
            assert h.value("process_virtual_memory_bytes") >= after
            del block
        assert after - before >= 48 * 1024 * 1024

    def test_file_descriptors(self) -> None:
        with Harness() as h:
            before = h.value("process_open_fds")
            files = [open(os.devnull) for _ in range(10)]  # noqa: SIM115
            try:
                assert before + 10 == h.value("process_open_fds")
            finally:
                for f in files:
                    f.close()
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == h.value("process_max_fds")

    def test_garbage_collections_and_python_info(self) -> None:
        with Harness() as h:
            before = h.value("python_gc_collections_total", generation="2")
            gc.collect()
            assert before + 1 <= h.value("python_gc_collections_total", generation="2")
            assert gc.get_stats()[0]["collected"] == h.value(
                "python_gc_objects_collected_total", generation="0"
            )
            [info] = h.series("python_info")
        assert platform.python_version() == info["version"]
        assert platform.python_implementation() == info["implementation"]

    def test_a_prometheus_collection_reads_them_first(self) -> None:
        with Harness() as h:
            text = prometheus_client.generate_latest(h.store.registry).decode()
            first = _sample(text, "process_cpu_seconds_total")
            _burn(0.2)
            text = prometheus_client.generate_latest(h.store.registry).decode()
            start = _sample(text, "process_start_time_seconds")
        assert _sample(text, "process_cpu_seconds_total") - first >= 0.15
        # the counter counts from the process's start: that is its creation time
        assert start == _sample(text, "process_cpu_seconds_created")

    def test_counters_start_with_the_process_over_otlp(self) -> None:
        with Harness() as h:
            family = h.metric("process_cpu_seconds_total")
            start = h.value("process_start_time_seconds")
        assert int(start * 1e9) == family.start_time_ns

    def test_the_namespace_applies(self) -> None:
        with Harness(env={"LIMELIGHT_METRICS_NAMESPACE": "shop"}) as h:
            assert h.value("shop_process_cpu_seconds_total") > 0
            assert h.series("shop_python_info")


def _sample(text: str, name: str) -> float:
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no sample {name} in:\n{text}")


START_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    time.sleep(float(sys.argv[1]))  # telemetry starts well after the process did
    from limelight.testing import Harness
    with Harness() as h:
        print(json.dumps({
            "start": h.value("process_start_time_seconds"),
            "created": h.metric("process_cpu_seconds_total").start_time_ns / 1e9,
            "telemetry": time.time(),
        }))
    """
)


@needs_proc
class TestStartTime:
    """process_start_time_seconds is when the process started, not when telemetry did."""

    def test_start_time_is_the_processs(self, tmp_path: Path) -> None:
        spawned = time.time()
        out = subprocess.run(
            [sys.executable, "-c", START_SCRIPT, "2.5"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        seen = json.loads(out)
        assert seen["telemetry"] - spawned >= 2.5
        # the kernel gives the boot time in whole seconds: the start time is within one
        assert abs(seen["start"] - spawned) < 1.2
        assert seen["start"] == pytest.approx(seen["created"])


FORK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    from limelight.testing import Harness

    with Harness() as h:
        parent = h.value("process_start_time_seconds")
        t = time.process_time()
        while time.process_time() - t < 0.5:
            pass
        parent_cpu = h.value("process_cpu_seconds_total")
        time.sleep(1.1)  # the child starts at least a kernel clock second later
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            child = {
                "start": h.value("process_start_time_seconds"),
                "cpu": h.value("process_cpu_seconds_total"),
            }
            os.write(write, json.dumps(child).encode())
            os._exit(0)
        os.close(write)
        child = json.loads(os.read(read, 4096))
        os.waitpid(pid, 0)
        print(json.dumps({"parent": parent, "parent_cpu": parent_cpu, **child}))
    """
)


@needs_proc
class TestFork:
    """A forked child that inherited the store reports itself, not its parent."""

    def test_a_forked_child_reads_its_own_process(self) -> None:
        out = subprocess.run(
            [sys.executable, "-c", FORK_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        seen = json.loads(out)
        assert seen["start"] > seen["parent"]
        assert seen["parent_cpu"] >= 0.5
        assert seen["cpu"] < 0.3  # the child's own CPU time, not the parent's total


class TestOptOut:
    """LIMELIGHT_RUNTIME_METRICS=false or disabling the plugin leaves them out."""

    @pytest.mark.parametrize(
        "env",
        [
            {"LIMELIGHT_RUNTIME_METRICS": "false"},
            {"LIMELIGHT_DISABLED_PLUGINS": "limelight.runtime_metrics"},
        ],
    )
    def test_off(self, env: dict[str, str]) -> None:
        with Harness(env=env) as h:
            names = [f.name for f in h.snapshot()]
        assert "function_calls_total" in names
        assert not [n for n in names if n.startswith(("process_", "python_"))]

    def test_an_invalid_value_is_reported_and_the_default_used(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with Harness(env={"LIMELIGHT_RUNTIME_METRICS": "sometimes"}) as h:
            names = [f.name for f in h.snapshot()]
        assert "python_info" in names
        assert "LIMELIGHT_RUNTIME_METRICS" in caplog.text


class TestCatalog:
    """`limelight catalog` and the docs' catalog list them, declared by the built-in plugin."""

    def test_listed(self) -> None:
        declared = {d.name: who for who, d in declared_metrics()}
        for name in runtime_declarations(multiprocess=False):
            assert "limelight.runtime_metrics" == declared[name.name]
        assert "process_cpu_seconds_total" in catalog_text()
        assert "| `python_info` | gauge_set |" in metric_catalog_markdown()


class TestObservers:
    """A store runs its observers before each read; a failing one is reported, the read goes on."""

    def test_observer_sets_values_before_each_read(self) -> None:
        store = MetricStore()
        depth = store.gauge_set("queue_depth", "Messages waiting.")
        backlog = [3]
        remove = store.add_observer(lambda: depth.set(backlog[0]))
        assert 3 == store.snapshot().family("queue_depth").points[0].value  # type: ignore[union-attr]
        backlog[0] = 5
        assert 5 == store.registry.get_sample_value("queue_depth")
        remove()
        backlog[0] = 9
        assert 5 == store.snapshot().family("queue_depth").points[0].value  # type: ignore[union-attr]

    def test_a_failing_observer_does_not_stop_the_read(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = MetricStore()
        depth = store.gauge_set("queue_depth", "Messages waiting.")

        def broken() -> None:
            raise RuntimeError("broker gone")

        store.add_observer(broken)
        store.add_observer(lambda: depth.set(4))
        for _ in range(3):
            assert 4 == store.snapshot().family("queue_depth").points[0].value  # type: ignore[union-attr]
        assert 1 == caplog.text.count("broker gone")
