"""Per-request cost of the HTTP server surface, side by side with the peers.

Run with ``nox -s "bench(http)"``. Two parts, every row from this
one run:

1. in-process ASGI calls: the same Starlette app called directly with a fresh
   scope per request, bare and behind each middleware; CPU microseconds per
   request (the whole process, so a span processor's thread counts too), best
   of several interleaved rounds, and the delta over bare;
2. under uvicorn on loopback, loaded by ``wrk`` (Debian package ``wrk``,
   installed when missing; server and ``wrk`` each kept on a CPU of its own
   where the machine has two): the server process's CPU time per request read
   from ``/proc`` (split between the event loop's thread and the others), and
   its requests per second. CPU time is the figure to compare: wall-clock
   throughput on a small shared machine moves with whatever else runs on it,
   the CPU a request costs the server much less.

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
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "3"))
WRK_ROUNDS = int(os.environ.get("BENCH_WRK_ROUNDS", "5"))

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

VARIANTS = (
    "bare",
    "limelight-disabled",
    "limelight",
    "limelight-no-header",
    "limelight-unsampled",
    "otel-asgi",
    "starlette-exporter",
)
DESCRIPTIONS = {
    "bare": "bare Starlette",
    "limelight-disabled": "limelight, telemetry not started",
    "limelight": "limelight, span + metrics",
    "limelight-no-header": "  the same, no response traceparent",
    "limelight-unsampled": "limelight, metrics, span not sampled",
    "otel-asgi": "opentelemetry-instrumentation-asgi",
    "starlette-exporter": "starlette-exporter (metrics only)",
}
SAMPLERS = {
    "limelight": "parentbased_always_on",
    "limelight-no-header": "parentbased_always_on",
    "limelight-unsampled": "always_off",
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
        return limelight_http.instrument_starlette(  # type: ignore[no-any-return]
            app, response_traceparent=variant != "limelight-no-header"
        )
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
    """CPU µs per request of the whole process (every thread) over *number* requests."""
    scope = SCOPE
    start = time.process_time()
    for _ in range(number):
        await app(dict(scope), _receive, _send)
    return (time.process_time() - start) / number * 1e6


def in_process() -> dict[str, float]:
    """Best-of-ROUNDS microseconds per request for every variant, interleaved."""
    apps = {v: build(v) for v in VARIANTS}
    telemetry: dict[str, limelight.Telemetry | None] = dict.fromkeys(VARIANTS)
    best = dict.fromkeys(VARIANTS, float("inf"))
    loop = asyncio.new_event_loop()
    try:
        for _round in range(ROUNDS):
            for variant in VARIANTS:
                sampler = SAMPLERS.get(variant)
                running = None if sampler is None else start_limelight(sampler)
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
            make(telemetry.tracer("bench").start_span),
            number=NUMBER,
            repeat=ROUNDS,
            timer=time.process_time,
        )
        result.append(min(times) / NUMBER * 1e6)
        if sampler == "parentbased_always_on":
            sdk = TracerProvider(sampler=ParentBased(ALWAYS_ON), shutdown_on_exit=False)
            processor = BoundedBatchSpanProcessor(
                _Discard(), "bench", BatchSettings(), telemetry.self_metrics
            )
            sdk.add_span_processor(processor)
            times = timeit.repeat(
                make(sdk.get_tracer("bench").start_span),
                number=NUMBER,
                repeat=ROUNDS,
                timer=time.process_time,
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

    sampler = SAMPLERS.get(variant)
    if sampler is not None:
        start_limelight(sampler)
    uvicorn.run(build(variant), host="127.0.0.1", port=port, log_level="error", access_log=False)


def _wrk() -> str | None:
    try:
        from limelight_testsupport import ensure_debian_package
    except ImportError:  # pragma: no cover - bench run outside the workspace
        import shutil

        return shutil.which("wrk")
    return ensure_debian_package("wrk", "wrk")


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) of process *pid*: its first thread (the event
    loop's), and all its threads together; ``None`` without ``/proc``."""
    try:
        main = total = 0.0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / _TICKS
            total += seconds
            if int(tid) == pid:
                main = seconds
    except OSError:
        return None
    return main, total


