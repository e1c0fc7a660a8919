"""A process forked after ``limelight.start()`` pushes its own metrics, once, as itself.

The script starts telemetry exporting over OTLP/HTTP, counts in the parent,
exports once (so the parent's HTTP sessions hold a connection), forks, counts
in the child, and lets the child exit normally: its exit flushes what it
inherited. The parent then counts once more and stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from limelight_testsupport.otlp import otlp_receiver
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")

FORK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import limelight

    telemetry = limelight.start(service_name="forking")
    jobs = telemetry.store.counter("app_jobs_total", "Jobs done.", ["who"])
    tracer = telemetry.tracer("fork-test")
    jobs.labels("parent").inc(5)
    tracer.start_span("before-fork").end()
    assert telemetry.force_flush(10)  # both exporters have a connection now
    pid = os.fork()
    if pid == 0:
        jobs.labels("child").inc(3)
        tracer.start_span("in-child").end()
        sys.exit(0)  # the exit flushes what the child recorded
    _, status = os.waitpid(pid, 0)
    jobs.labels("parent").inc(1)
    limelight.stop()
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"child": pid, "parent": os.getpid(), "code": code}))
    """
)


def _run(tmp_path: Path, endpoint: str) -> dict[str, Any]:
    script = tmp_path / "forking.py"
    script.write_text(FORK_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script)],
        env={
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "LIMELIGHT_PLUGINS": "otlp",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    assert 0 == result["code"], proc.stderr
    return result


def _jobs(points: Any) -> list[tuple[str, float]]:
    return sorted(
        ({a.key: a.value.string_value for a in p.attributes}["who"], p.as_double) for p in points
    )


class TestForkAtAReceiver:
    """The child's counter reaches the receiver once, with the child's value only."""

    def test_the_childs_counter_arrives_once_and_the_parents_is_not_sent_again(
        self, tmp_path: Path
    ) -> None:
        with otlp_receiver() as receiver:
            _run(tmp_path, receiver.endpoint)
            receiver.wait_for_spans(2)
            pushes = [m for m in receiver.metrics() if m.name == "app_jobs_total"]
            spans = {s.name for s in receiver.spans()}
        points = [point for push in pushes for point in _jobs(push.sum.data_points)]
        # parent: 5 before the fork, 6 at stop; child: its own 3, and the parent's
        # series counted from 0 in the child
        assert [("child", 3.0)] == [p for p in points if p[0] == "child"]
        assert [("parent", 0.0), ("parent", 5.0), ("parent", 6.0)] == sorted(
            p for p in points if p[0] == "parent"
        )
        assert {"before-fork", "in-child"} <= spans


class _Recorded:
    """What a recording OTLP/HTTP receiver saw: one entry per request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []


def _handler(recorded: _Recorded) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a collector does

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            message: Any = (
                ExportMetricsServiceRequest()
                if self.path == "/v1/metrics"
                else ExportTraceServiceRequest()
            )
            message.ParseFromString(body)
            resources = (
                message.resource_metrics if self.path == "/v1/metrics" else message.resource_spans
            )
            for item in resources:
                attributes = {a.key: a.value for a in item.resource.attributes}
                entry: dict[str, Any] = {
                    "path": self.path,
                    "port": self.client_address[1],
                    "pid": attributes["process.pid"].int_value,
                    "instance": attributes["service.instance.id"].string_value,
                    "jobs": [
                        point
                        for scope in getattr(item, "scope_metrics", ())
                        for metric in scope.metrics
                        if metric.name == "app_jobs_total"
                        for point in _jobs(metric.sum.data_points)
                    ],
                    "spans": [
                        span.name
                        for scope in getattr(item, "scope_spans", ())
                        for span in scope.spans
                    ],
                }
                with recorded.lock:
                    recorded.requests.append(entry)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def recording() -> Iterator[tuple[str, _Recorded]]:
    recorded = _Recorded()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorded))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorded
    finally:
        server.shutdown()
        server.server_close()


class TestForkedIdentity:
    """The child pushes under its own pid and instance id, on connections of its own."""

    def test_resource_and_connections_are_the_childs(
        self, tmp_path: Path, recording: tuple[str, _Recorded]
    ) -> None:
        endpoint, recorded = recording
        pids = _run(tmp_path, endpoint)
        metrics = [r for r in recorded.requests if r["path"] == "/v1/metrics"]
        child = [r for r in metrics if r["pid"] == pids["child"]]
        parent = [r for r in metrics if r["pid"] == pids["parent"]]
        assert [[("child", 3.0), ("parent", 0.0)]] == [r["jobs"] for r in child]
        assert [[("parent", 5.0)], [("parent", 6.0)]] == [r["jobs"] for r in parent]
        assert child[0]["instance"] not in {r["instance"] for r in parent}
        # the child's exports never went over one of the parent's connections
        spans = [r for r in recorded.requests if r["path"] == "/v1/traces"]
        ports = {r["port"] for r in parent} | {
            r["port"] for r in spans if "before-fork" in r["spans"]
        }
        [in_child] = [r for r in spans if "in-child" in r["spans"]]
        assert in_child["port"] not in ports
        assert child[0]["port"] not in ports


class TestDeferredExporterAcrossFork:
    """A forked child makes its exporters again (a connection of its own); a
    shut-down exporter stays shut down."""

    def test_a_child_makes_its_own_exporter(self) -> None:
        from limelight_otlp._exporters import DeferredExporter

        made: list[int] = []

        class Made:
            def shutdown(self) -> None:
                pass

        def make() -> Made:
            made.append(os.getpid())
            return Made()

        exporter = DeferredExporter(make)
        closed = DeferredExporter(make)
        parents = exporter.get()
        closed.get()  # made, then shut down: never made again
        closed.shutdown()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit status
            code = 1
            try:
                fresh = not exporter.made and exporter.get() is not parents
                closed.get()
                code = 0 if fresh and made[-1] == os.getpid() and len(made) == 3 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert 0 == os.waitstatus_to_exitcode(status)
        assert parents is exporter.get()  # the parent keeps its own
