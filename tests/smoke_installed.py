"""The smoke test of each built distribution, run by ``nox -s packaging`` in a fresh
environment holding only the built wheels (and their dependencies from the index),
outside the checkout.

``python smoke_installed.py --version 0.1.0 --checkout /path/to/tree limelight limelight-otlp ...``

For every distribution named: it is installed from its wheel (its files are not the
checkout's, it is not editable) at the release version, with its licence text and
licence expression; each of its packages imports, ships ``py.typed`` and has every
name of its ``__all__``; each of its plugins loads through its entry point and starts
and stops with telemetry alone, without the libraries its extras name; then what it
is for, where that needs no service: the core records a call, limelight-prometheus
serves a scrape, limelight-otlp pushes spans and metrics to a receiver on a loopback
port, limelight-console prints a trace, the demo runs once. Exits 1 naming every
failure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

FAILURES: list[str] = []


def check(ok: object, what: str) -> None:
    if not ok:
        FAILURES.append(what)
        print(f"  FAIL {what}", flush=True)


def _packages(dist: metadata.Distribution) -> list[str]:
    names = {f.parts[0] for f in dist.files or () if len(f.parts) == 2 and f.name == "__init__.py"}
    return sorted(names)


def _installed(name: str, version: str, checkout: Path) -> metadata.Distribution:
    dist = metadata.distribution(name)
    check(version == dist.version, f"{name}: version {dist.version}, not {version}")
    direct = dist.read_text("direct_url.json")
    check(
        direct is None or not json.loads(direct).get("dir_info", {}).get("editable"),
        f"{name}: installed editable",
    )
    for file in dist.files or ():
        path = Path(str(dist.locate_file(file))).resolve()
        check(not path.is_relative_to(checkout), f"{name}: {file} comes from the checkout")
    check("Apache-2.0" == dist.metadata["License-Expression"], f"{name}: licence expression")
    licences = [f for f in dist.files or () if f.parts[-2:] == ("licenses", "LICENSE")]
    check(licences, f"{name}: no LICENSE in the wheel")
    for file in licences:
        text = Path(str(dist.locate_file(file))).read_text()
        check("Apache License" in text and "Version 2.0" in text, f"{name}: LICENSE text")
    return dist


def _imports(name: str, dist: metadata.Distribution) -> None:
    packages = _packages(dist)
    check(packages, f"{name}: no package")
    for package in packages:
        module = importlib.import_module(package)
        check(
            Path(str(dist.locate_file(f"{package}/py.typed"))).exists(),
            f"{name}: {package} has no py.typed",
        )
        for attribute in getattr(module, "__all__", ()):
            try:
                getattr(module, attribute)
            except ModuleNotFoundError as exc:
                # a name imported lazily from the library an extra installs (psycopg2 for
                # limelight_sql.Psycopg2Connection) needs that library, and only it
                check(
                    exc.name and not exc.name.startswith("limelight"),
                    f"{name}: {package}.{attribute}: {exc!r}",
                )
            except AttributeError:
                check(False, f"{name}: {package}.{attribute} is missing")


def _entry_points(dist: metadata.Distribution) -> list[str]:
    return [ep.name for ep in dist.entry_points if ep.group == "limelight.plugins"]


# -- a receiver for limelight-otlp --------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    bodies: dict[str, list[bytes]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.bodies.setdefault(self.path, []).append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _receiver() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    bodies: dict[str, list[bytes]] = {}
    handler = type("Handler", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


# -- what each distribution is for ---------------------------------------------------------

BUILTINS = "limelight.function_metrics,limelight.function_tracing,limelight.runtime_metrics"


def _telemetry(plugins: list[str], **env: str) -> Any:
    import limelight

    environ = {
        "LIMELIGHT_PLUGINS": ",".join([*plugins, BUILTINS]),
        "OTEL_SERVICE_NAME": "smoke",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # nothing listens
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        **env,
    }
    return limelight.Telemetry(environ=environ, handle_signals=False, install_globals=False)


def _starts(name: str, plugins: list[str]) -> None:
    telemetry = _telemetry(plugins).start()
    try:
        infos = {info.name: info for info in telemetry.plugins.infos()}
        for plugin in plugins:
            info = infos.get(plugin)
            check(info is not None and info.status == "loaded", f"{name}: {plugin}: {info}")
    finally:
        telemetry.stop(5)
    check(not telemetry.plugins.failures, f"{name}: failures {telemetry.plugins.failures}")


def _core() -> None:
    import limelight
    from limelight.testing import Harness

    @limelight.instrument(name="smoke.work")
    def work() -> int:
        return 1

    with Harness() as harness:
        work()
        check(["smoke.work"] == [s.name for s in harness.spans()], "limelight: the span")
        check(
            1 == harness.value("function_calls_total", function="smoke.work", result="ok"),
            "limelight: function_calls_total",
        )
        check(harness.value("process_cpu_seconds_total") > 0, "limelight: runtime metrics")


def _prometheus() -> None:
    from limelight_prometheus import PrometheusReader

    telemetry = _telemetry(["prometheus"]).start()
    try:
        reader = PrometheusReader.of(telemetry)
        check(reader is not None and reader.url, "limelight-prometheus: no server")
        if reader is not None and reader.url:
            with urllib.request.urlopen(reader.url, timeout=10) as response:
                text = response.read().decode()
            for name in ("process_cpu_seconds_total", "function_calls_total", "python_info"):
                check(f"# TYPE {name}" in text, f"limelight-prometheus: {name} not served")
    finally:
        telemetry.stop(5)


def _otlp() -> None:
    with _receiver() as (endpoint, bodies):
        telemetry = _telemetry(["otlp"], OTEL_EXPORTER_OTLP_ENDPOINT=endpoint).start()
        try:
            with telemetry.tracer("smoke").start_as_current_span("smoke.span"):
                pass
        finally:
            telemetry.stop(10)
        traces = b"".join(bodies.get("/v1/traces", []))
        metrics = b"".join(bodies.get("/v1/metrics", []))
        check(b"smoke.span" in traces, "limelight-otlp: no span pushed")
        check(b"process_cpu_seconds_total" in metrics, "limelight-otlp: no metrics pushed")


def _console() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        telemetry = _telemetry(["console"]).start()
        try:
            with telemetry.tracer("smoke").start_as_current_span("smoke.span"):
                pass
        finally:
            telemetry.stop(5)
    check("smoke.span" in err.getvalue(), f"limelight-console printed {err.getvalue()!r}")


def _demo() -> None:
    script = Path(sys.executable).with_name("limelight")
    result = subprocess.run(
        [str(script), "demo", "--once"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "LIMELIGHT_DISABLED_PLUGINS": "otlp"},
    )
    check(0 == result.returncode, f"limelight-demo: exit {result.returncode}: {result.stderr}")
    check("/orders/" in result.stdout, "limelight-demo: no trace shown")


PURPOSE: dict[str, Callable[[], None]] = {
    "limelight": _core,
    "limelight-prometheus": _prometheus,
    "limelight-otlp": _otlp,
    "limelight-console": _console,
    "limelight-demo": _demo,
}


def smoke(name: str, version: str, checkout: Path) -> None:
    print(f"{name}:", flush=True)
    dist = _installed(name, version, checkout)
    _imports(name, dist)
    plugins = [p for p in _entry_points(dist) if not p.startswith("limelight.")]
    if plugins:
        _starts(name, plugins)
    if name in PURPOSE:
        PURPOSE[name]()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, help="the version every one must have")
    parser.add_argument("--checkout", required=True, type=Path, help="the source tree")
    parser.add_argument("distributions", nargs="+")
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    for module in ("limelight", "limelight_hookspecs"):
        origin = importlib.import_module(module).__file__ or ""
        check(not Path(origin).resolve().is_relative_to(checkout), f"{module} from {origin}")
    for name in args.distributions:
        try:
            smoke(name, args.version, checkout)
        except Exception as exc:
            check(False, f"{name}: {exc!r}")
    if FAILURES:
        print(f"\n{len(FAILURES)} failed:\n  " + "\n  ".join(FAILURES))
        return 1
    print(f"\n{len(args.distributions)} distributions installed from their wheels work")
    return 0


if __name__ == "__main__":
    sys.exit(main())
