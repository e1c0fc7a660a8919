"""``limelight run -- <command>``: real services with no limelight line in their code.

A FastAPI app under ``uvicorn --workers 2``, a Flask app under gunicorn with two
workers and a Django project under ``manage.py runserver`` (``tests/runapps``)
each run twice: under ``limelight run``, and set up in code as the
documentation describes (``fastapi_explicit``, ``flask_explicit`` with
``gunicorn_explicit``, ``djshop.explicit_settings``). Both runs get the same
requests, one of which calls a downstream server with httpx, and are stopped
with SIGTERM. Compared: the SERVER and CLIENT spans a real OTLP receiver gets,
the series of a Prometheus scrape (the aggregate of every worker, from
prometheus_client's multiprocess mode for the pre-forking servers), and the
exit code; the request that calls out is one trace from the server span to the
downstream server's ``traceparent``. The zero-code runs also show that the
libraries the application never imports stay unimported in its workers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from limelight_testsupport import console_script, free_port, wait_for_port
from limelight_testsupport.httpserver import LocalHTTPServer
from limelight_testsupport.otlp import OtlpReceiver, otlp_receiver
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client import CollectorRegistry, generate_latest, parser
from prometheus_client.multiprocess import MultiProcessCollector

APPS = Path(__file__).parent / "runapps"
BIN = Path(sys.executable).parent
WAIT = 30.0
"""Seconds a service may take to start, answer or stop before the test fails."""
FAILED_START = "limelight could not start telemetry; the application runs without it"
TEST_ONLY_PLUGINS = "alpha,beta,faulty-import,faulty-hook"
"""The core suite's test-only plugins, installed where this suite runs."""
SERVER, CLIENT = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT
REQUESTS = ("/items/1", "/items/2", "/call", "/items/3")
_PARSE: Any = parser.text_string_to_metric_families


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as r:
        yield r


@pytest.fixture
def downstream() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as server:
        yield server


def _environment(
    receiver: OtlpReceiver, downstream: LocalHTTPServer, metrics_port: int, **extra: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "LIMELIGHT_", "PROMETHEUS_"))
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": str(APPS),
            "OTEL_SERVICE_NAME": "shop",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp,prometheus",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
            "LIMELIGHT_DISABLED_PLUGINS": TEST_ONLY_PLUGINS,
            "RUNAPP_DOWNSTREAM": downstream.url("/downstream"),
        }
    )
    env.update(extra)
    return env


@dataclass
class Run:
    """What one run of a service produced."""

    spans: list[Span]
    series: dict[tuple[str, tuple[tuple[str, str], ...]], float | None]
    exit_code: int
    output: str
    imported: list[str]
    pids: set[int]


def _serve(
    command: list[str],
    env: dict[str, str],
    port: int,
    scrape: Callable[[], str],
    receiver: OtlpReceiver,
    tmp_path: Path,
) -> Run:
    """Start *command*, send it :data:`REQUESTS`, scrape it, stop it with SIGTERM."""
    log = tmp_path / f"service-{time.monotonic_ns()}.log"
    before = len(receiver.spans())
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=APPS, stdout=out, stderr=subprocess.STDOUT)
    try:
        if not wait_for_port("127.0.0.1", port, WAIT):
            pytest.fail(f"{command} did not listen: {log.read_text()[-3000:]}")
        base = f"http://127.0.0.1:{port}"
        for path in REQUESTS:
            response = httpx.get(base + path, timeout=WAIT)
            assert 200 == response.status_code, (path, response.text)
        imported: list[str] = []
        pids: set[int] = set()
        for _ in range(8):  # more than one worker answers, one of them at least twice
            modules = httpx.get(base + "/modules", timeout=WAIT).json()
            imported.extend(modules["imported"])
            pids.add(modules["pid"])
        series = _series(scrape, len(REQUESTS) + 8)
        # every span of the requests has reached the receiver before the stop
        receiver.wait_for_spans(before + len(REQUESTS) + 1 + 8, WAIT)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"{command} did not stop on SIGTERM: {log.read_text()[-3000:]}")
    spans = [s for s in receiver.spans()[before:] if _attr(s, "http.request.method")]
    return Run(spans, series, exit_code, log.read_text(), imported, pids)


