"""Added CPU per httpx request: limelight-httpclient next to opentelemetry-instrumentation-httpx.

Both sides record a CLIENT span (sampled, sent to a batch processor whose
exporter discards) and a duration metric, and inject ``traceparent``. Two
targets:

- ``mock``: ``httpx.MockTransport`` (no network: the instrumentation cost stands out);
- ``server``: a keep-alive HTTP/1.1 server on a free local port, in another
  process, so only the client's CPU is measured.

A ``MockTransport`` response is read before it is returned, so the body
tracking (the span ends with the last byte) only runs against the server.
Three references help read the figures: ``span-only`` (one span with the same
attributes through limelight's tracer), ``header-only`` (what one more header
costs httpx, and on the wire h11) and ``fixed-work`` (a tight loop whose cost
hardly changes between the targets, unlike the instrumentation's).

Each variant runs in a fresh process (no global state shared between them),
rounds interleave the variants so machine noise hits all of them alike, and
CPU time (``time.process_time``: user + system, every thread of the process)
per request is compared with bare httpx from the same round. The figures are
ratios from one run, not assertions.

    nox -s "bench(httpclient)"
    python bench/bench_httpclient.py --rounds 3 --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

VARIANTS = ("bare", "limelight", "limelight-off", "span-only", "header-only", "fixed-work", "otel")
DESCRIPTIONS = {
    "bare": "httpx, no instrumentation",
    "limelight": "limelight InstrumentedTransport, telemetry started (span + metrics)",
    "limelight-off": "limelight InstrumentedTransport, telemetry not started",
    "span-only": "reference: one client span per request through limelight's tracer "
    "(same attributes), nothing else",
    "header-only": "reference: bare httpx sending a fixed traceparent header (what carrying "
    "one more header costs httpx itself)",
    "fixed-work": "reference: bare httpx plus a fixed tight loop of pure-Python work per "
    "request (shown as 'alone -> between requests')",
    "otel": "opentelemetry-instrumentation-httpx instrument_client (span + metrics)",
}
_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _fixed_work() -> int:
    """A fixed tight loop (about 20 µs on its own): small dicts and strings built and
    dropped, nothing that outlives the call."""
    total = 0
    for i in range(150):
        item = {"index": i, "text": str(i)}
        total += len(item["text"])
    return total


# -- the local server (its own process) ----------------------------------------------------


async def _serve(port: int) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"bench server did not start on port {port}")


# -- one measurement (its own process) -----------------------------------------------------


def _discarding_exporter() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    return Discard()


def _measure(variant: str, target: str, requests: int, port: int) -> tuple[float, float]:
    """CPU µs per request, and for fixed-work the work's own µs measured alone."""
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"ok")

    def transport() -> httpx.BaseTransport:
        return httpx.MockTransport(handler) if target == "mock" else httpx.HTTPTransport()

    url = "http://bench.example/items" if target == "mock" else f"http://127.0.0.1:{port}/items"
    telemetry: Any = None
    if variant in ("bare", "fixed-work"):
        client = httpx.Client(transport=transport())
    elif variant == "header-only":
        client = httpx.Client(transport=transport(), headers={"traceparent": _TRACEPARENT})
    elif variant.startswith("limelight") or variant == "span-only":
        import limelight_httpclient

        import limelight
        from limelight_hookspecs import hookimpl

        class DiscardPlugin:
            limelight_name = "bench-discard"
            limelight_priority = 150

            @hookimpl
            def limelight_spans_provide_exporters(self, telemetry: Any) -> Any:
                return (_discarding_exporter(),)

        if variant == "span-only":
            client = httpx.Client(transport=transport())
        else:
            client = httpx.Client(transport=limelight_httpclient.InstrumentedTransport(transport()))
        if variant != "limelight-off":
            telemetry = limelight.Telemetry(
                plugins=[limelight_httpclient.plugin, DiscardPlugin()],
                entry_points=False,
                handle_signals=False,
                environ={"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "none"},
                traces_sampler="always_on",
                service_name="bench",
            ).start()
    else:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        tracer_provider = TracerProvider(sampler=ALWAYS_ON)
        tracer_provider.add_span_processor(BatchSpanProcessor(_discarding_exporter()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        client = httpx.Client(transport=transport())
        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=tracer_provider, meter_provider=meter_provider
        )

    get: Callable[[str], Any] = client.get
    if variant == "span-only":
        from opentelemetry.trace import SpanKind

        tracer = telemetry.tracer("bench")
        plain_get = client.get

        def span_get(url: str) -> Any:
            span = tracer.start_span(
                "GET",
                None,
                SpanKind.CLIENT,
                {"http.request.method": "GET", "url.full": url, "server.address": "h"},
            )
            response = plain_get(url)
            span.set_attribute("http.response.status_code", response.status_code)
            span.end()
            return response

        get = span_get

    alone = 0.0
    if variant == "fixed-work":
        plain_get = client.get

        def work_get(url: str) -> Any:
            response = plain_get(url)
            _fixed_work()
            return response

        get = work_get

        for _ in range(min(500, requests)):
            _fixed_work()
        start = time.process_time()
        for _ in range(requests):
            _fixed_work()
        alone = (time.process_time() - start) / requests * 1e6

    for _ in range(min(500, requests)):
        get(url)
    start = time.process_time()
    for _ in range(requests):
        get(url)
    elapsed = time.process_time() - start
    client.close()
    if telemetry is not None:
        telemetry.stop()
    return elapsed / requests * 1e6, alone


# -- the run --------------------------------------------------------------------------------


def _run_one(variant: str, target: str, requests: int, port: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", variant, target, str(requests), str(port)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OTEL_SDK_DISABLED": "false"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["us"]), float(result["alone"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--worker", nargs=4, metavar=("VARIANT", "TARGET", "N", "PORT"))
    parser.add_argument("--serve", type=int, metavar="PORT")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    if args.worker:
        variant, target, n, port = args.worker
        us, alone = _measure(variant, target, int(n), int(port))
        print(json.dumps({"us": us, "alone": alone}))
        return

    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        _wait_for(port)
        results: dict[str, dict[str, list[float]]] = {}
        work_alone: dict[str, list[float]] = {}
        for target in ("mock", "server"):
            per: dict[str, list[float]] = {v: [] for v in VARIANTS}
            work_alone[target] = []
            for _ in range(args.rounds):
                order = list(VARIANTS)
                random.shuffle(order)
                for variant in order:
                    us, alone = _run_one(variant, target, args.requests, port)
                    per[variant].append(us)
                    if variant == "fixed-work":
                        work_alone[target].append(alone)
            results[target] = per
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(f"httpx request CPU, {args.rounds} rounds x {args.requests} requests, median per round")
    for variant in VARIANTS:
        print(f"  {variant:<14} {DESCRIPTIONS[variant]}")
    print()
    print(
        f"{'target':<8} {'bare µs':>8} {'limelight +µs':>14} {'off +µs':>8} "
        f"{'span-only +µs':>14} {'header +µs':>11} {'fixed work µs':>16} {'otel +µs':>9} "
        f"{'otel / limelight':>17}"
    )
    for target, per in results.items():
        bare = per["bare"]

        def added(
            variant: str, per: dict[str, list[float]] = per, bare: list[float] = bare
        ) -> float:
            return statistics.median(v - b for v, b in zip(per[variant], bare, strict=True))

        lime, off, otel = added("limelight"), added("limelight-off"), added("otel")
        span, header, work = added("span-only"), added("header-only"), added("fixed-work")
        alone = statistics.median(work_alone[target])
        ratio = f"{otel / lime:.1f}x" if lime > 0 else "n/a"
        print(
            f"{target:<8} {statistics.median(bare):>8.1f} {lime:>14.1f} {off:>8.1f} "
            f"{span:>14.1f} {header:>11.1f} {f'{alone:.1f} -> {work:.1f}':>16} {otel:>9.1f} "
            f"{ratio:>17}"
        )
    print()
    # the machine's noise, read from the rounds themselves
    for target, per in results.items():
        rounds = sorted(v - b for v, b in zip(per["limelight"], per["bare"], strict=True))
        idle = sorted(v - b for v, b in zip(per["limelight-off"], per["bare"], strict=True))
        print(
            f"{target}: limelight +µs per round {rounds[0]:.1f} to {rounds[-1]:.1f}; "
            f"'off' (no work at all) {idle[0]:+.1f} to {idle[-1]:+.1f}"
        )
    print()
    print(
        "'fixed work' is a tight loop measured alone and between requests. Compare its growth\n"
        "from mock to server with span-only's: a loop warms the caches up within itself, while\n"
        "the instrumentation runs hundreds of distinct functions once per request, after a\n"
        "socket wait that let the kernel and the server process have the CPU."
    )


if __name__ == "__main__":
    main()
