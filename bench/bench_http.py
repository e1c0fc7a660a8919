"""Per-request cost of the HTTP server surface, side by side with the peers.

Run with ``nox -s "bench(http)"``. Two parts, every row from this
one run:

1. in-process ASGI calls: the same Starlette app called directly with a fresh
   scope per request, bare and behind each middleware; microseconds per
   request, best of several interleaved rounds, and the delta over bare;
2. under uvicorn on loopback, loaded by ``wrk`` (Debian package ``wrk``,
   installed when missing): requests per second of a single-process server;
   the delta is the server time added per request (``1/rps - 1/rps_bare``).

Peers: ``opentelemetry-instrumentation-asgi`` (span and metrics, its own SDK
providers with a batch span processor) and ``starlette-exporter`` (Prometheus
metrics only). limelight runs with span and metrics through the core's batch
processor into a discarding exporter, and once with telemetry not started.
This is a benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import limelight_http
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import limelight
from limelight_hookspecs import TelemetryView, hookimpl

NUMBER = int(os.environ.get("BENCH_NUMBER", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "4"))
WRK_ROUNDS = int(os.environ.get("BENCH_WRK_ROUNDS", "3"))

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

VARIANTS = (
    "bare",
    "limelight-disabled",
    "limelight",
    "limelight-unsampled",
    "otel-asgi",
    "starlette-exporter",
)
DESCRIPTIONS = {
    "bare": "bare Starlette",
    "limelight-disabled": "limelight, telemetry not started",
    "limelight": "limelight, span + metrics",
    "limelight-unsampled": "limelight, metrics, span not sampled",
    "otel-asgi": "opentelemetry-instrumentation-asgi",
    "starlette-exporter": "starlette-exporter (metrics only)",
}


class _Discard(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class DiscardExporterPlugin:
    """Sends limelight's spans through the core's batch processor into nothing."""

    limelight_name = "bench.discard"
    limelight_priority = 150

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        return (_Discard(),)


def make_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("item " + request.path_params["item_id"])

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/health", health), Route("/items/{item_id}", item)])


def start_limelight(sampler: str) -> limelight.Telemetry:
    return limelight.Telemetry(
        plugins=[limelight_http.plugin, DiscardExporterPlugin()],
        entry_points=False,
        handle_signals=False,
        environ={"OTEL_TRACES_SAMPLER": sampler, "OTEL_SERVICE_NAME": "bench"},
    ).start()


def build(variant: str) -> ASGIApp:
    """The app of one variant (telemetry for limelight variants is started separately)."""
    app = make_app()
    if variant in ("bare",):
        return app  # type: ignore[no-any-return]
    if variant.startswith("limelight"):
        return limelight_http.instrument_starlette(app)  # type: ignore[no-any-return]
    if variant == "otel-asgi":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(_Discard()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        return OpenTelemetryMiddleware(
            app, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
    if variant == "starlette-exporter":
        from starlette_exporter import PrometheusMiddleware

        app.add_middleware(PrometheusMiddleware, group_paths=True, app_name="bench")
        return app  # type: ignore[no-any-return]
    raise ValueError(variant)


# -- part 1: in-process ASGI calls ----------------------------------------------------------

SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/42",
    "raw_path": b"/items/42",
    "root_path": "",
    "query_string": b"",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"keep-alive"),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "state": {},
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: MutableMapping[str, Any]) -> None:
    return None


async def _run(app: ASGIApp, number: int) -> float:
    scope = SCOPE
    start = time.perf_counter()
    for _ in range(number):
        await app(dict(scope), _receive, _send)
    return (time.perf_counter() - start) / number * 1e6


def in_process() -> dict[str, float]:
    """Best-of-ROUNDS microseconds per request for every variant, interleaved."""
    apps = {v: build(v) for v in VARIANTS}
    telemetry: dict[str, limelight.Telemetry | None] = dict.fromkeys(VARIANTS)
    best = dict.fromkeys(VARIANTS, float("inf"))
    loop = asyncio.new_event_loop()
    try:
        for _round in range(ROUNDS):
            for variant in VARIANTS:
                running = None
                if variant == "limelight":
                    running = start_limelight("parentbased_always_on")
                elif variant == "limelight-unsampled":
                    running = start_limelight("always_off")
                telemetry[variant] = running
                loop.run_until_complete(_run(apps[variant], 200))  # warm up
                value = loop.run_until_complete(_run(apps[variant], NUMBER))
                best[variant] = min(best[variant], value)
                if running is not None:
                    running.stop()
    finally:
        loop.close()
    return best


def span_floor() -> tuple[float, float, float]:
    """µs of one SERVER span alone (start with the request attributes, route and status
    set, end) through limelight's tracer and batch processor, sampled and not, and the
    same sampled span through the OpenTelemetry SDK's own tracer (same sampler, same
    batch processor): the part of the per-request cost that is the span itself."""
    import timeit

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
    from opentelemetry.trace import SpanKind

    from limelight._batch import BoundedBatchSpanProcessor
    from limelight_hookspecs import BatchSettings

    attributes = {
        "http.request.method": "GET",
        "url.path": "/items/42",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "client.address": "127.0.0.1",
        "user_agent.original": "bench/1.0",
    }

    def make(start_span: Any) -> Callable[[], None]:
        def one() -> None:
            span = start_span("GET", kind=SpanKind.SERVER, attributes=dict(attributes))
            if span.is_recording():
                span.update_name("GET /items/{item_id}")
                span.set_attributes(
                    {"http.route": "/items/{item_id}", "http.response.status_code": 200}
                )
            span.end()

        return one

    result = []
    for sampler in ("parentbased_always_on", "always_off"):
        telemetry = start_limelight(sampler)
        times = timeit.repeat(
            make(telemetry.tracer("bench").start_span), number=NUMBER, repeat=ROUNDS
        )
        result.append(min(times) / NUMBER * 1e6)
        if sampler == "parentbased_always_on":
            sdk = TracerProvider(sampler=ParentBased(ALWAYS_ON), shutdown_on_exit=False)
            processor = BoundedBatchSpanProcessor(
                _Discard(), "bench", BatchSettings(), telemetry.self_metrics
            )
            sdk.add_span_processor(processor)
            times = timeit.repeat(
                make(sdk.get_tracer("bench").start_span), number=NUMBER, repeat=ROUNDS
            )
            sdk_sampled = min(times) / NUMBER * 1e6
            processor.close(5.0)
        telemetry.stop()
    return result[0], result[1], sdk_sampled


def print_rows(title: str, values: dict[str, float], unit: str) -> None:
    base = values["bare"]
    print(f"\n{title}")
    print(f"  {'':40s} {unit:>12s} {'delta µs':>10s} {'x bare':>8s}")
    for variant in VARIANTS:
        value = values[variant]
        print(
            f"  {DESCRIPTIONS[variant]:40s} {value:12.2f} {value - base:+10.2f} {value / base:8.2f}"
        )


# -- part 2: uvicorn + wrk ---------------------------------------------------------------


def serve(variant: str, port: int) -> None:
    """Run one variant under uvicorn (the server process of part 2)."""
    import uvicorn

    if variant == "limelight":
        start_limelight("parentbased_always_on")
    elif variant == "limelight-unsampled":
        start_limelight("always_off")
    uvicorn.run(build(variant), host="127.0.0.1", port=port, log_level="error", access_log=False)


def _wrk() -> str | None:
    try:
        from limelight_testsupport import ensure_debian_package
    except ImportError:  # pragma: no cover - bench run outside the workspace
        import shutil

        return shutil.which("wrk")
    return ensure_debian_package("wrk", "wrk")


def under_uvicorn(wrk: str) -> dict[str, float]:
    """Best-of-WRK_ROUNDS requests per second for every variant."""
    from limelight_testsupport import free_port, wait_for_port

    best = dict.fromkeys(VARIANTS, 0.0)
    for _round in range(WRK_ROUNDS):
        for variant in VARIANTS:
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", variant, str(port)],
                stdout=subprocess.DEVNULL,
            )
            try:
                if not wait_for_port("127.0.0.1", port, 30):
                    raise RuntimeError(f"{variant}: uvicorn did not start")
                url = f"http://127.0.0.1:{port}/items/42"
                subprocess.run(
                    [wrk, "-t1", "-c8", "-d1s", url], capture_output=True, check=True
                )  # warm up
                out = subprocess.run(
                    [wrk, "-t1", "-c8", f"-d{WRK_SECONDS}s", url],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                found = re.search(r"Requests/sec:\s+([\d.]+)", out)
                errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                if found is None or errors is not None:
                    raise RuntimeError(f"{variant}: unexpected wrk output:\n{out}")
                best[variant] = max(best[variant], float(found.group(1)))
            finally:
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    return best


def main() -> None:
    print(
        f"limelight http bench: Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"\n1. in-process ASGI calls: best of {ROUNDS} interleaved rounds x {NUMBER} requests")
    print_rows("GET /items/{item_id}, µs per request", in_process(), "µs/request")
    sampled, unsampled, sdk_sampled = span_floor()
    print(
        f"\n  of which the server span alone (same attributes and batch processor):"
        f"\n    limelight's span: sampled {sampled:.2f} µs, not sampled {unsampled:.2f} µs"
        f"\n    the OpenTelemetry SDK's own span, sampled: {sdk_sampled:.2f} µs"
    )

    wrk = _wrk()
    if wrk is None:
        print("\n2. uvicorn + wrk: skipped, wrk is not installed and could not be installed")
        return
    print(
        f"\n2. uvicorn (one process) + wrk -t1 -c8 on loopback: best of {WRK_ROUNDS} x "
        f"{WRK_SECONDS}s"
    )
    rps = under_uvicorn(wrk)
    per_request = {v: 1e6 / r for v, r in rps.items()}
    base = per_request["bare"]
    print(f"  {'':40s} {'requests/s':>12s} {'µs/request':>11s} {'delta µs':>10s} {'x bare':>8s}")
    for variant in VARIANTS:
        value = per_request[variant]
        print(
            f"  {DESCRIPTIONS[variant]:40s} {rps[variant]:12.0f} {value:11.1f} "
            f"{value - base:+10.1f} {value / base:8.2f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