class Served:
    """What one wrk run measured of one server."""

    def __init__(self, rps: float, requests: int, cpu: tuple[float, float] | None) -> None:
        self.rps = rps
        self.requests = requests
        self.cpu = cpu

    def cpu_us(self) -> float | None:
        """Server CPU µs per request, all threads."""
        return None if self.cpu is None else self.cpu[1] / self.requests * 1e6

    def others_us(self) -> float | None:
        """Of which threads other than the event loop's."""
        return None if self.cpu is None else (self.cpu[1] - self.cpu[0]) / self.requests * 1e6


def _cpus() -> tuple[int, int] | None:
    """Two CPUs to keep wrk (and this process) and the server apart, where possible."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[1]) if len(allowed) >= 2 else None


def _one_wrk_run(wrk: str, variant: str) -> Served:
    from limelight_testsupport import free_port, wait_for_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", variant, str(port)], stdout=subprocess.DEVNULL
    )
    cpus = _cpus()
    if cpus is not None:  # before it starts its threads: they stay on the server's CPU
        os.sched_setaffinity(server.pid, {cpus[1]})
    try:
        if not wait_for_port("127.0.0.1", port, 30):
            raise RuntimeError(f"{variant}: uvicorn did not start")
        url = f"http://127.0.0.1:{port}/items/42"
        subprocess.run([wrk, "-t1", "-c8", "-d1s", url], capture_output=True, check=True)  # warm up
        before = _cpu(server.pid)
        out = subprocess.run(
            [wrk, "-t1", "-c8", f"-d{WRK_SECONDS}s", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        after = _cpu(server.pid)
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        count = re.search(r"(\d+) requests in", out)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if found is None or count is None or errors is not None:
            raise RuntimeError(f"{variant}: unexpected wrk output:\n{out}")
        cpu = None
        if before is not None and after is not None:
            cpu = (after[0] - before[0], after[1] - before[1])
        return Served(float(found.group(1)), int(count.group(1)), cpu)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _better(new: Served, kept: Served) -> bool:
    new_cpu, kept_cpu = new.cpu_us(), kept.cpu_us()
    if new_cpu is not None and kept_cpu is not None:
        return new_cpu < kept_cpu
    return new.rps > kept.rps


def under_uvicorn(wrk: str) -> dict[str, Served]:
    """Per variant, the wrk run (of WRK_ROUNDS interleaved) whose server used the least
    CPU per request (the most requests per second without /proc)."""
    best: dict[str, Served] = {}
    cpus = _cpus()
    if cpus is not None:  # wrk, started from here, stays on the other CPU
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpus[0]})
    try:
        for _round in range(WRK_ROUNDS):
            for variant in VARIANTS:
                served = _one_wrk_run(wrk, variant)
                kept = best.get(variant)
                if kept is None or _better(served, kept):
                    best[variant] = served
    finally:
        if cpus is not None:
            os.sched_setaffinity(0, allowed)
    return best


def main() -> None:
    print(
        f"limelight http bench: Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"\n1. in-process ASGI calls: best of {ROUNDS} interleaved rounds x {NUMBER} requests")
    print_rows("GET /items/{item_id}, CPU µs per request", in_process(), "µs/request")
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
        f"{WRK_SECONDS}s; server CPU per request (all threads; of which not the event loop's)"
    )
    served = under_uvicorn(wrk)
    base_cpu = served["bare"].cpu_us()
    base_rps = served["bare"].rps
    print(
        f"  {'':40s} {'CPU µs/req':>11s} {'delta µs':>9s} {'others':>7s} "
        f"{'requests/s':>11s} {'x bare':>7s}"
    )
    for variant in VARIANTS:
        one = served[variant]
        cpu, others = one.cpu_us(), one.others_us()
        cpu_text = "n/a" if cpu is None else f"{cpu:.1f}"
        delta_text = "n/a" if cpu is None or base_cpu is None else f"{cpu - base_cpu:+.1f}"
        others_text = "n/a" if others is None else f"{others:.1f}"
        print(
            f"  {DESCRIPTIONS[variant]:40s} {cpu_text:>11s} {delta_text:>9s} {others_text:>7s} "
            f"{one.rps:11.0f} {base_rps / one.rps:7.2f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
