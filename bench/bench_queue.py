"""Added CPU per message: limelight-queue next to opentelemetry-instrumentation-aio-pika and -pika.

Each message is published to the local RabbitMQ (127.0.0.1:5672 unless
``BENCH_AMQP_URL`` says otherwise) and consumed back by a callback that
acknowledges it, in the same process. The figure is that process's CPU time
(``time.process_time``: every thread, the broker's work not included) per
message, publish and consume together, minus the bare library's.

Variants, each in a fresh process (the instrumentations patch the libraries
globally, so none may share a process), rounds interleaved so machine noise
hits all of them alike:

- ``bare``: the library as installed;
- ``header-only``: the bare library sending a fixed ``traceparent`` header with
  every message (what carrying a context costs the client itself: aio-pika
  encodes and decodes header tables in pure Python);
- ``limelight``: limelight-queue with telemetry running (PRODUCER and CONSUMER
  span per message, sampled, sent to a batch processor whose exporter drops
  them; the four queue metrics), the global propagator a started service has;
- ``limelight-off``: limelight-queue instrumented, no telemetry running (the
  ``+2 µs when telemetry is off`` target);
- ``opentelemetry``: the contrib instrumentation with an SDK tracer provider
  whose batch processor drops the spans alike (spans only: it records no metric).

The figures are ratios from one run, with the spread over rounds; a timing is
never a test assertion.

``--breakdown`` answers where limelight's added CPU goes: in the ``limelight``
variant of each library, the thread CPU time spent inside limelight's own code
(the library wrappers' work before and after the call they wrap: starting the
publish and the delivery, ending them, finding a settlement's delivery, making
the context current) is summed over the real run against the broker and given
per message, next to the process CPU per message of the same run. The rest of
the added CPU is spent outside that code (the client library and the
interpreter running slower for it, the collector). Timing each call costs two
clock reads, so that run's total is a little above the plain one.

``--in-process N`` runs limelight-queue's pika wrappers (publish, callback,
acknowledgement) over a channel that sends nothing, N messages with the
garbage collector off, and prints the CPU per message: limelight's own code
without the broker and the client, for instruction counts that repeat on a
loaded machine (the main thread's total under callgrind, minus a run with
``--in-process 0``, divided by N; ``--bare`` gives the harness alone)::

    valgrind --tool=callgrind --separate-threads=yes python bench/bench_queue.py --in-process 2000

``--instructions`` gives the same comparison in CPU instructions, which do
not move with the machine's load: each variant's child runs the real
publish-consume-ack loop against the broker under ``valgrind --tool=callgrind``
(every thread counted, the exporter's included), once with one message and
once with one plus ``--messages``; the difference divided by ``--messages`` is
its instructions per message. What the kernel and the broker do is not
counted, and neither is the pause callgrind puts on every thread, so these
figures are the user-space half of the timed ones. ``--jobs`` children run at
once (the number of CPUs by default)::

    nox -s "bench(queue)"
    python bench/bench_queue.py --rounds 3 --messages 2000
    nox -s "bench(queue)" -- --breakdown
    nox -s "bench(queue)" -- --instructions --messages 1000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlparse

URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
LIBRARIES = ("aio_pika", "pika")
VARIANTS = ("bare", "header-only", "limelight", "limelight-off", "opentelemetry")
TRACEPARENT = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
PEERS = {
    "aio_pika": "opentelemetry-instrumentation-aio-pika",
    "pika": "opentelemetry-instrumentation-pika",
}
BODY = b"x" * 256
WARMUP = 300


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), 1):
            return True
    except OSError:
        return False


# -- one variant, in its own process ------------------------------------------------------


def _setup(library: str, variant: str) -> Any:
    """Instrument *library* as *variant* says; returns what to stop afterwards."""
    if variant == "limelight":
        from _common import start_limelight
        from limelight_queue import plugin
        from opentelemetry import propagate

        from limelight.propagation import build_propagator

        telemetry = start_limelight(plugin, "bench-queue")
        # the global propagator a started service has (limelight.start installs it)
        propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))
        import limelight_queue

        limelight_queue.instrument(library)
        return telemetry
    if variant == "limelight-off":
        import limelight_queue

        limelight_queue.instrument(library)
        return None
    if variant == "opentelemetry":
        from _common import otel_provider

        provider = otel_provider()
        if library == "aio_pika":
            from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor

            AioPikaInstrumentor().instrument(tracer_provider=provider)
        else:
            from opentelemetry.instrumentation.pika import PikaInstrumentor

            PikaInstrumentor().instrument(tracer_provider=provider)
        return provider
    return None


def _run_aio_pika(messages: int, headers: dict[str, str] | None) -> float:
    import asyncio

    import aio_pika

    async def main() -> float:
        connection = await aio_pika.connect(URL)
        async with connection:
            channel = await connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=256)
            queue = await channel.declare_queue(f"bench-queue.{uuid.uuid4().hex}", exclusive=True)
            received = 0
            target = 0
            done = asyncio.Event()

            async def handler(message: Any) -> None:
                nonlocal received
                await message.ack()
                received += 1
                if received >= target:
                    done.set()

            await queue.consume(handler)
            exchange = channel.default_exchange

            async def burst(count: int) -> None:
                nonlocal target
                target = received + count
                done.clear()
                for _ in range(count):
                    await exchange.publish(
                        aio_pika.Message(BODY, headers=dict(headers) if headers else None),
                        queue.name,
                    )
                await done.wait()

            await burst(WARMUP)
            start = time.process_time()
            await burst(messages)
            return (time.process_time() - start) / messages * 1e6

    return asyncio.run(main())


def _run_pika(messages: int, headers: dict[str, str] | None) -> float:
    import pika

    parameters = pika.URLParameters(URL)
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=256)
        name = f"bench-queue.{uuid.uuid4().hex}"
        channel.queue_declare(name, exclusive=True)
        state = {"received": 0, "target": 0}

        def handler(ch: Any, method: Any, properties: Any, body: bytes) -> None:
            ch.basic_ack(method.delivery_tag)
            state["received"] += 1

        tag = channel.basic_consume(name, handler)

        def burst(count: int) -> None:
            state["target"] = state["received"] + count
            for _ in range(count):
                channel.basic_publish(
                    "", name, BODY, pika.BasicProperties(headers=dict(headers) if headers else None)
                )
            while state["received"] < state["target"]:
                connection.process_data_events(time_limit=1)

        burst(WARMUP)
        start = time.process_time()
        burst(messages)
        cost = (time.process_time() - start) / messages * 1e6
        channel.basic_cancel(tag)
        return cost
    finally:
        connection.close()


def _time_own_code(library: str) -> dict[str, int]:
    """Wrap limelight's per-message functions for *library* so that the thread CPU
    time spent in them (outermost calls only) is summed, in ns, by function."""
    import functools

    from limelight_queue import _core

    if library == "aio_pika":
        from limelight_queue import _aio_pika as module

        names = ("_begin_publish", "_deliver", "_settled")
    else:
        from limelight_queue import _pika as module

        names = ("_begin_publish", "_deliver", "settle", "settle_multiple", "_attach", "_detach")
    clock = time.thread_time_ns
    spent: dict[str, int] = {}
    depth = [0]

    def timed(name: str, function: Any) -> Any:
        spent[name] = 0

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if depth[0]:
                return function(*args, **kwargs)
            depth[0] = 1
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += clock() - start
                depth[0] = 0

        return wrapper

    for name in names:
        setattr(module, name, timed(name, getattr(module, name)))
    for cls in (_core.Publication, _core.Delivery):
        cls.finish = timed(f"{cls.__name__}.finish", cls.finish)  # type: ignore[method-assign]
    return spent


def in_process(messages: int, bare: bool) -> None:
    """Publish, deliver and acknowledge *messages* through the pika wrappers over a
    channel that sends nothing (see the module documentation)."""
    import gc

    import pika
    import pika.spec
    from _common import start_limelight
    from limelight_queue import _pika, plugin
    from opentelemetry import propagate

    from limelight.propagation import build_propagator

    telemetry = start_limelight(plugin, "bench-queue")
    propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))

    class Parameters:
        host, port = "127.0.0.1", 5672

    class Connection:
        class _impl:  # noqa: N801 - pika's name
            params = Parameters()

    class Channel:
        connection = Connection()
        is_closed = False

    channel = Channel()
    publish = _pika._wrap_blocking_publish(lambda self, *args, **kwargs: None)
    ack = _pika._wrap_settle(lambda self, tag, *args, **kwargs: None, "ack")
    _pika._installed[0] = True

    def handler(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        ack(ch, method.delivery_tag)

    callback = _pika._traced_callback("bench", handler, False)

    def one(i: int) -> None:
        sent = pika.BasicProperties(headers=None)
        if bare:
            sent.headers = dict(TRACEPARENT)
        else:
            publish(channel, "", "bench", BODY, sent)
        received = pika.BasicProperties(headers=dict(sent.headers))  # as the broker decodes it
        method = pika.spec.Basic.Deliver("ctag", i + 1, False, "", "bench")
        (handler if bare else callback)(channel, method, received, BODY)

    for i in range(WARMUP):
        one(i)
    gc.collect()
    gc.disable()  # a collection's cost depends on where it falls: counted apart
    start = time.process_time()
    for i in range(messages):
        one(i)
    cost = (time.process_time() - start) / max(messages, 1) * 1e6
    gc.enable()
    telemetry.stop()
    print(json.dumps({"cpu_us": cost, "messages": messages, "bare": bare}))


def child(library: str, variant: str, messages: int, breakdown: bool = False) -> None:
    stop = _setup(library, variant)
    spent = _time_own_code(library) if breakdown else None
    try:
        headers = TRACEPARENT if variant == "header-only" else None
        run = _run_aio_pika if library == "aio_pika" else _run_pika
        if spent is not None:
            run(WARMUP, headers)  # the first connection's setup is not the messages' cost
            for name in spent:
                spent[name] = 0
        cost = run(messages, headers)
    finally:
        if stop is not None:
            if hasattr(stop, "stop"):
                stop.stop()
            else:
                stop.shutdown()
    result: dict[str, Any] = {"cpu_us": cost}
    if spent is not None:
        # burst() sends WARMUP messages before the measured ones, on the same counters
        result["own_us"] = {k: v / (messages + WARMUP) / 1e3 for k, v in spent.items()}
    print(json.dumps(result))


# -- the comparison ----------------------------------------------------------------------


def _run_child(library: str, variant: str, messages: int, *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            library,
            variant,
            "--messages",
            str(messages),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=os.path.dirname(os.path.abspath(__file__)),
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{library} {variant} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _measure(library: str, variant: str, messages: int) -> float:
    return float(_run_child(library, variant, messages)["cpu_us"])


def breakdown(rounds: int, messages: int) -> None:
    """Per library: limelight's own code per message in the real run, next to the
    added CPU of the same rounds (bare measured alike, interleaved)."""
    print(
        f"{messages} messages x {rounds} rounds: thread CPU µs per message inside "
        "limelight's own code during the real run (median), and the process CPU added "
        "over bare in the same rounds"
    )
    for library in LIBRARIES:
        bare: list[float] = []
        total: list[float] = []
        own: list[dict[str, float]] = []
        for _ in range(rounds):
            bare.append(_measure(library, "bare", messages))
            result = _run_child(library, "limelight", messages, "--breakdown")
            total.append(float(result["cpu_us"]))
            own.append(result["own_us"])
        added = statistics.median(t - b for t, b in zip(total, bare, strict=True))
        sums = [sum(o.values()) for o in own]
        parts = {
            name: statistics.median(o[name] for o in own) for name in own[0] if own[0][name] > 0
        }
        print(
            f"{library:9} added {added:6.1f} µs, of which limelight's own code "
            f"{statistics.median(sums):5.1f} µs ("
            + ", ".join(f"{name} {value:.1f}" for name, value in parts.items())
            + ")"
        )


def instructions(messages: int, jobs: int) -> int:
    """Instructions per message of every variant, and limelight's share of the peer's."""
    from _common import instructions_per_unit

    children = [("--child", library, variant) for library in LIBRARIES for variant in VARIANTS]
    counted = instructions_per_unit(__file__, children, "--messages", messages, jobs)
    if counted is None:
        return 1
    print(
        f"RabbitMQ {urlparse(URL).hostname}:{urlparse(URL).port or 5672}, {messages} messages, "
        "publish + consume + ack: instructions per message under callgrind (every thread "
        "of the process; the kernel's and the broker's work not counted)"
    )
    print(f"{'library':9} {'variant':38} {'per message':>12} {'added':>10}")
    for library in LIBRARIES:
        per = {variant: counted[("--child", library, variant)] for variant in VARIANTS}
        added = {variant: per[variant] - per["bare"] for variant in VARIANTS}
        for variant in VARIANTS:
            name = PEERS[library] if variant == "opentelemetry" else variant
            extra = "" if variant == "bare" else f"{added[variant]:+10,.0f}"
            print(f"{library:9} {name:38} {per[variant]:12,.0f} {extra:>10}")
        ours, theirs = added["limelight"], added["opentelemetry"]
        share = ours / theirs if theirs > 0 else float("inf")
        print(
            f"{'':9} limelight adds {ours:,.0f} instructions, {share:.0%} of OpenTelemetry's "
            f"{theirs:,.0f} ({'within' if share <= 0.25 else 'over'} the 25% target); "
            f"telemetry off adds {added['limelight-off']:+,.0f}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")))
    parser.add_argument(
        "--messages", type=int, default=int(os.environ.get("BENCH_MESSAGES", "3000"))
    )
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "VARIANT"))
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="where limelight's added CPU goes: its own code's share of it",
    )
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="N",
        help="N messages through the pika wrappers, no broker (for instruction counts)",
    )
    parser.add_argument(
        "--bare", action="store_true", help="with --in-process: the harness, no limelight"
    )
    from _common import add_instruction_options

    add_instruction_options(parser)
    args = parser.parse_args()
    if args.in_process is not None:
        in_process(args.in_process, args.bare)
        return 0
    if args.child:
        child(args.child[0], args.child[1], args.messages, args.breakdown)
        return 0
    if not _reachable(URL):
        print(f"RabbitMQ is not reachable at {URL}; nothing measured", file=sys.stderr)
        return 1
    if args.breakdown:
        breakdown(args.rounds, args.messages)
        return 0
    if args.instructions:
        return instructions(args.messages, args.jobs)
    results: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for library in LIBRARIES:
            for variant in VARIANTS:
                cost = _measure(library, variant, args.messages)
                results.setdefault((library, variant), []).append(cost)
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

    print(
        f"RabbitMQ {urlparse(URL).hostname}:{urlparse(URL).port or 5672}, {args.messages} "
        f"messages x {args.rounds} rounds, publish + consume + ack, CPU µs per message "
        "(median; added over bare, with the range of the per-round differences)"
    )
    print(f"{'library':9} {'variant':38} {'CPU µs':>8} {'added µs':>9} {'range':>17}")
    for library in LIBRARIES:
        bare = results[(library, "bare")]
        added: dict[str, float] = {}
        for variant in VARIANTS:
            costs = results[(library, variant)]
            name = PEERS[library] if variant == "opentelemetry" else variant
            if variant == "bare":
                print(f"{library:9} {'bare ' + library:38} {statistics.median(costs):8.1f}")
                continue
            diffs = [c - b for c, b in zip(costs, bare, strict=True)]
            added[variant] = statistics.median(diffs)
            print(
                f"{library:9} {name:38} {statistics.median(costs):8.1f} "
                f"{added[variant]:+9.1f} {min(diffs):+8.1f}..{max(diffs):+.1f}"
            )
        ours, theirs, off = added["limelight"], added["opentelemetry"], added["limelight-off"]
        share = ours / theirs if theirs > 0 else float("inf")
        print(
            f"{'':9} limelight adds {ours:.1f} µs, {share:.0%} of OpenTelemetry's {theirs:.1f} µs "
            f"({'within' if share <= 0.25 else 'over'} the 25% target); telemetry off adds "
            f"{off:+.1f} µs ({'within' if off <= 2.0 else 'over'} the 2 µs target)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
