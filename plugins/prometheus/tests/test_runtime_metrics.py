"""The runtime metrics (process_*, python_gc_*, python_info) in a real scrape: one process
serving itself, and gunicorn with two workers in multiprocess mode, each worker's own.

The app (``runtimeapp/runtime_app.py``) has no runtime-metric code of its own: it
starts telemetry and mounts ``make_wsgi_app()``. What a scrape says is checked
against what the kernel says of each process (``/proc``), and by ``promtool
check metrics``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from limelight_testsupport import free_port, stop_process, wait_for_port
from limelight_testsupport.prometheus import promtool_check_metrics
from prometheus_client import parser

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the process collector reads /proc (Linux)"
)

APP_DIR = Path(__file__).parent / "runtimeapp"
WAIT = 20.0
RUNTIME = (
    "process_cpu_seconds_total",
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
    "python_gc_objects_collected_total",
    "python_gc_objects_uncollectable_total",
    "python_gc_collections_total",
    "python_info",
)
_PARSE: Any = parser.text_string_to_metric_families
Sample = tuple[str, dict[str, str], float]


# -- what the kernel says -------------------------------------------------------------------


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise AssertionError("no btime in /proc/stat")


def kernel(pid: int) -> dict[str, float]:
    """Start time, CPU seconds, resident bytes and open descriptors of *pid*, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text()
    [rss_kb] = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
    return {
        "start": float(fields[19]) / ticks + _boot_time(),
        "cpu": (float(fields[11]) + float(fields[12])) / ticks,
        "rss": float(rss_kb) * 1024,
        "fds": float(len(os.listdir(f"/proc/{pid}/fd"))),
    }


def children(pid: int) -> set[int]:
    """The live child processes of *pid*."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


# -- scraping -----------------------------------------------------------------------------


def scrape(url: str) -> tuple[str, list[Sample]]:
    text = httpx.get(url, timeout=10).text
    samples = [(s.name, dict(s.labels), float(s.value)) for f in _PARSE(text) for s in f.samples]
    return text, samples


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [v for n, ls, v in samples if n == name and ls == labels]
    assert len(found) == 1, f"{name}{labels}: {found} in {[s for s in samples if s[0] == name]}"
    return found[0]


def runtime_samples(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s[0] in RUNTIME]


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIMELIGHT_"))}
    return {
        **env,
        "PYTHONPATH": str(APP_DIR),
        # the exporter under test and the plugin that reports the runtime; nothing else
        "LIMELIGHT_PLUGINS": "prometheus,limelight.runtime_metrics",
        "OTEL_TRACES_SAMPLER": "always_off",
        **extra,
    }


# -- one process ---------------------------------------------------------------------------


class Single:
    def __init__(self, port: int, metrics_port: int, process: subprocess.Popen[bytes]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.process = process

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=30).json()


@pytest.fixture
def single(tmp_path: Path) -> Iterator[tuple[Single, float]]:
    port, metrics_port = free_port(), free_port()
    env = _env(
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port)
    )
    log = tmp_path / "app.log"
    spawned = time.time()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(APP_DIR / "runtime_app.py"), str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for p in (port, metrics_port):
            if not wait_for_port("127.0.0.1", p, 30):
                pytest.fail(f"the app did not listen on {p}: {log.read_text()}")
        yield Single(port, metrics_port, process), spawned
    finally:
        stop_process(process)


class TestOneProcess:
    """The standalone /metrics server of a single process serves its runtime, true."""

    def test_the_scrape_passes_promtool_and_lists_every_runtime_metric(
        self, single: tuple[Single, float]
    ) -> None:
        app, _ = single
        text, samples = scrape(app.metrics_url)
        passed, output = promtool_check_metrics(text)
        assert passed, output
        assert set(RUNTIME) <= {name for name, _, _ in samples}
        assert not [s for s in runtime_samples(samples) if "pid" in s[1]]

    def test_the_values_are_the_processs(self, single: tuple[Single, float]) -> None:
        app, spawned = single
        pid = app.process.pid
        facts = app.get("/facts")
        assert pid == facts["pid"]
        _, samples = scrape(app.metrics_url)
        proc = kernel(pid)
        start = value(samples, "process_start_time_seconds")
        assert start == pytest.approx(proc["start"], abs=1e-6)
        assert abs(start - spawned) < 1.2  # the kernel gives the boot time in whole seconds
        assert start == value(samples, "process_cpu_seconds_created")
        assert value(samples, "process_resident_memory_bytes") == pytest.approx(
            proc["rss"], rel=0.25
        )
        assert abs(value(samples, "process_open_fds") - proc["fds"]) <= 3
        assert facts["max_fds"] == value(samples, "process_max_fds")
        [info] = [labels for name, labels, _ in samples if name == "python_info"]
        assert facts["version"] == info["version"]

        before = value(samples, "process_cpu_seconds_total")
        app.get("/burn?0.5")
        gen2 = value(samples, "python_gc_collections_total", generation="2")
        app.get("/gc")
        _, samples = scrape(app.metrics_url)
        after = value(samples, "process_cpu_seconds_total")
        assert after - before >= 0.45
        assert after <= kernel(pid)["cpu"] + 0.05
        assert gen2 + 1 <= value(samples, "python_gc_collections_total", generation="2")


# -- gunicorn, two workers, multiprocess mode ----------------------------------------------


class Workers:
    def __init__(self, port: int, metrics_port: int, process: subprocess.Popen[bytes]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.master_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.process = process

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=30).json()

    def pids_reporting(self, samples: list[Sample]) -> set[int]:
        return {int(ls["pid"]) for n, ls, _ in samples if n == "process_start_time_seconds"}

    def settled(self) -> tuple[set[int], list[Sample]]:
        """The two workers' pids, once each has written its runtime metrics."""

        def ready() -> tuple[set[int], list[Sample]] | None:
            workers = children(self.process.pid)
            _, samples = scrape(self.master_url)
            if len(workers) == 2 and workers <= self.pids_reporting(samples):
                return workers, samples
            return None

        found: tuple[set[int], list[Sample]] = wait_until(ready, "two workers reporting")
        return found


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    mp_dir = tmp_path / "prometheus"
    mp_dir.mkdir()
    port, metrics_port = free_port(), free_port()
    env = _env(
        PROMETHEUS_MULTIPROC_DIR=str(mp_dir),
        LIMELIGHT_RUNTIME_METRICS_INTERVAL="0.2",
        RUNTIME_METRICS_PORT=str(metrics_port),
    )
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(APP_DIR / "gunicorn_runtime.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "runtime_app:app",
            ],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for p in (port, metrics_port):
            if not wait_for_port("127.0.0.1", p, 30):
                pytest.fail(f"gunicorn did not listen on {p}: {log.read_text()}")
        yield Workers(port, metrics_port, process)
    finally:
        stop_process(process, timeout=15)


