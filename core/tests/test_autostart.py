"""Telemetry started with the interpreter: ``limelight run``'s environment, the
``sitecustomize`` chain, ``LIMELIGHT_AUTOSTART``, and forked children."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from limelight import _autostart, _run

WAIT = 60.0


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "LIMELIGHT_", "PROMETHEUS_")) and k != "PYTHONPATH"
    }
    env.update(
        {
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "LIMELIGHT_DISABLED_PLUGINS": "faulty-import,faulty-hook",
        }
    )
    env.update(extra)
    return env


def _python(
    code: str, env: Mapping[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def _wrapped(**extra: str) -> dict[str, str]:
    """The environment ``limelight run`` gives its command (no options)."""
    args = _run.parser().parse_args(["--", "python"])
    args.command = ["python"]
    return _run.build_environment(args, _env(**extra))


REPORT = """
import json, os, sys
import limelight
t = limelight.current()
print(json.dumps({
    "enabled": t.enabled,
    "service": t.config.service_name,
    "auto": t.config.environ.get("LIMELIGHT_AUTO_INSTRUMENT"),
    "server": t.config.environ.get("LIMELIGHT_PROMETHEUS_SERVER"),
    "bootstrap_on_path": any("_bootstrap" in p for p in sys.path),
}))
"""


class TestRunEnvironment:
    """What ``limelight run`` hands its command."""

    def _args(self, *argv: str) -> argparse.Namespace:
        args = _run.parser().parse_args(list(argv))
        args.command = [a for a in args.command if a != "--"]
        return args

    def test_options_set_their_documented_variables(self) -> None:
        args = self._args(
            "--service-name",
            "shop",
            "--exporter",
            "otlp",
            "--endpoint",
            "http://collector:4318",
            "--no-auto-instrument",
            "--",
            "python",
            "app.py",
        )
        env = _run.build_environment(args, {"OTEL_SERVICE_NAME": "old", "PYTHONPATH": "/mine"})
        assert "shop" == env["OTEL_SERVICE_NAME"]  # the option wins over the environment
        assert ("otlp", "otlp") == (env["OTEL_TRACES_EXPORTER"], env["OTEL_METRICS_EXPORTER"])
        assert "http://collector:4318" == env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert "false" == env["LIMELIGHT_AUTO_INSTRUMENT"]
        assert [_autostart.bootstrap_dir(), "/mine"] == env["PYTHONPATH"].split(os.pathsep)
        assert ["python", "app.py"] == args.command

    def test_every_option_names_a_variable_limelight_documents(self) -> None:
        from limelight._catalog import declared_variables

        documented = {var.name for _owner, var in declared_variables()}
        named = {v for _opt, variables, _h in _run.OPTIONS for v in variables.split(",")}
        try:
            import limelight_prometheus  # noqa: F401 - declares the /metrics server's variables
        except ImportError:
            named -= {"OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT"}
        assert set() == named - documented
        assert {v.name for v in _autostart.RUN_VARIABLES} <= documented

    def test_an_inherited_first_process_mark_is_dropped(self) -> None:
        env = _run.build_environment(self._args("--", "python"), {"LIMELIGHT_AUTOSTART_PID": "1"})
        assert "LIMELIGHT_AUTOSTART_PID" not in env

    @pytest.mark.parametrize(
        ("command", "environ", "expected"),
        [
            (["gunicorn", "app:app"], {}, True),
            (["/venv/bin/gunicorn", "-w", "2", "app:app"], {}, True),
            (["uvicorn", "app:app", "--workers", "2"], {}, True),
            (["uvicorn", "app:app", "--workers=4"], {}, True),
            (["python3", "-m", "uvicorn", "app:app", "--workers", "2"], {}, True),
            (["uvicorn", "app:app"], {"WEB_CONCURRENCY": "3"}, True),
            (["uvicorn", "app:app", "--workers", "1"], {}, False),
            (["uvicorn", "app:app"], {}, False),
            (["python", "app.py"], {}, False),
        ],
    )
    def test_pre_forking_servers_are_recognised(
        self, command: list[str], environ: dict[str, str], expected: bool
    ) -> None:
        assert expected == _run.uses_workers(command, environ)

    def test_multiprocess_mode_gets_a_fresh_or_emptied_directory(self, tmp_path: Path) -> None:
        env = _run.build_environment(self._args("--", "gunicorn", "app:app"), {})
        made = Path(env["PROMETHEUS_MULTIPROC_DIR"])
        try:
            assert made.is_dir()
            assert [] == list(made.iterdir())
            assert str(made) == env[_autostart.RUN_TEMP_DIR]  # removed when the command exits
        finally:
            made.rmdir()
        mine = tmp_path / "prometheus"
        mine.mkdir()
        (mine / "counter_123.db").write_bytes(b"stale")
        (mine / "notes.txt").write_text("kept")
        env = _run.build_environment(
            self._args("--multiprocess", "--", "python", "app.py"),
            {"PROMETHEUS_MULTIPROC_DIR": str(mine)},
        )
        assert ["notes.txt"] == [p.name for p in mine.iterdir()]
        assert _autostart.RUN_TEMP_DIR not in env  # the user's directory stays
        env = _run.build_environment(self._args("--no-multiprocess", "--", "gunicorn", "a:a"), {})
        assert "PROMETHEUS_MULTIPROC_DIR" not in env


class TestAutostart:
    """The child interpreter starts telemetry before the application's code runs."""

    def test_the_sitecustomize_starts_telemetry_off_the_applications_path(self) -> None:
        done = _python(REPORT, _wrapped(OTEL_SERVICE_NAME="shop"))
        assert 0 == done.returncode, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        assert report["enabled"]
        assert "shop" == report["service"]
        assert "true" == report["auto"]  # every surface instruments on import
        assert not report["bootstrap_on_path"]

    def test_the_environments_own_sitecustomize_still_runs_and_fails_as_usual(
        self, tmp_path: Path
    ) -> None:
        theirs = tmp_path / "site"
        theirs.mkdir()
        (theirs / "sitecustomize.py").write_text(
            "import os\nos.environ['THEIRS'] = 'ran'\nprint('their sitecustomize', flush=True)\n"
        )
        env = _wrapped()
        env["PYTHONPATH"] += os.pathsep + str(theirs)
        code = "import os, sitecustomize, limelight; print(os.environ.get('THEIRS'), "
        code += "sitecustomize.__file__, limelight.current().enabled)"
        done = _python(code, env)
        assert 0 == done.returncode, done.stderr
        assert ["their sitecustomize", f"ran {theirs / 'sitecustomize.py'} True"] == (
            done.stdout.splitlines()
        )
        (theirs / "sitecustomize.py").write_text("raise RuntimeError('theirs is broken')\n")
        bare = _python("print('app')", {**_env(), "PYTHONPATH": str(theirs)})
        wrapped = _python("import limelight; print('app', limelight.current().enabled)", env)
        assert "Error in sitecustomize" in bare.stderr
        assert bare.stderr == wrapped.stderr  # Python reports it, as without limelight
        assert "app True" == wrapped.stdout.strip()

    def test_limelight_autostart_starts_without_the_wrapper(self) -> None:
        on = _python(REPORT, _env(LIMELIGHT_AUTOSTART="true"))
        assert 0 == on.returncode, on.stderr
        assert json.loads(on.stdout)["enabled"]
        off = _python(REPORT, _env(LIMELIGHT_AUTOSTART="false"))
        assert not json.loads(off.stdout)["enabled"]
        bad = _python(REPORT, _env(LIMELIGHT_AUTOSTART="maybe"))
        assert not json.loads(bad.stdout)["enabled"]
        assert 1 == bad.stderr.count("LIMELIGHT_AUTOSTART")  # reported once, naming it

    def test_a_failed_start_is_reported_once_and_the_program_runs(self) -> None:
        env = _wrapped(LIMELIGHT_STRICT="true", LIMELIGHT_DISABLED_PLUGINS="faulty-import")
        done = _python("import limelight; print('ran', limelight.current().enabled)", env)
        assert 0 == done.returncode
        assert "ran False" == done.stdout.strip()
        assert 1 == done.stderr.count(_autostart_failure())
        assert "faulty-hook refuses to start" in done.stderr

    def test_only_the_first_process_serves_metrics(self) -> None:
        code = REPORT + textwrap.dedent(
            """
            import subprocess
            env = dict(os.environ)
            subprocess.run([sys.executable, "-c", sys.argv[1]], env=env, check=True)
            """
        )
        done = _python(code, _wrapped(PROMETHEUS_MULTIPROC_DIR="/tmp"), REPORT)
        assert 0 == done.returncode, done.stderr
        first, child = (json.loads(line) for line in done.stdout.splitlines())
        assert ("true", "false") == (first["server"], child["server"])
        assert first["enabled"] and child["enabled"]
        done = _python(
            REPORT, _wrapped(PROMETHEUS_MULTIPROC_DIR="/tmp", LIMELIGHT_PROMETHEUS_SERVER="false")
        )
        assert "false" == json.loads(done.stdout)["server"]  # what the user set stays


