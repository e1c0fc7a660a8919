"""Added CPU per httpx request: limelight-httpclient next to opentelemetry-instrumentation-httpx.

Both sides record a CLIENT span (sampled, sent to a batch processor whose
exporter discards) and a duration metric, and inject ``traceparent``. Two
targets:

- ``mock``: ``httpx.MockTransport`` (no network: the instrumentation cost stands out);
- ``server``: a keep-alive HTTP/1.1 server on a free local port, in another
  process, so only the client's CPU is measured.

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
from typing import Any

VARIANTS = ("bare", "limelight", "limelight-off", "span-only", "otel")
DESCRIPTIONS = {
    "bare": "httpx, no instrumentation",
    "limelight": "limelight InstrumentedTransport, telemetry started (span + metrics)",
    "limelight-off": "limelight InstrumentedTransport, telemetry not started",
    "span-only": "reference: one client span per request through limelight's tracer "
    "(same attributes), nothing else",
    "otel": "opentelemetry-instrumentation-httpx instrument_client (span + metrics)",
}


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


def _measure(variant: str, target: str, requests: int, port: int) -> float:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"ok")

    def transport() -> httpx.BaseTransport:
        return httpx.MockTransport(handler) if target == "mock" else httpx.HTTPTransport()

    url = "http://bench.example/items" if target == "mock" else f"http://127.0.0.1:{port}/items"
    telemetry: Any = None
    if variant == "bare":
        client = httpx.Client(transport=transport())
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

    get = client.get
    if variant == "span-only":
        from opentelemetry.trace import SpanKind

        tracer = telemetry.tracer("bench")
        plain_get = client.get

        def get(url: str) -> Any:
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

    for _ in range(min(500, requests)):
        get(url)
    start = time.process_time()
    for _ in range(requests):
        get(url)
    elapsed = time.process_time() - start
    client.close()
    if telemetry is not None:
        telemetry.stop()
    return elapsed / requests * 1e6


# -- the run --------------------------------------------------------------------------------


def _run_one(variant: str, target: str, requests: int, port: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", variant, target, str(requests), str(port)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OTEL_SDK_DISABLED": "false"},
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["us"])


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
        print(json.dumps({"us": _measure(variant, target, int(n), int(port))}))
        return

    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        _wait_for(port)
        results: dict[str, dict[str, list[float]]] = {}
        for target in ("mock", "server"):
            per: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for _ in range(args.rounds):
                order = list(VARIANTS)
                random.shuffle(order)
                for variant in order:
                    per[variant].append(_run_one(variant, target, args.requests, port))
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
        f"{'span-only +µs':>14} {'otel +µs':>9} {'otel / limelight':>17}"
    )
    for target, per in results.items():
        bare = per["bare"]

        def added(
            variant: str, per: dict[str, list[float]] = per, bare: list[float] = bare
        ) -> float:
            return statistics.median(v - b for v, b in zip(per[variant], bare, strict=True))

        lime, off, otel = added("limelight"), added("limelight-off"), added("otel")
        span = added("span-only")
        ratio = f"{otel / lime:.1f}x" if lime > 0 else "n/a"
        print(
            f"{target:<8} {statistics.median(bare):>8.1f} {lime:>14.1f} {off:>8.1f} "
            f"{span:>14.1f} {otel:>9.1f} {ratio:>17}"
        )


if __name__ == "__main__":
    main()