def _http(url: str) -> Callable[[], str]:
    return lambda: httpx.get(url, timeout=WAIT).text


def _directory(path: Path) -> Callable[[], str]:
    """The aggregate of prometheus_client's multiprocess files in *path*, as any
    worker's ``make_asgi_app()`` would serve it."""

    def read() -> str:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
        return generate_latest(registry).decode()

    return read


def _series(
    scrape: Callable[[], str], requests: int
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float | None]:
    """The HTTP series of a scrape, once every request is counted: counts and gauges
    with their values; histogram buckets and sums (timings) by their labels only."""
    deadline = time.monotonic() + WAIT
    while True:
        text = scrape()
        series = {
            (s.name, tuple(sorted(s.labels.items()))): (
                None if s.name.endswith(("_bucket", "_sum")) else s.value
            )
            for family in _PARSE(text)
            if family.name.startswith("http_")
            for s in family.samples
            if not s.name.endswith("_created")
        }
        counted = sum(v or 0 for (name, _), v in series.items() if name == "http_requests_total")
        if counted >= requests or time.monotonic() > deadline:
            return series
        time.sleep(0.2)


def _attr(span: Span, key: str) -> Any:
    for kv in span.attributes:
        if kv.key == key:
            value = kv.value
            return getattr(value, value.WhichOneof("value") or "string_value")
    return None


def _shape(spans: list[Span]) -> list[tuple[Any, ...]]:
    """What a user reads off the spans of a run, sorted: name, kind, route, method,
    status, and which attributes the span has."""
    return sorted(
        (
            s.name,
            s.kind,
            _attr(s, "http.route"),
            _attr(s, "http.request.method"),
            _attr(s, "http.response.status_code"),
            s.status.code,
            tuple(sorted(kv.key for kv in s.attributes)),
        )
        for s in spans
    )


def _assert_one_trace(run: Run, downstream: LocalHTTPServer) -> None:
    """The request that called out: server span, client span and downstream, one trace."""
    (server,) = [s for s in run.spans if s.kind == SERVER and _attr(s, "url.path") == "/call"]
    (client,) = [s for s in run.spans if s.kind == CLIENT]
    assert server.trace_id == client.trace_id
    assert server.span_id == client.parent_span_id
    assert b"" == server.parent_span_id  # a root: not the launcher's, not the spawn's
    (traceparent,) = downstream.last().header("traceparent")
    assert f"00-{client.trace_id.hex()}-{client.span_id.hex()}" == traceparent[:-3]


def _assert_same(run: Run, explicit: Run) -> None:
    assert _shape(explicit.spans) == _shape(run.spans)
    assert explicit.series == run.series
    assert explicit.exit_code == run.exit_code
    assert FAILED_START not in run.output
    assert [] == run.imported  # never imported by limelight in any worker


def _limelight_run(*command: str) -> list[str]:
    return [console_script("limelight"), "run", "--", *command]


class TestUvicornWorkers:
    """FastAPI under ``uvicorn --workers 2``: each worker traced, the master serves the sum."""

    def test_same_spans_and_series_as_the_explicit_setup(
        self, receiver: OtlpReceiver, downstream: LocalHTTPServer, tmp_path: Path
    ) -> None:
        port, metrics_port = free_port(), free_port()
        uvicorn = [console_script("uvicorn"), "--workers", "2", "--port", str(port)]
        env = _environment(receiver, downstream, metrics_port)
        # the master serves the aggregate of its workers
        master = _http(f"http://127.0.0.1:{metrics_port}/metrics")
        run = _serve(
            _limelight_run(*uvicorn, "fastapi_app:app"), env, port, master, receiver, tmp_path
        )
        _assert_one_trace(run, downstream)
        items = (("method", "GET"), ("route", "/items/{item_id}"), ("status_code", "200"))
        assert 3 == run.series[("http_requests_total", items)]
        mp_dir = tmp_path / "explicit-prometheus"
        mp_dir.mkdir()
        explicit_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}
        explicit = _serve(
            [*uvicorn, "fastapi_explicit:app"],
            explicit_env,
            port,
            _directory(mp_dir),
            receiver,
            tmp_path,
        )
        _assert_same(run, explicit)
        # the explicitly set-up service under limelight run: each request recorded once
        both = _serve(
            _limelight_run(*uvicorn, "fastapi_explicit:app"), env, port, master, receiver, tmp_path
        )
        _assert_same(both, explicit)