FORK = """
import json, os, subprocess, sys
import limelight

parent = limelight.current()

def state():
    t = limelight.current()
    return {
        "pid": os.getpid(),
        "own": t is not parent,
        "enabled": t.enabled,
        "resource_pid": t.resource.attributes.get("process.pid"),
        "instance": t.resource.attributes.get("service.instance.id"),
    }

out = sys.argv[1]
pid = os.fork()
if pid == 0:
    with open(out, "a") as f:
        f.write(json.dumps(state()) + "\\n")
    os._exit(0)
os.waitpid(pid, 0)

def preexec():
    with open(out, "a") as f:
        f.write(json.dumps({"exec": limelight.current() is parent}) + "\\n")

subprocess.run([sys.executable, "-c", "pass"], preexec_fn=preexec, check=True)
with open(out, "a") as f:
    f.write(json.dumps(state()) + "\\n")
"""


class TestForkedChildren:
    """A child forked from an auto-started process starts its own telemetry."""

    def test_a_forked_child_has_its_own_telemetry_and_resource(self, tmp_path: Path) -> None:
        out = tmp_path / "states.jsonl"
        done = _python(FORK, _wrapped(), str(out))
        assert 0 == done.returncode, done.stderr
        child, exec_child, parent = (json.loads(line) for line in out.read_text().splitlines())
        assert child["own"] and child["enabled"]
        assert child["pid"] == child["resource_pid"]
        assert child["instance"] != parent["instance"]
        assert not parent["own"]
        assert parent["pid"] == parent["resource_pid"]
        # a fork about to run another program (subprocess's preexec_fn) starts nothing
        assert exec_child["exec"]


def _autostart_failure() -> str:
    return "limelight could not start telemetry; the application runs without it"
