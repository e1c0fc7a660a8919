"""subprocess: a CLIENT span and the metrics per child, its context in the child's environment."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import limelight_process
import pytest
import structlog.testing
from opentelemetry import baggage, trace
from opentelemetry.context import attach, detach
from opentelemetry.sdk.trace import ReadableSpan

from limelight.propagation import format_traceparent
from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[limelight_process.plugin])

PRINT_CONTEXT = 'printf "%s|%s|%s" "$TRACEPARENT" "$TRACESTATE" "$BAGGAGE"'


def _attrs(span: Any) -> dict[str, Any]:
    """A finished span's attributes (never ``None``)."""
    return dict(span.attributes or {})


def _traceparent(span: ReadableSpan | trace.Span) -> str:
    ctx = span.get_span_context()
    assert ctx is not None
    return format_traceparent(ctx.trace_id, ctx.span_id, ctx.trace_flags)


def _counts(telemetry: Harness, kind: str = "subprocess") -> tuple[float, float, float, float]:
    """started, completed, error, active."""
    return (
        telemetry.value("process_started_total", kind=kind),
        telemetry.value("process_terminated_total", kind=kind, result="completed"),
        telemetry.value("process_terminated_total", kind=kind, result="error"),
        telemetry.value("process_active", kind=kind),
    )


class TestSpan:
    """One CLIENT span per child, named after the executable, ended when it is reaped."""

    def test_a_completed_command(self, telemetry: Harness) -> None:
        process = subprocess.Popen(["true"])
        process.wait()
        span = telemetry.span("true", kind="client", status="unset")
        assert {
            "process.executable.name": "true",
            "process.pid": process.pid,
            "process.exit.code": 0,
        } == _attrs(span)
        assert span.parent is None  # no span was current: a root span, never nothing
        assert (1, 1, 0, 0) == _counts(telemetry)
        assert (
            1
            == telemetry.histogram(
                "process_duration_seconds", kind="subprocess", result="completed"
            ).count
        )

    def test_a_failing_command(self, telemetry: Harness) -> None:
        assert 3 == subprocess.call(["sh", "-c", "exit 3"])
        span = telemetry.span("sh", kind="client", status="error")
        assert (3, "3") == (_attrs(span)["process.exit.code"], _attrs(span)["error.type"])
        assert (1, 0, 1, 0) == _counts(telemetry)

    def test_child_of_the_current_span(self, telemetry: Harness) -> None:
        with telemetry.telemetry.tracer("t").start_as_current_span("job") as job:
            subprocess.check_output(["echo", "hi"])
        telemetry.span("echo", parent=job, trace_id=job.get_span_context().trace_id)

    def test_an_absolute_path_is_recorded(self, telemetry: Harness) -> None:
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
        span = telemetry.span("sh")
        assert "/bin/sh" == _attrs(span)["process.executable.path"]

    def test_the_shell_is_what_runs(self, telemetry: Harness) -> None:
        subprocess.run("true && true", shell=True, check=True)
        span = telemetry.span(kind="client")
        assert ("sh", "/bin/sh") == (
            span.name,
            _attrs(span)["process.executable.path"],
        )

    def test_executable_wins_over_the_first_argument(self, telemetry: Harness) -> None:
        subprocess.run(["renamed", "-c", "exit 0"], executable="/bin/sh", check=True)
        telemetry.span("sh", kind="client")

    def test_arguments_are_not_recorded_by_default(self, telemetry: Harness) -> None:
        subprocess.run(["echo", "--password=hunter2"], capture_output=True, check=True)
        assert "process.command_args" not in _attrs(telemetry.span("echo"))

    @pytest.mark.limelight(
        plugins=[limelight_process.plugin], env={"LIMELIGHT_PROCESS_COMMAND_ARGS": "true"}
    )
    def test_arguments_on_request(self, telemetry: Harness) -> None:
        subprocess.run(["echo", "a", "b"], capture_output=True, check=True)
        subprocess.run("echo c", shell=True, capture_output=True, check=True)
        assert ("echo", "a", "b") == _attrs(telemetry.span("echo"))["process.command_args"]
        assert ("/bin/sh", "-c", "echo c") == _attrs(telemetry.span("sh"))["process.command_args"]

    def test_an_iterator_of_arguments_is_read_once(self, telemetry: Harness) -> None:
        out = subprocess.run(  # type: ignore[call-overload]
            iter(["echo", "once"]), capture_output=True, text=True, check=True
        )
        assert "once\n" == out.stdout
        telemetry.span("echo")


