"""Added CPU per dispatch: limelight-eventbus on blinker and pyee, against the bare libraries.

The OpenTelemetry contrib has no instrumentation of blinker or pyee (nor of any
in-process event bus), so each figure is limelight against the bare library,
measured in the same process with rounds interleaved:

- bare: the library uninstrumented;
- off: instrumented, no telemetry running (what a service pays with
  ``OTEL_SDK_DISABLED=true`` or before ``limelight.start()``);
- metrics: instrumented, telemetry running, spans off (the default);
- span: with ``LIMELIGHT_EVENTBUS_SPANS=true`` (spans exported in batches to an
  exporter that drops them, as in the other benchmarks).

Operations: a blinker ``send`` to one receiver and to none (counted as a
rejection), a pyee ``EventEmitter.emit`` to one listener, an
``AsyncIOEventEmitter.emit`` to one plain listener (the path that wraps each
listener), and a blinker ``connect`` + ``disconnect`` pair (the subscriber
gauge counted twice). The figure is process CPU time per operation
(``time.process_time``), as the median of the rounds.

    nox -s "bench(eventbus)"
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from typing import Any

import blinker
import limelight_eventbus
import pyee
from _common import BSP_DELAY_MS, BSP_QUEUE, NullExporterPlugin, cpu_per_op
from limelight_eventbus import plugin
from pyee.asyncio import AsyncIOEventEmitter

import limelight

OPS = int(os.environ.get("BENCH_OPS", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
VARIANTS = ("bare", "off", "metrics", "span")


def _start(spans: bool) -> limelight.Telemetry:
    return limelight.Telemetry(
        plugins=[plugin, NullExporterPlugin()],
        entry_points=False,
        install_globals=False,
        handle_signals=False,
        environ={
            "OTEL_BSP_MAX_QUEUE_SIZE": str(BSP_QUEUE),
            "OTEL_BSP_SCHEDULE_DELAY": str(BSP_DELAY_MS),
            "LIMELIGHT_EVENTBUS_SPANS": "true" if spans else "false",
        },
        service_name="bench-eventbus",
        traces_sampler="always_on",
    ).start()


def _receiver(sender: object, **kwargs: Any) -> None:
    pass


def _listener(*args: Any) -> None:
    pass


def _operations() -> dict[str, Callable[[int], Any]]:
    heard = blinker.NamedSignal("bench-heard")
    heard.connect(_receiver)
    unheard = blinker.NamedSignal("bench-unheard")
    churn = blinker.NamedSignal("bench-churn")
    emitter = pyee.EventEmitter()
    emitter.on("bench", _listener)
    asyncio_emitter = AsyncIOEventEmitter()
    asyncio_emitter.on("bench", _listener)

    def connect_disconnect(i: int) -> None:
        churn.connect(_receiver)
        churn.disconnect(_receiver)

    return {
        "blinker send, 1 receiver": lambda i: heard.send("s", n=i),
        "blinker send, no receiver": lambda i: unheard.send("s", n=i),
        "pyee EventEmitter.emit": lambda i: emitter.emit("bench", i),
        "pyee AsyncIOEventEmitter.emit": lambda i: asyncio_emitter.emit("bench", i),
        "blinker connect + disconnect": connect_disconnect,
    }


def _measure(variant: str, ops: dict[str, Callable[[int], Any]], n: int) -> dict[str, float]:
    telemetry = None
    if variant == "bare":
        limelight_eventbus.uninstrument()
    else:
        limelight_eventbus.instrument()
        if variant != "off":
            telemetry = _start(spans=variant == "span")
    try:
        for op in ops.values():  # warm up: the buses counted, the caches filled
            for i in range(200):
                op(i)
        return {name: cpu_per_op(op, n) for name, op in ops.items()}
    finally:
        if telemetry is not None:
            telemetry.stop()


def main() -> int:
    ops = _operations()
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for variant in VARIANTS:
            for name, cost in _measure(variant, ops, OPS).items():
                results.setdefault((name, variant), []).append(cost)
    limelight_eventbus.uninstrument()

    print(
        f"{OPS} operations x {ROUNDS} rounds, CPU µs per operation (median); "
        "no OpenTelemetry instrumentation of blinker or pyee exists: against the bare library"
    )
    print(f"{'operation':32} {'variant':8} {'CPU µs/op':>10} {'added µs':>9}")
    for name in ops:
        base = statistics.median(results[(name, "bare")])
        for variant in VARIANTS:
            cost = statistics.median(results[(name, variant)])
            added = "" if variant == "bare" else f"{cost - base:+9.2f}"
            print(f"{name:32} {variant:8} {cost:10.2f} {added:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
