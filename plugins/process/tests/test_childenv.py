"""The child's environment without env=: os.environ at the spawn plus the carrier, whichever way
subprocess spawns, from any thread, and the plain explicit copy where the seam does not fit."""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Any

import limelight_process
import pytest
import structlog.testing
from limelight_process import _childenv

from limelight.propagation import format_traceparent
from limelight.testing import Harness

pytestmark = [
    pytest.mark.limelight(plugins=[limelight_process.plugin]),
    pytest.mark.skipif(os.name != "posix", reason="the seam is POSIX's"),
]

ENV = "/usr/bin/env"
PROPAGATED = {"TRACEPARENT", "TRACESTATE", "BAGGAGE"}


def _child_env(**kwargs: Any) -> dict[str, str]:
    """The environment a real child receives (``env -0``)."""
    out = subprocess.run([ENV, "-0"], capture_output=True, check=True, **kwargs).stdout
    return dict(line.split("=", 1) for line in os.fsdecode(out).split("\0") if line)


def _traceparent(span: Any) -> str:
    ctx = span.get_span_context()
    return format_traceparent(ctx.trace_id, ctx.span_id, ctx.trace_flags)


def _expected(traceparent: str) -> dict[str, str]:
    """os.environ now, the propagators' variables replaced by the span's."""
    return {
        **{k: v for k, v in os.environ.items() if k not in PROPAGATED},
        "TRACEPARENT": traceparent,
    }