class TestEnvironment:
    """The child gets the span's context in TRACEPARENT/TRACESTATE/BAGGAGE; nothing else changes."""

    def test_a_non_python_child_receives_the_header(self, telemetry: Harness) -> None:
        before = dict(os.environ)
        out = subprocess.run(
            ["sh", "-c", 'printf %s "$TRACEPARENT"'], capture_output=True, text=True, check=True
        ).stdout
        span = telemetry.span("sh")
        assert _traceparent(span) == out
        assert before == dict(os.environ)

    def test_the_callers_env_mapping_is_unchanged(self, telemetry: Harness) -> None:
        stale = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        env = {"PATH": os.environ["PATH"], "TRACEPARENT": stale, "TRACESTATE": "old=1"}
        given = dict(env)
        out = subprocess.run(
            ["sh", "-c", PRINT_CONTEXT], env=env, capture_output=True, text=True, check=True
        ).stdout
        assert given == env
        assert f"{_traceparent(telemetry.span('sh'))}||" == out

    def test_trace_state_and_baggage(self, telemetry: Harness) -> None:
        tracer = telemetry.telemetry.tracer("t")
        token = attach(baggage.set_baggage("tenant", "acme"))
        try:
            with tracer.start_as_current_span("job"):
                out = subprocess.run(
                    ["sh", "-c", PRINT_CONTEXT], capture_output=True, text=True, check=True
                ).stdout
        finally:
            detach(token)
        assert f"{_traceparent(telemetry.span('sh'))}||tenant=acme" == out

    def test_env_given_positionally(self, telemetry: Harness) -> None:
        env = {"PATH": os.environ["PATH"]}
        process = subprocess.Popen(
            ["sh", "-c", 'printf %s "$TRACEPARENT"'],
            -1,
            None,
            None,
            subprocess.PIPE,
            None,
            None,
            True,
            False,
            None,
            env,
        )
        out, _ = process.communicate()
        assert {"PATH": os.environ["PATH"]} == env
        assert _traceparent(telemetry.span("sh")).encode() == out

    def test_bytes_keys(self, telemetry: Harness) -> None:
        env: Any = {b"PATH": os.environ["PATH"].encode(), b"TRACEPARENT": b"stale"}
        out = subprocess.run(
            ["sh", "-c", 'printf %s "$TRACEPARENT"'], env=env, capture_output=True, check=True
        ).stdout
        assert _traceparent(telemetry.span("sh")).encode() == out

    def test_nothing_is_added_when_telemetry_is_off(self) -> None:
        limelight_process.instrument()
        env = {"PATH": os.environ["PATH"]}
        out = subprocess.run(
            ["sh", "-c", 'printf %s "${TRACEPARENT-unset}"'],
            env=env,
            capture_output=True,
            check=True,
        ).stdout
        assert b"unset" == out


CHILD = textwrap.dedent(
    """
    import limelight

    telemetry = limelight.start(entry_points=False, handle_signals=False)
    with telemetry.tracer("child").start_as_current_span("child") as span:
        ctx, parent = span.get_span_context(), span.parent
        print(f"{ctx.trace_id:032x} {parent.span_id:016x}")
    limelight.stop()
    """
)


