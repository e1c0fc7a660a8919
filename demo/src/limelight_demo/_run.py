"""``limelight demo``: start the shop, send it traffic, show what limelight recorded."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Collection, Mapping, Sequence
from importlib.metadata import entry_points
from types import FrameType
from typing import Any

import attrs
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

import limelight
from limelight.propagation import parse_traceparent

from ._report import log_lines, metrics_table, waterfall
from ._shop import LOG, RECEIPT_ENVIRONMENT, Shop, build_app
from ._traces import TraceKeeper

__all__ = [
    "OTLP_ENDPOINT_VARIABLES",
    "TRAFFIC",
    "LogKeeper",
    "Service",
    "demo_environment",
    "main",
    "receipt_environment",
]

TRAFFIC: tuple[tuple[str, str], ...] = (
    ("GET", "/orders/1"),
    ("GET", "/orders/2"),
    ("GET", "/orders/3"),
    ("POST", "/orders/5/pay"),  # paid: an event, a worker, a receipt printed by a child
    ("POST", "/orders/4/pay"),  # 500: the payment provider fails above 100.00
    ("GET", "/orders/42"),  # 404: there is no order 42
    *(("GET", f"/orders/{1 + i % 4}") for i in range(24)),
    ("POST", "/orders/1/pay"),
)
"""The burst of requests the demo sends, in order."""

SHOWN = ("POST", "/orders/5/pay")
"""The request whose trace is shown: it touches every surface, across two processes."""

OTLP_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)

_PAUSE = 0.02
"""Seconds between two requests of the burst, so that the progress bar can be seen."""


def demo_environment(
    environ: Mapping[str, str], installed: Collection[str] | None = None
) -> dict[str, str]:
    """The environment telemetry is configured from: *environ* plus the demo's defaults.

    Each default is what a user would set by hand, and what *environ* sets wins:

    - ``OTEL_SERVICE_NAME=limelight-demo``;
    - ``LIMELIGHT_PROMETHEUS_SERVER=false``: ``/metrics`` is mounted in the app
      instead of a standalone server on port 9464;
    - ``LIMELIGHT_EVENTBUS_SPANS=true``: a span per signal dispatch, to show one;
    - ``LIMELIGHT_DISABLED_PLUGINS`` gains ``otlp`` when no OTLP endpoint is set
      (no exporter retries a collector that is not there), and ``console`` unless
      ``OTEL_TRACES_EXPORTER`` or ``OTEL_METRICS_EXPORTER`` names it (the demo
      shows traces itself; limelight-console would print every one on stderr).

    :param installed: the installed plugin names, the only ones added to
        ``LIMELIGHT_DISABLED_PLUGINS``; by default the ``limelight.plugins``
        entry points.
    """
    if installed is None:
        installed = {ep.name for ep in entry_points(group="limelight.plugins")}
    env = dict(environ)
    env.setdefault("OTEL_SERVICE_NAME", "limelight-demo")
    env.setdefault("LIMELIGHT_PROMETHEUS_SERVER", "false")
    env.setdefault("LIMELIGHT_EVENTBUS_SPANS", "true")
    quiet = []
    if not any(env.get(name) for name in OTLP_ENDPOINT_VARIABLES):
        quiet.append("otlp")
    selected = {
        name.strip()
        for var in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER")
        for name in env.get(var, "").split(",")
    }
    if "console" not in selected:
        quiet.append("console")
    user = [p.strip() for p in env.get("LIMELIGHT_DISABLED_PLUGINS", "").split(",") if p.strip()]
    added = [p for p in quiet if p in installed and p not in user]
    if added:
        env["LIMELIGHT_DISABLED_PLUGINS"] = ",".join(user + added)
    return env


def receipt_environment(env: Mapping[str, str], keeper: TraceKeeper) -> dict[str, str]:
    """The receipt printer's environment: the demo's *env* with telemetry that exports
    its spans to where the demo's go.

    With an OTLP traces endpoint in *env*, the printer exports there too (the whole
    trace reaches the user's collector); otherwise to *keeper*'s OTLP receiver, so
    that the demo shows the printer's spans in the trace. It exports no metrics.
    """
    receipts = {**env, **RECEIPT_ENVIRONMENT, "OTEL_TRACES_EXPORTER": "otlp"}
    if not any(env.get(n) for n in OTLP_ENDPOINT_VARIABLES[:2]):
        receipts["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = keeper.serve_otlp()
    disabled = [p for p in receipts.get("LIMELIGHT_DISABLED_PLUGINS", "").split(",") if p]
    receipts["LIMELIGHT_DISABLED_PLUGINS"] = ",".join(p for p in disabled if p != "otlp")
    return receipts


class Service:
    """The shop under uvicorn on a loopback port, served from a background thread.

    :param port: the port to listen on; ``0`` picks a free one.
    :param receipt_environment: what the receipt printer's environment adds.
    :raises OSError: the port cannot be bound.
    """

    def __init__(
        self, port: int = 0, receipt_environment: Mapping[str, str] = RECEIPT_ENVIRONMENT
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind(("127.0.0.1", port))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = build_app(self.url, receipt_environment)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="demo-service"
        )

    def start(self, timeout: float = 15.0) -> Service:
        """Serve; :class:`RuntimeError` when the server did not start in time."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the demo service did not start")
            time.sleep(0.01)
        return self

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until the fulfilment worker has handled every paid order so far."""
        shop: Shop = self.app.state.shop
        if shop.loop is not None:
            asyncio.run_coroutine_threadsafe(shop.drain(), shop.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the requests in progress and stop serving."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()


class LogKeeper(logging.Handler):
    """A ``logging`` handler that keeps the last *capacity* records, for the report.

    It is an ordinary handler: the ``trace_id`` and ``span_id`` it finds on a record
    are those limelight-logs stamped where the record was made.
    """

    def __init__(self, capacity: int = 1000) -> None:
        super().__init__(logging.INFO)
        self._records: deque[logging.LogRecord] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)

    def trace(self, trace_id: int) -> list[logging.LogRecord]:
        """The records kept that were made inside a span of the trace *trace_id*."""
        wanted = f"{trace_id:032x}"
        return [r for r in list(self._records) if getattr(r, "trace_id", "") == wanted]


@attrs.frozen
class Sent:
    """One request of the burst and what came back."""

    method: str
    path: str
    status: int
    trace_id: int | None


def send(connection: http.client.HTTPConnection, method: str, path: str) -> Sent:
    """Send one request; the trace id comes from the response's ``traceparent`` header."""
    connection.request(method, path)
    response = connection.getresponse()
    response.read()
    parsed = parse_traceparent(response.getheader("traceparent") or "")
    return Sent(method, path, response.status, parsed[0] if parsed is not None else None)


