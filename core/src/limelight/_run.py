"""``limelight run [options] -- <command>``: telemetry for a command, no code change.

The options are environment variables of the documented configuration
(``--service-name`` is ``OTEL_SERVICE_NAME``, ...), set for the command and
winning over what the environment holds. limelight's ``sitecustomize``
directory goes first on ``PYTHONPATH``, so every Python interpreter the
command starts (the command itself, a server's workers, a script's children)
starts telemetry before the application's code runs (see
:mod:`limelight._autostart`). The command then *replaces* this process
(``exec``): its process id, exit code and signals are the command's own,
exactly as without limelight.

Pre-forking servers (``gunicorn``, ``uvicorn --workers N`` with N > 1) run
with prometheus_client's multiprocess mode, as the Prometheus plugin's page
describes: ``PROMETHEUS_MULTIPROC_DIR`` is made (a fresh temporary directory
when unset) and emptied of prometheus_client's files, and the first process
serves the aggregate of every worker (a temporary directory made here is
removed when the command's process exits). ``--multiprocess`` and
``--no-multiprocess`` decide for other commands.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._bootpaths import RUN_TEMP_DIR, bootstrap_dir

# names only: the wrapper imports nothing but the standard library (see limelight._main);
# limelight._autostart declares these variables and the child reads them
_AUTO_INSTRUMENT = "LIMELIGHT_AUTO_INSTRUMENT"
_AUTOSTART_PID = "LIMELIGHT_AUTOSTART_PID"

__all__ = [
    "OPTIONS",
    "RUN_TEMP_DIR",
    "bootstrap_dir",
    "build_environment",
    "main",
    "parser",
    "uses_workers",
]

OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--service-name", "OTEL_SERVICE_NAME", "service.name of every span and metric"),
    ("--resource-attributes", "OTEL_RESOURCE_ATTRIBUTES", "key=value,... resource attributes"),
    (
        "--exporter",
        "OTEL_TRACES_EXPORTER,OTEL_METRICS_EXPORTER",
        "exporters for both signals (otlp, prometheus, console, none, ...)",
    ),
    ("--traces-exporter", "OTEL_TRACES_EXPORTER", "span exporters"),
    ("--metrics-exporter", "OTEL_METRICS_EXPORTER", "metric exporters"),
    ("--endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP endpoint (http://host:4318)"),
    ("--protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTLP protocol (http/protobuf, grpc)"),
    ("--headers", "OTEL_EXPORTER_OTLP_HEADERS", "OTLP headers, key=value,..."),
    ("--sampler", "OTEL_TRACES_SAMPLER", "sampler (parentbased_traceidratio, ...)"),
    ("--sampler-arg", "OTEL_TRACES_SAMPLER_ARG", "the sampler's argument (a ratio)"),
    ("--propagators", "OTEL_PROPAGATORS", "propagators (tracecontext,baggage)"),
    ("--plugins", "LIMELIGHT_PLUGINS", "load only these plugins (allow-list)"),
    ("--disable-plugins", "LIMELIGHT_DISABLED_PLUGINS", "do not load these plugins"),
    ("--metrics-namespace", "LIMELIGHT_METRICS_NAMESPACE", "prefix of every metric name"),
    ("--prometheus-port", "OTEL_EXPORTER_PROMETHEUS_PORT", "port of the /metrics server"),
    ("--prometheus-host", "OTEL_EXPORTER_PROMETHEUS_HOST", "address of the /metrics server"),
)
"""``(option, variables, help)``: each option sets its variables for the command."""

_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_PREFORK_SERVERS = ("gunicorn",)


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``limelight run``."""
    p = argparse.ArgumentParser(
        prog="limelight run",
        description="Run a command with telemetry started in every Python process it "
        "starts, before the application's code runs; every installed surface "
        "instruments its library when the application imports it. Options set the "
        "variable named in brackets, winning over the environment.",
        usage="limelight run [options] -- command [args ...]",
    )
    for option, variables, text in OPTIONS:
        p.add_argument(option, metavar="VALUE", help=f"{text} [{variables}]")
    p.add_argument(
        "--no-auto-instrument",
        action="store_true",
        help="only what each surface instruments at start on its own, no framework, "
        f"driver or client on import [{_AUTO_INSTRUMENT}=false]",
    )
    p.add_argument(
        "--strict", action="store_true", help="a plugin failure fails the start [LIMELIGHT_STRICT]"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--multiprocess",
        dest="multiprocess",
        action="store_const",
        const=True,
        help="prometheus_client multiprocess mode for a command with worker processes "
        f"(default: for gunicorn and uvicorn --workers N>1) [{_MULTIPROC_DIR}]",
    )
    mode.add_argument(
        "--no-multiprocess",
        dest="multiprocess",
        action="store_const",
        const=False,
        help="never multiprocess mode",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    return p


def _option_value(args: Sequence[str], names: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def uses_workers(command: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether *command* is a pre-forking server with worker processes: gunicorn,
    or uvicorn with more than one worker (``--workers``, ``WEB_CONCURRENCY``)."""
    words = list(command)
    # python -m uvicorn / python -m gunicorn
    if len(words) > 2 and Path(words[0]).name.startswith("python") and words[1] == "-m":
        words = words[2:]
    if not words:
        return False
    program = Path(words[0]).name
    if program in _PREFORK_SERVERS:
        return True
    if program == "uvicorn":
        raw = _option_value(words[1:], ("--workers",)) or environ.get("WEB_CONCURRENCY")
        try:
            return raw is not None and int(raw) > 1
        except ValueError:
            return False
    return False


def _empty_multiproc_dir(path: str) -> None:
    """Make *path* and remove prometheus_client's files left in it by an earlier run."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for db in directory.glob("*.db"):
        db.unlink(missing_ok=True)


def build_environment(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """The command's environment: *environ* with the options applied and limelight's
    ``sitecustomize`` directory first on ``PYTHONPATH``."""
    env = dict(environ)
    for option, variables, _text in OPTIONS:
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if value is not None:
            for variable in variables.split(","):
                env[variable] = value
    if args.no_auto_instrument:
        env[_AUTO_INSTRUMENT] = "false"
    if args.strict:
        env["LIMELIGHT_STRICT"] = "true"
    multiprocess = args.multiprocess
    if multiprocess is None:
        multiprocess = uses_workers(args.command, env)
    env.pop(RUN_TEMP_DIR, None)
    if multiprocess:
        if not env.get(_MULTIPROC_DIR, "").strip():
            # removed when the command's process exits (limelight._autostart)
            env[_MULTIPROC_DIR] = env[RUN_TEMP_DIR] = tempfile.mkdtemp(
                prefix="limelight-prometheus-"
            )
        _empty_multiproc_dir(env[_MULTIPROC_DIR])
    # the first process of this run marks itself (an inherited mark is another run's)
    env.pop(_AUTOSTART_PID, None)
    here = bootstrap_dir()
    path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != here]
    env["PYTHONPATH"] = os.pathsep.join([here, *path])
    return env


def main(argv: Sequence[str]) -> int:
    """``limelight run``: replace this process with the command (never returns on
    success); 127 when the command is not found, 126 when it cannot be run."""
    args = parser().parse_args(list(argv))
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        parser().error("no command given (limelight run [options] -- command [args ...])")
    args.command = command
    try:
        env = build_environment(args, os.environ)
    except OSError as exc:
        print(f"limelight run: {exc}", file=sys.stderr)
        return 1
    executable = shutil.which(command[0], path=env.get("PATH"))
    if executable is None:
        print(f"limelight run: command not found: {command[0]}", file=sys.stderr)
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(executable, command, env)
    except OSError as exc:
        print(f"limelight run: cannot run {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 126
