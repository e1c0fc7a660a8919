"""Added CPU per spawned process and per pool task: limelight-process against bare.

The OpenTelemetry contrib has no instrumentation of process spawning (its
``system-metrics`` instrumentation samples the process's own resource usage,
nothing per child), so each figure is limelight against the bare standard
library, measured in the same run with rounds interleaved.

- ``subprocess.run(["true"])``: the parent's CPU per spawn (``time.process_time``;
  the child's own CPU is reported apart, from ``RUSAGE_CHILDREN``), bare,
  instrumented with telemetry off, and with span + metrics (spans exported in
  batches to an exporter that drops them).
- The wrapper alone: ``Popen.__init__`` instrumented around a no-op in place of
  the real one, so the instrumentation's own CPU is measured without the
  kernel's fork/exec noise (off: one binding lookup; on: the span, the
  environment copy carrying the context, the metrics, the end at reaping).
- ``ProcessPoolExecutor`` (fork, 2 workers): CPU per task of the submitter and
  its workers together (workers are reaped at shutdown, so their CPU is in
  ``RUSAGE_CHILDREN``), bare and with span + metrics (the task span in the
  worker, the counts in the submitter).

``--instructions`` counts instead of timing: ``subprocess.run(["true"])`` in
a fresh process per variant (bare, telemetry off, span + metrics) under
``valgrind --tool=callgrind``, once with one spawn and once with one plus
``--spawns``. The difference, divided by ``--spawns``, is the parent's
instructions per spawn: every thread of the parent, the export thread
included. The children are not followed, and the kernel's fork, exec and wait
are not counted, so the bare figure is the small user-space part of a bare
spawn's CPU. The same command gives the same counts on a loaded machine::

    nox -s "bench(process)"
    nox -s "bench(process)" -- --instructions --spawns 300
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import limelight_process
from _common import add_instruction_options, instructions_per_unit, start_limelight
from opentelemetry import propagate

from limelight.propagation import build_propagator

SPAWN_TARGET_PERCENT = 5.0
OFF_TARGET_US = 2.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _spawns(n: int) -> tuple[float, float, float]:
    """Parent CPU, children CPU and wall µs per ``subprocess.run(["true"])``."""
    children = _children_cpu()
    wall = time.perf_counter()
    start = time.process_time()
    for _ in range(n):
        subprocess.run(["true"], check=True)
    parent = (time.process_time() - start) / n * 1e6
    wall = (time.perf_counter() - wall) / n * 1e6
    return parent, (_children_cpu() - children) / n * 1e6, wall


def _square(x: int) -> int:
    return x * x


def _pool_tasks(n: int) -> float:
    """Submitter plus workers CPU µs per task, over one executor's life."""
    children = _children_cpu()
    start = time.process_time()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        for future in [pool.submit(_square, i) for i in range(n)]:
            future.result()
    own = time.process_time() - start
    return (own + _children_cpu() - children) / n * 1e6


def _wrapper_alone(n: int) -> float:
    """CPU µs per ``Popen.__init__`` call when the real one is a no-op."""
    popen = subprocess.Popen
    new = object.__new__
    init = popen.__init__
    args = ["true"]
    start = time.process_time()
    for _ in range(n):
        process = new(popen)
        init(process, args)
        process.returncode = 0  # reaped: the run ends, as at a real child's exit
    return (time.process_time() - start) / n * 1e6


def _noop_init(self: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
    self.pid = 4242
    self.returncode = None


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0]:.2f} to {ordered[-1]:.2f}"


INSTRUCTION_VARIANTS = ("bare", "off", "on")


def spawn_child(variant: str, spawns: int) -> None:
    """*spawns* runs of ``true`` as *variant* says, in this process (for callgrind)."""
    propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))
    telemetry = None
    if variant != "bare":
        limelight_process.instrument()
    if variant == "on":
        telemetry = start_limelight(limelight_process.plugin, "bench-process")
    for _ in range(spawns):
        subprocess.run(["true"], check=True)
    if telemetry is not None:
        telemetry.stop()


