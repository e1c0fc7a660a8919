"""prometheus_client multiprocess mode under gunicorn with real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from limelight_testsupport import free_port, stop_process, wait_for_port
from prometheus_client import parser

APP_DIR = Path(__file__).parent / "mpapp"
_PARSE: Any = parser.text_string_to_metric_families


class Server:
    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.log = log

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.get("/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in _PARSE(text)
            for s in f.samples
        }


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Server]:
    mp_dir = tmp_path / "prometheus"
    mp_dir.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(mp_dir),
        "PYTHONPATH": str(APP_DIR),
        "LIMELIGHT_PLUGINS": "prometheus",
        "OTEL_TRACES_SAMPLER": "always_off",
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
        if not wait_for_port("127.0.0.1", port, 30):
            pytest.fail(f"gunicorn did not start: {log.read_text()}")
        yield Server(port, process, log)
    finally:
        stop_process(process, timeout=15)


class TestGunicornWorkers:
    """Counters and histograms sum over workers; additive gauges sum the live ones."""

    def test_values_aggregate_over_workers_and_a_dead_worker_does_not_stick(
        self, gunicorn: Server
    ) -> None:
        with ThreadPoolExecutor(4) as pool:
            pids = set(pool.map(lambda _: gunicorn.get("/work").text, range(40)))
        assert len(pids) >= 2, "both workers must have served requests"

        metrics = gunicorn.metrics()
        assert metrics[("app_requests_total", (("path", "/work"),))] == 40.0
        assert metrics[("app_latency_seconds_count", (("path", "/work"),))] == 40.0
        assert metrics[("app_latency_seconds_bucket", (("le", "0.025"), ("path", "/work")))] == 40.0
        assert metrics[("app_in_flight", ())] == 0.0

        # absolute gauges keep the most recent value, whichever worker set it
        for value in ("5", "7", "3"):
            gunicorn.get("/set?" + value)
        assert gunicorn.metrics()[("app_last_value", ())] == 3.0

        # a worker dies mid-request: child_exit forgets its in-flight count
        with pytest.raises(httpx.HTTPError):
            gunicorn.get("/crash")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            metrics = gunicorn.metrics()
            if metrics[("app_in_flight", ())] == 0.0:
                break
            time.sleep(0.2)
        assert metrics[("app_in_flight", ())] == 0.0, gunicorn.log.read_text()[-3000:]
        # what the dead worker counted is kept
        assert metrics[("app_requests_total", (("path", "/work"),))] == 40.0
