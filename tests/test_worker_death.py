"""A worker killed mid-request under ``uvicorn --workers 2`` in Prometheus multiprocess mode.

The service is a plain ASGI app behind ``limelight_http.ASGIMiddleware`` with
``/metrics`` served by ``limelight_prometheus.make_asgi_app()`` next to it, as
the documentation shows, run by ``python -m uvicorn --workers 2`` with
``PROMETHEUS_MULTIPROC_DIR`` set. uvicorn has no hook telling the application
that a worker died: the exposition itself forgets the live gauges of worker
processes that no longer run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from limelight_testsupport import free_port, stop_process, wait_for_port
from prometheus_client import parser

WAIT = 20.0
"""Seconds the test waits for the service to reach a state before failing."""

APP = """
import asyncio
import os
from pathlib import Path

import limelight
from limelight_http import ASGIMiddleware
from limelight_prometheus import make_asgi_app

limelight.start(service_name="workers")
HOLD = Path(os.environ["APP_HOLD_DIR"])


async def work(scope, receive, send):
    if scope["path"] == "/hold":
        # in flight until the test releases it: the worker's pid says where it is held
        token = scope["query_string"].decode()
        partial = HOLD / f"{token}.partial"
        partial.write_text(str(os.getpid()))
        partial.rename(HOLD / f"held-{token}")
        while not (HOLD / "release").exists():
            await asyncio.sleep(0.01)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})


service = ASGIMiddleware(work)
metrics = make_asgi_app()


async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/metrics":
        await metrics(scope, receive, send)
    else:
        await service(scope, receive, send)
"""


class Service:
    def __init__(self, port: int, hold: Path, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.hold = hold
        self.process = process
        self.log = log

    def in_flight(self) -> float:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return sum(
            sample.value
            for family in parser.text_string_to_metric_families(text)
            if family.name == "http_requests_in_flight"
            for sample in family.samples
        )

    def held(self) -> dict[str, int]:
        return {p.name.removeprefix("held-"): int(p.read_text()) for p in self.hold.glob("held-*")}

    def wait_held(self, tokens: set[str], sent: list[Future[Any]]) -> dict[str, int]:
        deadline = time.monotonic() + WAIT
        while not tokens <= set(held := self.held()):
            failed = [f for f in sent if f.done() and f.exception() is not None]
            if failed or time.monotonic() > deadline:
                pytest.fail(f"requests not held: {failed} {self.log.read_text()[-3000:]}")
            time.sleep(0.01)
        return held


def _dead(pid: int) -> bool:
    """Whether *pid* has died (gone, or a zombie its parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    (tmp_path / "workers_app.py").write_text(textwrap.dedent(APP))
    mp_dir, hold = tmp_path / "prometheus", tmp_path / "hold"
    mp_dir.mkdir()
    hold.mkdir()
    port = free_port()
    log = tmp_path / "uvicorn.log"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(mp_dir),
        "APP_HOLD_DIR": str(hold),
        "LIMELIGHT_PLUGINS": "http,prometheus",
        "OTEL_TRACES_EXPORTER": "none",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(tmp_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--lifespan",
                "off",
                "--log-level",
                "warning",
                "workers_app:app",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for_port("127.0.0.1", port, WAIT):
            pytest.fail(f"uvicorn did not listen: {log.read_text()}")
        yield Service(port, hold, process, log)
    finally:
        (hold / "release").touch()
        stop_process(process, timeout=15)


class TestUvicornWorkerKilled:
    """A worker SIGKILLed with requests in flight stops counting at the next scrape;
    the requests of the worker that lives on are still counted."""

    def test_in_flight_is_true_again_at_the_first_scrape_after_the_death(
        self, service: Service
    ) -> None:
        with ThreadPoolExecutor(24) as pool:
            sent: list[Future[Any]] = []
            held: dict[str, int] = {}
            # connections go to whichever worker accepts first: hold requests until
            # one worker has 4 in flight
            while not held or max(Counter(held.values()).values()) < 4:
                if len(sent) >= 24:
                    pytest.fail(f"no worker took 4 of {len(sent)} requests: {held}")
                tokens = {f"r{len(sent) + i}" for i in range(4)}
                sent += [
                    pool.submit(httpx.get, f"{service.url}/hold?{t}", timeout=60) for t in tokens
                ]
                held = service.wait_held(set(held) | tokens, sent)
            per_worker = Counter(held.values())
            doomed = max(per_worker, key=per_worker.__getitem__)
            survivors = len(held) - per_worker[doomed]
            assert float(len(held)) == service.in_flight()

            os.kill(doomed, signal.SIGKILL)
            deadline = time.monotonic() + WAIT
            while not _dead(doomed):
                assert time.monotonic() < deadline, "the worker did not die"
                time.sleep(0.01)
            # one scrape, the first after the death: the dead worker's 4+ no longer count
            assert float(survivors) == service.in_flight()

            (service.hold / "release").touch()
            for request in sent:
                with contextlib.suppress(httpx.HTTPError):  # the dead worker's fail
                    request.result(timeout=30)
        assert 0.0 == service.in_flight()