def drive(url: str, console: Console, stop: threading.Event) -> list[Sent]:
    """Send :data:`TRAFFIC` to the service at *url* with a progress bar."""
    # http.client stands for the outside world here: it is not instrumented, so
    # each request starts its trace at the shop's SERVER span.
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    sent: list[Sent] = []
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
    )
    with progress:
        task = progress.add_task("sending traffic", total=len(TRAFFIC), last="")
        for method, path in TRAFFIC:
            if stop.is_set():
                break
            result = send(connection, method, path)
            sent.append(result)
            progress.update(task, advance=1, last=f"{method} {path} → {result.status}")
            time.sleep(_PAUSE)
    connection.close()
    return sent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="limelight demo",
        description=(
            "Run a small shop service instrumented with limelight on a loopback port, "
            "send it a burst of traffic and show one request's trace and the metrics of "
            "each surface; then keep serving (with /metrics for Prometheus) until Ctrl-C."
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--once", action="store_true", help="send the traffic, show the results and exit"
    )
    mode.add_argument(
        "--serve",
        action="store_true",
        help="only serve (no traffic, no report) until Ctrl-C or SIGTERM",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 to listen on (default: any free)"
    )
    return parser


class _Stop:
    """Ctrl-C and SIGTERM set an event instead of killing the process, so it stops cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __enter__(self) -> threading.Event:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self.event

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _console() -> Console:
    if sys.stdout.isatty() or "COLUMNS" in os.environ:
        return Console(highlight=False)
    return Console(highlight=False, width=140)  # piped: wide enough for one line per row


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo (``limelight demo [--once | --serve] [--port N]``); the exit status."""
    args = _parser().parse_args(argv)
    console = _console()
    env = demo_environment(os.environ)
    keeper = TraceKeeper()
    receipts = receipt_environment(env, keeper)
    # the shop's log lines are kept for the report (and not written to the terminal)
    lines = LogKeeper()
    LOG.setLevel(logging.INFO)
    LOG.addHandler(lines)
    # limelight: start telemetry once, early; installed plugins are discovered.
    telemetry = limelight.start(plugins=[keeper], environ=env)
    with _Stop() as stop:
        try:
            service = Service(args.port, receipts).start()
        except (OSError, RuntimeError) as exc:
            console.print(f"[red]cannot start the demo service on port {args.port}:[/] {exc}")
            limelight.stop()
            return 1
        try:
            console.print(
                f"[bold]limelight demo[/]: a small tea shop at {service.url}, "
                f"instrumented with limelight"
            )
            otlp = ", ".join(f"{n}={env[n]}" for n in OTLP_ENDPOINT_VARIABLES if env.get(n))
            console.print(f"[dim]plugins: {', '.join(telemetry.plugins.names())}[/]")
            console.print(
                f"[dim]OTLP: {otlp or 'off (set OTEL_EXPORTER_OTLP_ENDPOINT to send there)'}[/]\n"
            )
            if not args.serve:
                sent = drive(service.url, console, stop)
                service.drain()
                _report(console, sent, keeper, lines, telemetry)
            if args.once:
                console.print(
                    f"\n[dim]--once: stopping now; `limelight demo` keeps serving "
                    f"{service.url}/metrics until Ctrl-C.[/]"
                )
            else:
                _serving(console, service.url)
                while not stop.wait(0.5):
                    pass
                console.print("\nstopping: finishing requests, flushing telemetry")
        finally:
            service.stop()
            flushed = limelight.stop()
            keeper.close()
            LOG.removeHandler(lines)
    console.print("stopped; telemetry flushed" if flushed else "stopped; the flush timed out")
    return 0


