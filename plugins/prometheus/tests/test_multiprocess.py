"""prometheus_client multiprocess mode under gunicorn with real worker processes.

The app (``mpapp/app.py``) mounts ``make_wsgi_app()`` at ``/metrics`` in every
worker, and the gunicorn configuration (``mpapp/gunicorn_conf.py``) serves the
same aggregate from the master with ``start_http_server`` in ``when_ready``, as
the documentation describes. Requests held on a release file pin work to known
worker processes without any timing assumption.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from limelight_testsupport import free_port, stop_process, wait_for_port
from prometheus_client import parser

APP_DIR = Path(__file__).parent / "mpapp"
_PARSE: Any = parser.text_string_to_metric_families
WAIT = 15.0
"""Seconds a test waits for gunicorn to reach a state before failing."""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Server:
    def __init__(
        self,
        port: int,
        metrics_port: int,
        process: subprocess.Popen[bytes],
        log: Path,
        hold_dir: Path,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.master_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.process = process
        self.log = log
        self.hold_dir = hold_dir

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)

    def families(self, url: str | None = None) -> dict[str, Any]:
        """The metric families scraped from *url* (the master's server by default)."""
        text = httpx.get(url or self.master_url, timeout=10).text
        return {f.name: f for f in _PARSE(text)}

    def metrics(self, url: str | None = None) -> Samples:
        """The samples scraped from *url* (the master's server by default)."""
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in self.families(url).values()
            for s in f.samples
        }

    def hold(self, pool: ThreadPoolExecutor, token: str, query: str = "") -> Future[str]:
        """Send ``/hold?token=...``; it stays in its worker until :meth:`release`."""
        return pool.submit(lambda: self.get(f"/hold?token={token}{query}").text)

    def held_pid(self, token: str, request: Future[str]) -> int:
        """The pid of the worker holding *token*, once the request is held there."""
        held = self.hold_dir / f"held-{token}"
        deadline = time.monotonic() + WAIT
        while not held.exists():
            if request.done():
                pytest.fail(f"/hold?token={token} returned before being held: {request.result()}")
            if time.monotonic() > deadline:
                pytest.fail(f"/hold?token={token} was not held: {self.log.read_text()[-3000:]}")
            time.sleep(0.01)
        return int(held.read_text())

    def release(self, token: str) -> None:
        (self.hold_dir / f"release-{token}").touch()