class TestGunicornWorkers:
    """Flask under gunicorn with two workers: each starts its own telemetry after the fork."""

    def test_same_spans_and_series_as_the_explicit_setup(
        self, receiver: OtlpReceiver, downstream: LocalHTTPServer, tmp_path: Path
    ) -> None:
        port, metrics_port = free_port(), free_port()
        gunicorn = [console_script("gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}"]
        gunicorn += ["--graceful-timeout", "5"]
        env = _environment(receiver, downstream, metrics_port)
        master = _http(f"http://127.0.0.1:{metrics_port}/metrics")
        run = _serve(
            _limelight_run(*gunicorn, "flask_app:app"), env, port, master, receiver, tmp_path
        )
        _assert_one_trace(run, downstream)
        mp_dir = tmp_path / "explicit-prometheus"
        mp_dir.mkdir()
        explicit_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}
        explicit = _serve(
            [*gunicorn, "-c", str(APPS / "gunicorn_explicit.py"), "flask_explicit:app"],
            explicit_env,
            port,
            master,
            receiver,
            tmp_path,
        )
        _assert_same(run, explicit)
        assert 0 == run.exit_code  # gunicorn's own, after a graceful stop


class TestDjangoProject:
    """A Django project under ``manage.py runserver``: the middleware with no line of settings."""

    def test_same_spans_and_series_as_the_explicit_setup(
        self, receiver: OtlpReceiver, downstream: LocalHTTPServer, tmp_path: Path
    ) -> None:
        port, metrics_port = free_port(), free_port()
        runserver = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        env = _environment(receiver, downstream, metrics_port)
        server = _http(f"http://127.0.0.1:{metrics_port}/metrics")
        run = _serve(_limelight_run(*runserver), env, port, server, receiver, tmp_path)
        _assert_one_trace(run, downstream)
        explicit_env = {**env, "DJANGO_SETTINGS_MODULE": "djshop.explicit_settings"}
        explicit = _serve(runserver, explicit_env, port, server, receiver, tmp_path)
        _assert_same(run, explicit)