@pytest.fixture
def spawns(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many spawns went through os.posix_spawn and through subprocess._fork_exec
    (counted around what subprocess calls, so a test knows which way it took)."""
    counts = {"posix_spawn": 0, "fork_exec": 0}
    real_spawn = os.posix_spawn
    seam_fork_exec = subprocess._fork_exec  # type: ignore[attr-defined]

    def posix_spawn(*args: Any, **kwargs: Any) -> int:
        counts["posix_spawn"] += 1
        return real_spawn(*args, **kwargs)

    def fork_exec(*args: Any) -> int:
        counts["fork_exec"] += 1
        return seam_fork_exec(*args)  # type: ignore[no-any-return]

    monkeypatch.setattr(os, "posix_spawn", posix_spawn)
    monkeypatch.setattr(subprocess, "_fork_exec", fork_exec)
    return counts


def _active() -> bool:
    return _childenv.seam.active


class TestSeam:
    """On this CPython the seam is installed, and the child gets exactly what an explicit
    copy of os.environ carrying the context would give it."""

    def test_installed_against_the_real_subprocess(self, telemetry: Harness) -> None:
        assert _childenv.seam.active, _childenv.seam.reason
        assert _childenv.__name__ == subprocess._fork_exec.__module__  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("way", "kwargs"),
        [
            ("fork_exec", {"cwd": "/"}),  # a cwd keeps subprocess off posix_spawn
            ("posix_spawn", {"close_fds": False}),
        ],
    )
    def test_os_environ_at_the_spawn(
        self,
        telemetry: Harness,
        monkeypatch: pytest.MonkeyPatch,
        spawns: dict[str, int],
        way: str,
        kwargs: dict[str, Any],
    ) -> None:
        if way == "posix_spawn" and not subprocess._USE_POSIX_SPAWN:
            pytest.skip("subprocess does not use posix_spawn here")
        stale = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        monkeypatch.setenv("TRACEPARENT", stale)  # inherited from further up: replaced
        monkeypatch.setenv("LIMELIGHT_TEST_FIRST", "1")
        first = _child_env(**kwargs)
        assert _expected(_traceparent(telemetry.spans()[-1])) == first
        # set, changed and deleted since the last spawn: the next child sees it
        monkeypatch.setenv("LIMELIGHT_TEST_SECOND", "é ünïcode")
        monkeypatch.setenv("LIMELIGHT_TEST_FIRST", "2")
        monkeypatch.delenv("HOME", raising=False)
        second = _child_env(**kwargs)
        assert _expected(_traceparent(telemetry.spans()[-1])) == second
        assert "2" == second["LIMELIGHT_TEST_FIRST"]
        assert "é ünïcode" == second["LIMELIGHT_TEST_SECOND"]
        assert "HOME" not in second
        assert 2 == spawns[way]
        assert stale == os.environ["TRACEPARENT"]  # os.environ itself is unchanged

    def test_a_value_that_is_not_utf8(self, telemetry: Harness) -> None:
        raw = b"\xff\xfe-not-utf8"
        os.environb[b"LIMELIGHT_TEST_RAW"] = raw
        try:
            out = subprocess.run(
                ["sh", "-c", 'printf %s "$LIMELIGHT_TEST_RAW"'], capture_output=True, check=True
            ).stdout
        finally:
            del os.environb[b"LIMELIGHT_TEST_RAW"]
        assert raw == out

    def test_concurrent_spawns_each_get_their_own_span(self, telemetry: Harness) -> None:
        tracer = telemetry.telemetry.tracer("t")
        received: list[tuple[str, str]] = []  # (the child's TRACEPARENT, its thread's trace id)
        errors: list[BaseException] = []
        barrier = threading.Barrier(8)

        def spawn(i: int) -> None:
            try:
                barrier.wait()
                with tracer.start_as_current_span(f"job-{i}") as job:
                    trace_id = format(job.get_span_context().trace_id, "032x")
                    for _ in range(5):
                        out = subprocess.run(
                            ["sh", "-c", 'printf %s "$TRACEPARENT"'],
                            capture_output=True,
                            text=True,
                            check=True,
                        ).stdout
                        received.append((out, trace_id))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=spawn, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [] == errors
        spans = {_traceparent(s) for s in telemetry.spans() if s.name == "sh"}
        assert 40 == len(spans)
        assert spans == {out for out, _ in received}
        assert all(out.split("-")[1] == trace_id for out, trace_id in received)

    def test_a_popen_subclass_spawning_its_own_way_gets_an_explicit_copy(
        self, telemetry: Harness
    ) -> None:
        class Own(subprocess.Popen[bytes]):
            def _execute_child(self, *args: Any) -> None:
                self.given_env = args[6]
                super()._execute_child(*args)  # type: ignore[misc]

        process = Own(["sh", "-c", 'printf %s "$TRACEPARENT"'], stdout=subprocess.PIPE)
        out, _ = process.communicate()
        assert _traceparent(telemetry.span("sh")).encode() == out
        assert process.given_env is not None  # the plain path: env= passed explicitly
        assert _childenv.seam.active


class TestFallback:
    """Where subprocess is not what the seam expects, or a spawn bypasses it, the child
    still gets the carrier, through an explicit env= copy."""

    def test_an_unexpected_fork_exec_leaves_the_seam_out(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        limelight_process.uninstrument()
        calls: list[int] = []
        real = subprocess._fork_exec  # type: ignore[attr-defined]

        def other(*args: Any) -> int:  # someone else's wrapper, or another signature
            calls.append(len(args))
            return real(*args)  # type: ignore[no-any-return]

        monkeypatch.setattr(subprocess, "_fork_exec", other)
        with Harness(plugins=[limelight_process.plugin]) as harness:
            assert not _childenv.seam.active
            assert "not _posixsubprocess.fork_exec" in _childenv.seam.reason
            assert subprocess._fork_exec is other  # type: ignore[attr-defined]
            env = _child_env(cwd="/")
            assert _expected(_traceparent(harness.span("env"))) == env
        assert 1 == len(calls)

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ("no_fork_exec", "not _posixsubprocess.fork_exec"),
            ("execute_child", "does not call _fork_exec"),
            ("posix_spawn", "does not take env third"),
        ],
    )
    def test_check_against_changed_internals(
        self, monkeypatch: pytest.MonkeyPatch, change: str, reason: str
    ) -> None:
        class Module:
            _fork_exec = subprocess._fork_exec  # type: ignore[attr-defined]

            class Popen(subprocess.Popen[bytes]):
                pass

        Module.Popen._execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
        Module.Popen._posix_spawn = subprocess.Popen._posix_spawn  # type: ignore[attr-defined]
        assert _childenv.check() is None  # the real subprocess, not instrumented
        assert _childenv.check(Module) is None
        if change == "no_fork_exec":
            del Module._fork_exec
        elif change == "execute_child":

            def _execute_child(self: Any, *args: Any) -> None:
                os.execv(args[0], args)

            Module.Popen._execute_child = _execute_child  # type: ignore[attr-defined]
        else:

            def _posix_spawn(self: Any, args: Any, environment: Any, *rest: Any) -> None:
                pass

            Module.Popen._posix_spawn = _posix_spawn  # type: ignore[attr-defined]
        assert reason in (_childenv.check(Module) or "")

    def test_a_spawn_the_seam_missed_turns_it_off(
        self, telemetry: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import _posixsubprocess

        monkeypatch.delenv("TRACEPARENT", raising=False)
        assert _childenv.seam.active
        # fork_exec reached without the wrapper: this child is made without the carrier
        monkeypatch.setattr(subprocess, "_fork_exec", _posixsubprocess.fork_exec)
        with structlog.testing.capture_logs() as logs:
            missed = _child_env(cwd="/")
        assert "TRACEPARENT" not in missed
        assert not _active()
        assert any("neither fork_exec nor _posix_spawn" in str(e.get("error")) for e in logs)
        # from then on, the plain path: the explicit copy carries it
        after = _child_env(cwd="/")
        assert _expected(_traceparent(telemetry.spans()[-1])) == after

    def test_a_failure_building_the_lines_never_reaches_the_spawn(
        self, telemetry: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*args: Any) -> list[bytes]:
            raise RuntimeError("broken lines")

        monkeypatch.setattr(_childenv, "child_lines", broken)
        with structlog.testing.capture_logs() as logs:
            assert b"ok" == subprocess.check_output(["echo", "-n", "ok"], cwd="/")
        assert any("broken lines" in str(e.get("error")) for e in logs)
        assert 0 == telemetry.value("process_active", kind="subprocess")
