"""`limelight demo` as a user runs it: the report, the modes, a clean stop, OTLP on request."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import time

import pytest
from limelight_demo import TRAFFIC, demo_environment
from limelight_testsupport import console_script, free_port, wait_for_port
from limelight_testsupport.otlp import otlp_receiver


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", **extra}


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("limelight"), "demo", *args],
        env=_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def _tree(stdout: str) -> list[tuple[str, str]]:
    """(tree prefix + span name, kind) of each waterfall row."""
    rows = []
    for line in stdout.splitlines():
        match = re.match(
            r"^([│├└─ ]*)(\S.*?)\s{2,}(SERVER|INTERNAL|CLIENT|PRODUCER|CONSUMER)\s", line
        )
        if match:
            rows.append((match.group(1) + match.group(2), match.group(3)))
    return rows


@pytest.fixture(scope="class")
def once() -> subprocess.CompletedProcess[str]:
    """One run of `limelight demo --once`, read by every test of :class:`TestOnce`."""
    return _demo("--once")


class TestOnce:
    """`limelight demo --once` sends the burst, shows one trace and every surface, and exits."""

    def test_report(self, once: subprocess.CompletedProcess[str]) -> None:
        assert 0 == once.returncode, once.stderr
        out = once.stdout
        answers = "29 answered 200, 1 answered 404, 1 answered 500"
        assert f"sent {len(TRAFFIC)} requests: {answers}" in out
        # one trace across the HTTP hop, the queue hop and the process boundary: the
        # receipt printer's span comes from the child, over OTLP
        assert [
            ("POST /orders/{order_id}/pay", "SERVER"),
            ("├─ shop.load_order", "INTERNAL"),
            ("│  ├─ get", "CLIENT"),
            ("│  ├─ SELECT orders", "CLIENT"),
            ("│  └─ set", "CLIENT"),
            ("├─ shop.price_order", "INTERNAL"),
            ("│  └─ GET", "CLIENT"),
            ("│     └─ GET /prices/{sku}", "SERVER"),
            ("│        └─ SELECT products", "CLIENT"),
            ("├─ shop.charge", "INTERNAL"),
            ("├─ send shop.payment", "CONSUMER"),
            ("└─ publish orders.paid", "PRODUCER"),
            ("   └─ process orders.paid", "CONSUMER"),
            ("      └─ python", "CLIENT"),
            ("         └─ receipt.render", "INTERNAL"),
        ] == _tree(out)
        # the shop's log lines of that request, each stamped with the shown trace's id
        # (the one in the response's traceparent header) and the id of a span of it
        shown = re.search(r"^trace id ([0-9a-f]{32}), as in the response's traceparent", out, re.M)
        assert shown is not None
        lines = re.findall(
            r"^(\w+)\s+limelight_demo\.shop: (.+) trace_id=(\w*) span_id=(\w*)  ← (.+)$", out, re.M
        )
        assert [
            ("INFO", "order 5 loaded from the database", "shop.load_order"),
            ("INFO", "order 5 charged 36.00, payment paid-5", "POST /orders/{order_id}/pay"),
            ("INFO", "receipt printed for order 5", "process orders.paid"),
        ] == [(level, message, span) for level, message, _, _, span in lines]
        assert {shown.group(1)} == {trace_id for _, _, trace_id, _, _ in lines}
        assert all(re.fullmatch(r"[0-9a-f]{16}", span_id) for _, _, _, span_id, _ in lines)
        assert 3 == len({span_id for _, _, _, span_id, _ in lines})
        duration = r"\s+[\d.]+ [µm]?s\s+"
        assert re.search(rf"^POST /orders/\{{order_id\}}/pay\s+SERVER{duration}-", out, re.M)
        assert re.search(r"publish orders\.paid .* memory queue 'orders\.paid', message 1", out)
        assert re.search(r"└─ python .* pid \d+, exit code 0", out)
        assert re.search(r"send shop\.payment .* blinker event 'shop\.payment'", out)
        assert re.search(r"└─ receipt\.render .* in limelight-demo-receipts", out)
        for surface, series in [
            ("HTTP server", 'http_requests_total{method="GET", route="/orders/{order_id}",'),
            ("HTTP client", 'http_client_requests_total{method="GET", host="127.0.0.1"'),
            ("functions", 'function_calls_total{function="shop.charge", result="error"}'),
            ("KV store", 'kv_ops_total{namespace="orders", op="get", result="not_found"}'),
            ("SQL", 'sql_ops_total{db_system="sqlite", op="query", result="ok"}'),
            ("queue", 'queue_messages_total{queue="orders.paid", result="ack"}'),
            ("processes", 'process_terminated_total{kind="subprocess", result="completed"}'),
            ("event bus", 'eventbus_subscribers_active{topic="shop.payment"}'),
            ("logs", 'log_emissions_total{level="error"}'),
        ]:
            assert re.search(rf"^{surface}\s", out, re.M), surface
            assert series in out
        assert re.search(
            r'http_requests_total\{method="POST", route="/orders/\{order_id\}/pay", '
            r'status_code="500"\}\s+1\s',
            out,
        )
        # two orders paid: two events published and handled, two printers run
        assert re.search(r'queue_published_total\{queue="orders.paid", result="ok"\}\s+2\s', out)
        assert re.search(r'queue_messages_total\{queue="orders.paid", result="ack"\}\s+2\s', out)
        assert re.search(r'process_started_total\{kind="subprocess"\}\s+2\s', out)
        assert re.search(r'http_requests_in_flight\{method="GET"\}\s+0\s', out)
        assert re.search(r'queue_in_flight\{queue="orders.paid"\}\s+0\s', out)
        assert re.search(r'process_active\{kind="subprocess"\}\s+0\s', out)
        # the shop's lines by level: an info line per order loaded, charged and receipted,
        # the unknown order's warning and the failed payment's error
        assert re.search(r'log_emissions_total\{level="info"\}\s+34\s', out)
        assert re.search(r'log_emissions_total\{level="warning"\}\s+1\s', out)
        assert re.search(r'log_emissions_total\{level="error"\}\s+1\s', out)
        # the shop's one receiver of the payment signal, still connected while it serves
        assert re.search(r'eventbus_subscribers_active\{topic="shop.payment"\}\s+1\s', out)
        assert out.rstrip().endswith("stopped; telemetry flushed")

    def test_without_an_otlp_endpoint_the_exporter_stays_off_and_quiet(
        self, once: subprocess.CompletedProcess[str]
    ) -> None:
        assert 0 == once.returncode
        plugins = re.search(r"^plugins: (.*)$", once.stdout, re.M)
        assert plugins is not None
        assert "otlp" not in plugins.group(1).split(", ")
        assert "" == once.stderr


class TestArguments:
    """The arguments after `limelight demo` reach the demo unchanged."""

    def test_help_lists_the_modes(self) -> None:
        proc = _demo("--help")
        assert 0 == proc.returncode
        assert "--serve" in proc.stdout
        assert "--once" in proc.stdout

    def test_unknown_argument_is_an_error(self) -> None:
        proc = _demo("--sideways")
        assert 2 == proc.returncode
        assert "unrecognized arguments: --sideways" in proc.stderr

    def test_port_in_use_is_reported(self) -> None:
        port = free_port()
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", port))
            busy.listen()
            proc = _demo("--once", "--port", str(port))
        assert 1 == proc.returncode
        assert f"cannot start the demo service on port {port}" in proc.stdout


class TestStop:
    """Ctrl-C and SIGTERM stop a serving demo cleanly: exit status 0, telemetry flushed."""

    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
    def test_signal_flushes_what_was_recorded(self, signum: int) -> None:
        port = free_port()
        with otlp_receiver() as receiver:
            # batches and metric pushes far in the future: only the stop sends them
            env = _env(
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_BSP_SCHEDULE_DELAY="600000",
                OTEL_METRIC_EXPORT_INTERVAL="600000",
            )
            proc = subprocess.Popen(
                [console_script("limelight"), "demo", "--serve", "--port", str(port)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
            try:
                assert wait_for_port("127.0.0.1", port, 30), "the demo did not listen"
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/orders/3")
                assert 200 == connection.getresponse().status
                connection.close()
                time.sleep(0.2)
                assert [] == [s.name for s in receiver.spans()]
                proc.send_signal(signum)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            assert 0 == proc.returncode, err
            assert "stopped; telemetry flushed" in out
            names = {s.name for s in receiver.wait_for_spans(9)}
            assert {"GET /orders/{order_id}", "GET /prices/{sku}", "shop.price_order"} <= names
            requests = receiver.wait_for_metric("http_requests_total")
            assert requests is not None
            assert 2 == sum(p.as_double for p in requests.sum.data_points)


class TestEnvironment:
    """The demo's defaults are what a user would set, and what the user set wins."""

    INSTALLED = ("http", "otlp", "console", "sql")

    def test_defaults(self) -> None:
        env = demo_environment({}, self.INSTALLED)
        assert "limelight-demo" == env["OTEL_SERVICE_NAME"]
        assert "false" == env["LIMELIGHT_PROMETHEUS_SERVER"]
        assert "true" == env["LIMELIGHT_EVENTBUS_SPANS"]
        assert "otlp,console" == env["LIMELIGHT_DISABLED_PLUGINS"]

    def test_an_otlp_endpoint_keeps_the_exporter(self) -> None:
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            env = demo_environment({name: "http://collector:4318"}, self.INSTALLED)
            assert "console" == env["LIMELIGHT_DISABLED_PLUGINS"]

    def test_console_stays_when_selected(self) -> None:
        env = demo_environment({"OTEL_TRACES_EXPORTER": "console"}, self.INSTALLED)
        assert "otlp" == env["LIMELIGHT_DISABLED_PLUGINS"]

    def test_only_installed_plugins_are_disabled(self) -> None:
        # naming a plugin that is not installed would be reported as a mistake
        env = demo_environment({}, ("http", "otlp"))
        assert "otlp" == env["LIMELIGHT_DISABLED_PLUGINS"]
        assert "LIMELIGHT_DISABLED_PLUGINS" not in demo_environment({}, ("http",))

    def test_user_settings_win(self) -> None:
        env = demo_environment(
            {
                "OTEL_SERVICE_NAME": "tea",
                "LIMELIGHT_PROMETHEUS_SERVER": "true",
                "LIMELIGHT_DISABLED_PLUGINS": "sql, console",
            },
            self.INSTALLED,
        )
        assert "tea" == env["OTEL_SERVICE_NAME"]
        assert "true" == env["LIMELIGHT_PROMETHEUS_SERVER"]
        assert "sql,console,otlp" == env["LIMELIGHT_DISABLED_PLUGINS"]

    def test_the_process_environment_is_not_changed(self) -> None:
        before = dict(os.environ)
        demo_environment(os.environ)
        assert before == dict(os.environ)