class TestTheCommandIsNeverBroken:
    """The wrapper changes nothing a user relies on when something goes wrong."""

    @pytest.mark.parametrize(
        "command",
        [
            pytest.param([sys.executable, "broken_app.py"], id="python"),
            pytest.param([sys.executable, "-m", "broken_app"], id="python-m"),
            pytest.param(["uvicorn", "broken_app:app"], id="uvicorn"),
        ],
    )
    def test_an_application_that_fails_to_import_fails_the_same_way(
        self, command: list[str], tmp_path: Path
    ) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIMELIGHT_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "LIMELIGHT_DISABLED_PLUGINS": TEST_ONLY_PLUGINS,
        }

        def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                argv, env=env, cwd=APPS, capture_output=True, text=True, timeout=WAIT, check=False
            )

        bare, wrapped = run(command), run(_limelight_run(*command))
        assert 0 != bare.returncode
        assert bare.returncode == wrapped.returncode
        assert bare.stdout == wrapped.stdout
        assert _without_times(bare.stderr) == _without_times(wrapped.stderr)
        assert "ModuleNotFoundError" in bare.stderr

    def test_the_exit_code_and_the_signal_are_the_commands(self, tmp_path: Path) -> None:
        env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
        code = "import sys; sys.exit(int(sys.argv[1]))"
        done = subprocess.run(
            _limelight_run(sys.executable, "-c", code, "7"), env=env, timeout=WAIT, check=False
        )
        assert 7 == done.returncode
        sleeper = subprocess.Popen(
            _limelight_run(
                sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"
            ),
            env=env,
            stdout=subprocess.PIPE,
        )
        assert sleeper.stdout is not None
        assert b"up\n" == sleeper.stdout.readline()
        sleeper.send_signal(signal.SIGTERM)  # the wrapper was replaced: this is the command
        assert -signal.SIGTERM == sleeper.wait(WAIT)
        missing = subprocess.run(
            _limelight_run("no-such-command-here"), capture_output=True, text=True, check=False
        )
        assert 127 == missing.returncode
        assert "command not found: no-such-command-here" in missing.stderr

    def test_a_failed_start_is_reported_once_and_the_app_serves(
        self, receiver: OtlpReceiver, downstream: LocalHTTPServer, tmp_path: Path
    ) -> None:
        # a plugin failing at start under LIMELIGHT_STRICT makes the start raise
        port, metrics_port = free_port(), free_port()
        env = _environment(
            receiver,
            downstream,
            metrics_port,
            LIMELIGHT_STRICT="true",
            LIMELIGHT_DISABLED_PLUGINS="faulty-import",
        )
        uvicorn = [console_script("uvicorn"), "--port", str(port), "fastapi_app:app"]
        log = tmp_path / "service.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                _limelight_run(*uvicorn), env=env, cwd=APPS, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            assert wait_for_port("127.0.0.1", port, WAIT), log.read_text()
            for path in REQUESTS:
                assert 200 == httpx.get(f"http://127.0.0.1:{port}{path}", timeout=WAIT).status_code
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(WAIT)
        output = log.read_text()
        assert 1 == output.count(FAILED_START), output
        assert "faulty-hook refuses to start" in output
        assert [] == receiver.spans()  # untraced, and nothing left to flush


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?")


def _without_times(text: str) -> str:
    return _TIMESTAMP.sub("<time>", text)


NEVER_AT_START = (
    "fastapi",
    "starlette",
    "flask",
    "django",
    "httpx",
    "requests",
    "redis",
    "sqlalchemy",
    "psycopg",
    "psycopg2",
    "aiosqlite",
    "aio_pika",
    "pika",
    "nats",
    "temporalio",
    "structlog",
    "blinker",
    "pyee",
    "multiprocessing",
)
"""Libraries some installed surface instruments that a start must not import itself."""

EVERY_SURFACE = """
import importlib, importlib.util, json, sys
from importlib.metadata import entry_points
import limelight

limelight.start()
imported = [m for m in NEVER_AT_START if m in sys.modules]
for name in NEVER_AT_START:
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)
surfaces = {}
for ep in entry_points(group="limelight.plugins"):
    package = importlib.import_module(ep.value.split(":")[0].split(".")[0])
    if callable(getattr(package, "is_instrumented", None)):
        surfaces[ep.name] = package.is_instrumented()
print(json.dumps({"imported_by_start": imported, "surfaces": surfaces}))
"""


class TestEverySurface:
    """With every distribution installed and LIMELIGHT_AUTO_INSTRUMENT on, as under
    limelight run: a start imports none of the instrumented libraries, and each
    surface is instrumented once the application imports its libraries."""

    def test_instrumented_on_import_and_never_before(self) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIMELIGHT_"))},
            "LIMELIGHT_AUTO_INSTRUMENT": "true",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
            "LIMELIGHT_DISABLED_PLUGINS": TEST_ONLY_PLUGINS,
        }
        code = f"NEVER_AT_START = {NEVER_AT_START!r}\n" + EVERY_SURFACE
        done = subprocess.run(
            [sys.executable, "-c", code, "--", "-"],
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT * 4,
            check=False,
        )
        assert 0 == done.returncode, done.stderr
        report = json.loads(done.stdout.splitlines()[-1])
        assert [] == report["imported_by_start"]
        assert report["surfaces"], "no surface plugin installed"
        assert dict.fromkeys(report["surfaces"], True) == report["surfaces"]