class TestTwoWorkers:
    """Under gunicorn in multiprocess mode each worker reports itself, labelled by pid;
    nothing is summed over workers."""

    def test_every_series_is_one_workers_and_promtool_passes(self, workers: Workers) -> None:
        pids, samples = workers.settled()
        text, samples = scrape(workers.master_url)
        passed, output = promtool_check_metrics(text)
        assert passed, output
        # nothing limelight makes for itself (its import-time probes) reaches the directory
        assert not [name for name, _, _ in samples if name.startswith("probe")]
        runtime = runtime_samples(samples)
        assert set(RUNTIME) == {name for name, _, _ in runtime}
        assert all("pid" in labels for _, labels, _ in runtime), runtime
        for name in RUNTIME:
            reporting = {int(ls["pid"]) for n, ls, _ in runtime if n == name}
            assert pids <= reporting, name
        master = kernel(workers.process.pid)
        for pid in pids:
            proc = kernel(pid)
            start = value(samples, "process_start_time_seconds", pid=str(pid))
            assert start == pytest.approx(proc["start"], abs=1e-6)
            assert start >= master["start"]  # a worker, not the master, nor a sum
            resident = value(samples, "process_resident_memory_bytes", pid=str(pid))
            assert resident == pytest.approx(proc["rss"], rel=0.25)
            cpu = value(samples, "process_cpu_seconds_total", pid=str(pid))
            assert cpu <= proc["cpu"] + 0.05

    def test_work_shows_in_the_worker_that_did_it(self, workers: Workers) -> None:
        pids, samples = workers.settled()
        before = {p: value(samples, "process_cpu_seconds_total", pid=str(p)) for p in pids}
        busy = workers.get("/burn?0.5")
        [idle] = pids - {busy}

        def grown() -> list[Sample] | None:
            _, now = scrape(workers.master_url)
            cpu = value(now, "process_cpu_seconds_total", pid=str(busy))
            return now if cpu - before[busy] >= 0.45 else None

        samples = wait_until(grown, "the busy worker's CPU time to grow")
        assert value(samples, "process_cpu_seconds_total", pid=str(idle)) - before[idle] < 0.3

        facts = workers.get("/facts")
        pid = str(facts["pid"])
        assert facts["max_fds"] == value(samples, "process_max_fds", pid=pid)
        [info] = [ls for n, ls, _ in samples if n == "python_info" and ls["pid"] == pid]
        assert facts["version"] == info["version"]

        gen2 = value(samples, "python_gc_collections_total", generation="2", pid=str(busy))
        collected = workers.get("/gc")

        def counted() -> bool:
            _, now = scrape(workers.master_url)
            got = value(now, "python_gc_collections_total", generation="2", pid=str(collected))
            base = gen2 if collected == busy else 0
            return got >= base + 1

        wait_until(counted, "the full collection to be counted")

    def test_a_dead_worker_leaves_its_cpu_time_and_takes_its_gauges(self, workers: Workers) -> None:
        workers.settled()
        doomed = workers.get("/burn?0.3")

        def burnt() -> bool:
            _, now = scrape(workers.master_url)
            return value(now, "process_cpu_seconds_total", pid=str(doomed)) >= 0.25

        wait_until(burnt, "the doomed worker's CPU time to be written")
        os.kill(doomed, signal.SIGKILL)

        def replaced() -> list[Sample] | None:
            # child_exit forgets the dead worker's gauges; a new worker reports itself
            _, now = scrape(workers.master_url)
            live = children(workers.process.pid)
            reporting = workers.pids_reporting(now)
            if doomed not in reporting and len(live) == 2 and live <= reporting:
                return now
            return None

        samples = wait_until(replaced, "the dead worker's gauges to go and a new worker's to come")
        gauges = [ls for n, ls, _ in samples if n == "process_resident_memory_bytes"]
        assert str(doomed) not in {ls["pid"] for ls in gauges}
        # the CPU time it used is kept, as every counter of a dead process is
        assert value(samples, "process_cpu_seconds_total", pid=str(doomed)) >= 0.25