def instructions(spawns: int, jobs: int) -> int:
    """The parent's instructions per spawn for each variant, under callgrind."""
    children = [("--spawn-child", variant) for variant in INSTRUCTION_VARIANTS]
    counted = instructions_per_unit(__file__, children, "--spawns", spawns, jobs)
    if counted is None:
        return 1
    per = {variant: counted[("--spawn-child", variant)] for variant in INSTRUCTION_VARIANTS}
    print(
        f'subprocess.run(["true"]), {spawns} spawns: instructions of the parent per spawn under '
        "callgrind (every thread; the children and the kernel's work not counted)"
    )
    for variant, label in (
        ("bare", "bare"),
        ("off", "instrumented, telemetry off"),
        ("on", "span + metrics"),
    ):
        extra = "" if variant == "bare" else f"{per[variant] - per['bare']:+12,.0f}"
        print(f"  {label:<28} {per[variant]:12,.0f} {extra:>12}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "11")))
    parser.add_argument("--spawns", type=int, default=int(os.environ.get("BENCH_SPAWNS", "300")))
    parser.add_argument("--tasks", type=int, default=int(os.environ.get("BENCH_TASKS", "2000")))
    parser.add_argument("--calls", type=int, default=int(os.environ.get("BENCH_CALLS", "20000")))
    add_instruction_options(parser)
    parser.add_argument("--spawn-child", choices=INSTRUCTION_VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spawn_child:
        spawn_child(args.spawn_child, args.spawns)
        return 0
    if args.instructions:
        return instructions(args.spawns, args.jobs)
    # the global propagator a started service has (limelight.start installs it)
    propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))

    spawn: dict[str, list[tuple[float, float, float]]] = {"bare": [], "off": [], "on": []}
    tasks: dict[str, list[float]] = {"bare": [], "on": []}
    alone: dict[str, list[float]] = {"no-op": [], "off": [], "on": []}

    def measured(variant: str, work: Callable[[], Any]) -> Any:
        limelight_process.uninstrument()
        if variant == "bare":
            return work()
        limelight_process.instrument()
        if variant == "off":
            return work()
        telemetry = start_limelight(limelight_process.plugin, "bench-process")
        try:
            return work()
        finally:
            telemetry.stop()
            limelight_process.uninstrument()

    for variant in spawn:  # warm up every path once
        measured(variant, lambda: _spawns(20))
    for _ in range(args.rounds):
        for variant, spawn_rounds in spawn.items():
            spawn_rounds.append(measured(variant, lambda: _spawns(args.spawns)))
        for variant, task_rounds in tasks.items():
            task_rounds.append(measured(variant, lambda: _pool_tasks(args.tasks)))
        real_init = subprocess.Popen.__init__
        subprocess.Popen.__init__ = _noop_init  # type: ignore[method-assign]
        try:
            for variant, alone_rounds in alone.items():
                name = "bare" if variant == "no-op" else variant
                alone_rounds.append(measured(name, lambda: _wrapper_alone(args.calls)))
        finally:
            limelight_process.uninstrument()
            subprocess.Popen.__init__ = real_init  # type: ignore[method-assign]

    def parent(variant: str) -> list[float]:
        return [p for p, _, _ in spawn[variant]]

    bare_parent = statistics.median(parent("bare"))
    bare_child = statistics.median(c for _, c, _ in spawn["bare"])
    bare_wall = statistics.median(w for _, _, w in spawn["bare"])
    wall_added = statistics.median(
        on[2] - bare[2] for on, bare in zip(spawn["on"], spawn["bare"], strict=True)
    )
    bare_total = bare_parent + bare_child
    print(
        f"subprocess.run(['true']): {args.rounds} rounds x {args.spawns} spawns, "
        "CPU µs per spawn (median of rounds; spread = fastest to slowest round)"
    )
    print(f"  {'variant':<28} {'parent':>8} {'added':>8} {'% of bare':>10} {'spread of added':>18}")
    for variant, label in (
        ("bare", "bare"),
        ("off", "instrumented, telemetry off"),
        ("on", "span + metrics"),
    ):
        added = [p - b for p, b in zip(parent(variant), parent("bare"), strict=True)]
        cost = statistics.median(parent(variant))
        extra = "" if variant == "bare" else f"{statistics.median(added):+8.1f}"
        percent = (
            "" if variant == "bare" else f"{statistics.median(added) / bare_total * 100:+9.1f}%"
        )
        spread = "" if variant == "bare" else _spread(added)
        print(f"  {label:<28} {cost:8.1f} {extra:>8} {percent:>10} {spread:>18}")
    print(
        f"  the child's own CPU (fork/exec of 'true'): {bare_child:.1f} µs; bare spawn in "
        f"total {bare_total:.1f} µs; target: span + metrics within "
        f"+{SPAWN_TARGET_PERCENT:g}% of it"
    )
    print(
        f"  wall time per spawn: bare {bare_wall:.0f} µs, span + metrics {wall_added:+.1f} µs "
        f"({wall_added / bare_wall * 100:+.1f}%)"
    )
    print()
    noop = statistics.median(alone["no-op"])
    print(
        f"Popen.__init__ around a no-op, {args.calls} calls x {args.rounds} rounds, CPU µs per call"
    )
    for variant in ("off", "on"):
        added = [v - b for v, b in zip(alone[variant], alone["no-op"], strict=True)]
        target = f" (target +{OFF_TARGET_US:g} µs)" if variant == "off" else ""
        print(
            f"  {variant:<4} +{statistics.median(added):.2f} µs{target}, "
            f"spread {_spread(added)}; no-op itself {noop:.2f} µs"
        )
    print()
    bare_task = statistics.median(tasks["bare"])
    added_task = [v - b for v, b in zip(tasks["on"], tasks["bare"], strict=True)]
    print(
        f"ProcessPoolExecutor (fork, 2 workers): {args.rounds} rounds x {args.tasks} tasks, "
        "CPU µs per task, submitter + workers"
    )
    print(
        f"  bare {bare_task:.1f} µs; span + metrics {statistics.median(added_task):+.1f} µs "
        f"({statistics.median(added_task) / bare_task * 100:+.1f}%), spread {_spread(added_task)}"
    )
    print()
    print("No OpenTelemetry instrumentation of process spawning exists to compare with.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