def _report(
    console: Console,
    sent: Sequence[Sent],
    keeper: TraceKeeper,
    lines: LogKeeper,
    telemetry: limelight.Telemetry,
) -> None:
    statuses = Counter(s.status for s in sent)
    console.print(
        f"sent {len(sent)} requests: "
        + ", ".join(f"{n} answered {status}" for status, n in sorted(statuses.items()))
    )
    shown = next((s for s in sent if (s.method, s.path) == SHOWN), None)
    if shown is not None and shown.trace_id is not None:
        spans = keeper.trace(shown.trace_id)
        console.print(
            f"\n[bold]One request's trace[/]: {shown.method} {shown.path} → {shown.status}, "
            f"{len(spans)} spans\n[dim]trace id {shown.trace_id:032x}, as in the response's "
            "traceparent header[/]\n"
        )
        console.print(waterfall(spans, console.width))
        records = lines.trace(shown.trace_id)
        console.print(
            f"\n[bold]Its log lines[/]: {len(records)}, written with logging; limelight-logs "
            "stamped each with the trace and span it was written in\n"
        )
        console.print(log_lines(records, spans), soft_wrap=True)
    console.print(
        "\n[bold]Metrics by surface[/] [dim](counters with the mean of their duration "
        "histogram, and the in-flight gauges)[/]\n"
    )
    console.print(metrics_table(telemetry.store, console.width))


def _serving(console: Console, url: str) -> None:
    console.print(
        f"\n[bold]Serving[/] on {url} until Ctrl-C.",
        f"Metrics for Prometheus: [bold]{url}/metrics[/]",
        "Try:",
        f"  curl {url}/orders/1",
        f"  curl -X POST {url}/orders/4/pay",
        f"  curl {url}/metrics",
        sep="\n",
        soft_wrap=True,
    )
