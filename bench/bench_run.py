"""``limelight run`` against ``opentelemetry-instrument`` on the same FastAPI app.

The app (``bench/_runapp.py``, no telemetry line in its code) is served by
uvicorn three ways, each in its own process, rounds interleaved: bare, under
``limelight run --`` and under ``opentelemetry-instrument`` (the distro and
the instrumentations of ``bench/requirements-startup.txt``), both exporting
spans and metrics over OTLP/HTTP to a real receiver (``oteltap``) in this
process. Measured, for the server process:

- start-up: the wall time from the spawn to the first answered request, and
  the CPU the server has used by then (``/proc/<pid>/schedstat``);
- per request: the server's CPU per request over a keep-alive connection,
  once warmed up (a SERVER span and the HTTP metrics for each).

Figures over the bare server, medians of the rounds.

    nox -s "bench(run)" [-- --rounds 5 --requests 3000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from limelight_testsupport.otlp import OtlpReceiver

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"{name} is not installed next to {sys.executable}")
    return found


def _one(prefix: list[str], env: dict[str, str], requests: int) -> tuple[float, float, float]:
    """(start-up wall s, start-up CPU s, CPU µs per request) of one server process."""
    port = _free_port()
    command = [*prefix, sys.executable, "-m", "uvicorn", "_runapp:app", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=HERE)
    url = f"http://127.0.0.1:{port}/items/1"
    try:
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.TransportError:
                    if process.poll() is not None:
                        raise SystemExit(f"{command} exited with {process.returncode}") from None
                    time.sleep(0.002)
            wall = time.perf_counter() - started
            startup_cpu = _cpu_ns(process.pid) / 1e9
            for _ in range(300):  # warm up
                client.get(url)
            before = _cpu_ns(process.pid)
            for _ in range(requests):
                client.get(url)
            per_request = (_cpu_ns(process.pid) - before) / requests / 1e3
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    return wall, startup_cpu, per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with OtlpReceiver() as receiver:
        # bytecode caches written by the first round, as any deployed service has them
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "LIMELIGHT_", "PROMETHEUS_"))
            and k != "PYTHONDONTWRITEBYTECODE"
        }
        env.update(
            {
                "OTEL_SERVICE_NAME": "bench-run",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "otlp",
                "OTEL_LOGS_EXPORTER": "none",
            }
        )
        variants = {
            "bare uvicorn": [],
            "limelight run": [_tool("limelight"), "run", "--"],
            "opentelemetry-instrument": [_tool("opentelemetry-instrument")],
        }
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
        for prefix in variants.values():  # warm the file and bytecode caches once
            _one(prefix, env, 100)
        for _ in range(args.rounds):
            for name, prefix in variants.items():
                results[name].append(_one(prefix, env, args.requests))
        spans = len(receiver.spans())

    def median(name: str, i: int) -> float:
        return statistics.median(r[i] for r in results[name])

    bare = "bare uvicorn"
    print(
        f"FastAPI under uvicorn, median of {args.rounds} interleaved rounds, "
        f"{args.requests} requests each ({spans} spans received over OTLP)"
    )
    print(
        f"bare: start-up {median(bare, 0) * 1e3:.0f} ms wall, {median(bare, 1) * 1e3:.0f} ms "
        f"CPU; {median(bare, 2):.0f} µs CPU per request\n"
    )
    print(f"{'':26} {'start-up wall':>14} {'start-up CPU':>13} {'per request':>12}")
    for name in variants:
        if name == bare:
            continue
        wall = (median(name, 0) - median(bare, 0)) * 1e3
        cpu = (median(name, 1) - median(bare, 1)) * 1e3
        request = median(name, 2) - median(bare, 2)
        print(f"{name:26} {wall:+11.0f} ms {cpu:+10.0f} ms {request:+9.0f} µs")
    ours, theirs = "limelight run", "opentelemetry-instrument"

    def ratio(i: int) -> float:
        return (median(ours, i) - median(bare, i)) / (median(theirs, i) - median(bare, i))

    print(
        f"\nlimelight run / opentelemetry-instrument, over bare: start-up CPU {ratio(1):.2f}x, "
        f"per request {ratio(2):.2f}x"
    )


if __name__ == "__main__":
    main()