@pytest.fixture
def gunicorn(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    child_exit = getattr(request, "param", "on")  # off: a configuration without the hook
    mp_dir = tmp_path / "prometheus"
    mp_dir.mkdir()
    hold_dir = tmp_path / "hold"
    hold_dir.mkdir()
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(mp_dir),
        "PYTHONPATH": str(APP_DIR),
        "LIMELIGHT_PLUGINS": "prometheus",
        "OTEL_TRACES_SAMPLER": "always_off",
        "MPAPP_HOLD_DIR": str(hold_dir),
        "MPAPP_METRICS_PORT": str(metrics_port),
        "MPAPP_CHILD_EXIT": child_exit,
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(APP_DIR / "gunicorn_conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "app:app",
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
        yield Server(port, metrics_port, process, log, hold_dir)
    finally:
        for token in ("a", "b", "s"):  # a failed test must not leave a worker held
            (hold_dir / f"release-{token}").touch()
        stop_process(process, timeout=15)


class TestGunicornWorkers:
    """Counters and histograms sum over workers; additive gauges sum the live ones;
    absolute gauges keep the most recent value; the master serves the same aggregate."""

    def test_first_scrape_lists_unlabelled_metrics_and_not_unused_label_sets(
        self, gunicorn: Server
    ) -> None:
        # a worker's /metrics answers once that worker has started telemetry
        families = gunicorn.families(gunicorn.url + "/metrics")
        assert [0.0] == [s.value for s in families["app_in_flight"].samples]
        # an absolute gauge never set is listed without a value
        assert [] == families["app_last_value"].samples
        # a labelled metric has nothing in the files until a label set is used
        assert "app_requests" not in families
        assert "app_latency_seconds" not in families

        gunicorn.get("/work")
        families = gunicorn.families(gunicorn.url + "/metrics")
        assert [1.0] == [s.value for s in families["app_requests"].samples]

    def test_counters_and_histograms_sum_over_workers(self, gunicorn: Server) -> None:
        pids: set[str] = set()
        sent = 0
        with ThreadPoolExecutor(4) as pool:
            # a worker still booting serves nothing: send until both have served
            while len(pids) < 2 and sent < 400:
                pids.update(pool.map(lambda _: gunicorn.get("/work").text, range(20)))
                sent += 20
        assert len(pids) == 2, "both workers must have served requests"

        metrics = gunicorn.metrics()
        assert metrics[("app_requests_total", (("path", "/work"),))] == sent
        assert metrics[("app_latency_seconds_count", (("path", "/work"),))] == sent
        assert metrics[("app_latency_seconds_bucket", (("le", "0.025"), ("path", "/work")))] == sent
        assert metrics[("app_in_flight", ())] == 0.0
        # any worker's /metrics serves the same aggregate as the master's server
        assert gunicorn.metrics(gunicorn.url + "/metrics") == metrics

    def test_one_target_info_for_the_service_from_master_and_workers(
        self, gunicorn: Server
    ) -> None:
        gunicorn.get("/work")

        def info(url: str | None = None) -> list[dict[str, str]]:
            return [dict(k[1]) for k, v in gunicorn.metrics(url).items() if k[0] == "target_info"]

        # the master runs no telemetry: the workers' own resource, per-process ids left out
        [labels] = info()
        assert "multiprocess-test" == labels["service_name"]
        assert not {"service_instance_id", "process_pid", "process_parent_pid"} & set(labels)
        assert [labels] == info(gunicorn.url + "/metrics")

    def test_additive_gauge_sums_the_requests_in_flight_in_both_workers(
        self, gunicorn: Server
    ) -> None:
        with ThreadPoolExecutor(2) as pool:
            first, second = gunicorn.hold(pool, "a"), gunicorn.hold(pool, "b")
            pids = {gunicorn.held_pid("a", first), gunicorn.held_pid("b", second)}
            assert 2 == len(pids), "each worker holds one request"
            # both workers are busy: the master's server answers
            assert gunicorn.metrics()[("app_in_flight", ())] == 2.0
            gunicorn.release("a")
            gunicorn.release("b")
            assert pids == {int(first.result()), int(second.result())}
        assert gunicorn.metrics()[("app_in_flight", ())] == 0.0

    def test_absolute_gauge_keeps_the_most_recent_value_whichever_worker_set_it(
        self, gunicorn: Server
    ) -> None:
        with ThreadPoolExecutor(1) as pool:
            held = gunicorn.hold(pool, "s", "&set=7&then=5")
            first = gunicorn.held_pid("s", held)
            # the holding worker is busy, so the other worker serves this one
            second = int(gunicorn.get("/set?3").text)
            assert first != second
            assert gunicorn.metrics()[("app_last_value", ())] == 3.0
            gunicorn.release("s")
            assert first == int(held.result())
        assert gunicorn.metrics()[("app_last_value", ())] == 5.0

    @pytest.mark.parametrize(
        "gunicorn", ["on", "off"], indirect=True, ids=["child_exit", "no_hook"]
    )
    def test_a_dead_worker_is_forgotten_by_live_gauges_and_kept_by_counters(
        self, gunicorn: Server
    ) -> None:
        # with child_exit the master forgets the worker as it reaps it; without the hook
        # the exposition finds that the worker no longer runs
        with ThreadPoolExecutor(1) as pool:
            held = gunicorn.hold(pool, "a")
            live = gunicorn.held_pid("a", held)
            # the holding worker is busy: the other one serves both requests below
            doomed = int(gunicorn.get("/work").text)
            assert live != doomed
            # it dies mid-request: its in-flight count is forgotten
            with pytest.raises(httpx.HTTPError):
                gunicorn.get("/crash")
            deadline = time.monotonic() + WAIT
            metrics = gunicorn.metrics()
            while metrics[("app_in_flight", ())] != 1.0 and time.monotonic() < deadline:
                time.sleep(0.1)
                metrics = gunicorn.metrics()
            # what is left in flight is the live worker's held request
            assert metrics[("app_in_flight", ())] == 1.0, gunicorn.log.read_text()[-3000:]
            # what the dead worker counted is kept
            assert metrics[("app_requests_total", (("path", "/work"),))] == 1.0
            gunicorn.release("a")
            assert live == int(held.result())
        assert gunicorn.metrics()[("app_in_flight", ())] == 0.0


class TestDeadProcesses:
    """A process counts as dead once it is gone or a zombie; only live-gauge files of
    dead processes are removed, never the collecting process's own nor counters."""

    def test_running_zombie_and_reaped_processes(self) -> None:
        from limelight_prometheus._multiprocess import process_running

        assert process_running(os.getpid())
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        deadline = time.monotonic() + WAIT
        while process_running(child.pid):  # exited, not yet reaped: a zombie
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        child.wait()
        assert not process_running(child.pid)

    def test_only_live_gauge_files_of_dead_processes_go(self, tmp_path: Path) -> None:
        from limelight_prometheus._multiprocess import forget_dead_processes

        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        names = [
            f"gauge_livesum_{child.pid}.db",
            f"gauge_liveall_{child.pid}.db",
            f"counter_{child.pid}.db",
            f"histogram_{child.pid}.db",
            f"gauge_mostrecent_{child.pid}.db",
            f"gauge_livesum_{os.getpid()}.db",
        ]
        for name in names:
            (tmp_path / name).write_bytes(b"")
        assert [child.pid] == forget_dead_processes(str(tmp_path))
        assert sorted(names[2:]) == sorted(p.name for p in tmp_path.iterdir())
        assert [] == forget_dead_processes(str(tmp_path))


def _master(script: str, tmp_path: Path) -> str:
    """What *script* prints, run as a multiprocess-mode master (no telemetry started)."""
    mp_dir = tmp_path / "prometheus"
    mp_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class TestMasterServerBeforeFork:
    """A pre-forking master serves /metrics from a thread while it forks workers. Any
    import that thread runs at a scrape can be under way at a fork, and leaves that
    module's import lock held in the child, whose first import of it then hangs
    (a gunicorn worker stuck in ``limelight.start``). The server does its imports
    when it starts, in the caller's thread."""

    def test_a_scrape_of_the_master_imports_nothing(self, tmp_path: Path) -> None:
        script = """
import sys
from limelight_prometheus import start_http_server
server = start_http_server(0, "127.0.0.1")
before = set(sys.modules)
import urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read()
after = set(sys.modules) - before - {"urllib.request"}
print(sorted(m for m in after if m.startswith(("limelight", "prometheus_client"))))
"""
        assert "[]" == _master(script, tmp_path)

    def test_a_scrape_of_the_master_builds_nothing(self, tmp_path: Path) -> None:
        # with no telemetry running, the inactive one a scrape reads exists before the
        # first scrape: building it takes the process lock on the server thread
        script = """
import urllib.request
from limelight._state import STATE
from limelight_prometheus import start_http_server
server = start_http_server(0, "127.0.0.1")
before = STATE.default
urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read()
print(before is not None, STATE.default is before)
"""
        assert "True True" == _master(script, tmp_path)