class TestPythonChild:
    """A Python child that calls limelight.start() continues the trace under the CLIENT span."""

    def test_same_trace_parent_is_the_client_span(self, telemetry: Harness) -> None:
        out = subprocess.run(
            [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
        ).stdout.split()
        ctx = telemetry.span(kind="client").get_span_context()
        assert ctx is not None
        assert [f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"] == out


class TestActiveReturnsToZero:
    """process_active goes back to 0 however the child ends; started and terminated match."""

    def test_killed(self, telemetry: Harness) -> None:
        process = subprocess.Popen(["sleep", "30"])
        assert 1 == telemetry.value("process_active", kind="subprocess")
        process.kill()
        assert -9 == process.wait()
        span = telemetry.span("sleep", status="error")
        assert (-9, "SIGKILL") == (
            _attrs(span)["process.exit.code"],
            _attrs(span)["error.type"],
        )
        assert (1, 0, 1, 0) == _counts(telemetry)

    @pytest.mark.parametrize(
        ("command", "error"),
        [
            (["/nonexistent/command"], "FileNotFoundError"),
            (["no-such-command-anywhere"], "FileNotFoundError"),
        ],
    )
    def test_spawn_that_fails(self, telemetry: Harness, command: list[str], error: str) -> None:
        with pytest.raises(FileNotFoundError):
            subprocess.run(command, check=False)
        span = telemetry.span(kind="client", status="error")
        assert error == _attrs(span)["error.type"]
        assert "process.pid" not in _attrs(span)
        assert [error] == [_attrs(e)["exception.type"] for e in span.events]
        assert (1, 0, 1, 0) == _counts(telemetry)

    def test_permission_denied(self, telemetry: Harness, tmp_path: Path) -> None:
        script = tmp_path / "not-executable"
        script.write_text("#!/bin/sh\n")
        script.chmod(stat.S_IRUSR)
        with pytest.raises(PermissionError):
            subprocess.run([str(script)], check=False)
        assert "PermissionError" == _attrs(telemetry.span(kind="client"))["error.type"]
        assert (1, 0, 1, 0) == _counts(telemetry)

    def test_timeout(self, telemetry: Harness) -> None:
        with pytest.raises(subprocess.TimeoutExpired):
            subprocess.run(["sleep", "30"], timeout=0.2, check=False)
        assert "SIGKILL" == _attrs(telemetry.span("sleep"))["error.type"]
        assert (1, 0, 1, 0) == _counts(telemetry)

    def test_waiting_with_a_timeout_leaves_the_child_active(self, telemetry: Harness) -> None:
        process = subprocess.Popen(["sleep", "30"])
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(0.05)
        assert 1 == telemetry.value("process_active", kind="subprocess")  # still running
        process.terminate()
        process.wait()
        assert (1, 0, 1, 0) == _counts(telemetry)
        assert "SIGTERM" == _attrs(telemetry.span("sleep"))["error.type"]

    def test_a_popen_never_waited_on_counts_when_collected(self, telemetry: Harness) -> None:
        process = subprocess.Popen(["true"])
        # the child has exited, its status not collected (WNOWAIT leaves it a zombie)
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        assert 1 == telemetry.value("process_active", kind="subprocess")
        with pytest.warns(ResourceWarning):  # collected at once: nothing refers to it
            del process
        assert (1, 1, 0, 0) == _counts(telemetry)

    def test_a_running_child_collected_counts_when_reaped(self, telemetry: Harness) -> None:
        process = subprocess.Popen(["sleep", "0.2"])
        pid = process.pid
        with pytest.warns(ResourceWarning):  # collected at once: nothing refers to it
            del process
        assert 1 == telemetry.value("process_active", kind="subprocess")
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        subprocess.run(["true"], check=True)  # every spawn reaps the children left behind first
        assert (2, 2, 0, 0) == _counts(telemetry)

    def test_poll_until_done(self, telemetry: Harness) -> None:
        process = subprocess.Popen(["true"])
        while process.poll() is None:
            time.sleep(0.01)
        assert (1, 1, 0, 0) == _counts(telemetry)


class TestAsyncio:
    """asyncio's subprocesses go through Popen; its child watcher's status ends the span."""

    def test_exec_and_shell(self, telemetry: Harness) -> None:
        async def main() -> tuple[bytes, int]:
            with telemetry.telemetry.tracer("t").start_as_current_span("job"):
                child = await asyncio.create_subprocess_exec(
                    "sh", "-c", 'printf %s "$TRACEPARENT"', stdout=asyncio.subprocess.PIPE
                )
                out, _ = await child.communicate()
                shell = await asyncio.create_subprocess_shell("exit 4")
                return out, await shell.wait()

        out, code = asyncio.run(main())
        job = telemetry.span("job")
        exec_span, shell_span = sorted(
            telemetry.find_spans("sh", parent=job), key=lambda s: s.start_time or 0
        )
        assert _traceparent(exec_span).encode() == out
        assert (4, 4, "4") == (
            code,
            _attrs(shell_span)["process.exit.code"],
            _attrs(shell_span)["error.type"],
        )
        assert (2, 1, 1, 0) == _counts(telemetry)

    def test_killed(self, telemetry: Harness) -> None:
        async def main() -> int:
            child = await asyncio.create_subprocess_exec("sleep", "30")
            child.kill()
            return await child.wait()

        assert -9 == asyncio.run(main())
        assert "SIGKILL" == _attrs(telemetry.span("sleep"))["error.type"]
        assert (1, 0, 1, 0) == _counts(telemetry)


class TestRobustness:
    """A failure of the instrumentation itself never reaches the spawn."""

    @pytest.mark.parametrize(
        ("injection", "env"),
        [("inject_span", None), ("inject_environ", {"PATH": os.environ.get("PATH", "")})],
    )
    def test_bookkeeping_failure(
        self,
        telemetry: Harness,
        monkeypatch: pytest.MonkeyPatch,
        injection: str,
        env: dict[str, str] | None,
    ) -> None:
        from limelight_process import _subprocess

        def broken(*args: object, **kwargs: object) -> dict[str, str]:
            raise RuntimeError("broken propagator")

        # without env= the carrier is injected alone (inject_span), else into a copy of env=
        monkeypatch.setattr(_subprocess, "inject_environ", broken)
        if injection == "inject_span":
            monkeypatch.setattr(_subprocess, "inject_span", broken)
        with structlog.testing.capture_logs() as logs:
            assert b"ok" == subprocess.check_output(["echo", "-n", "ok"], env=env)
        assert any("broken propagator" in str(e.get("error")) for e in logs)
        assert 0 == telemetry.value("process_active", kind="subprocess")
