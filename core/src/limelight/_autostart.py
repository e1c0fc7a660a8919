"""Telemetry started with the interpreter: ``limelight run`` and ``LIMELIGHT_AUTOSTART``.

:func:`autostart` is what limelight's ``sitecustomize`` (``limelight run`` puts
its directory first on the child's ``PYTHONPATH``; ``LIMELIGHT_AUTOSTART=true``
puts it first on ``sys.path`` through limelight's ``.pth`` file) calls before
the application's code runs:

- the configuration comes from the environment (the options of ``limelight
  run`` are environment variables by then), with
  ``LIMELIGHT_AUTO_INSTRUMENT`` true unless set: every installed surface
  instruments each library it supports when the application imports it;
- the first process of the run (``LIMELIGHT_AUTOSTART_PID``, set here when
  absent, so every process it starts knows it is not the first) serves
  Prometheus's standalone ``/metrics`` (the aggregate of every worker in
  multiprocess mode); the others never do (``LIMELIGHT_PROMETHEUS_SERVER``
  ``auto`` becomes ``true`` or ``false`` accordingly, in the configuration
  only: ``os.environ`` keeps what the user set);
- a process forked from it (a gunicorn worker, a ``multiprocessing`` child,
  ``os.fork``) starts its own telemetry right after the fork: the inherited
  one is dropped unflushed (its queued spans and metrics are the parent's,
  which exports them), so no exporter thread, resource (``process.pid``,
  ``service.instance.id``) or value of the parent's is carried into the child;
- an exception on the way is reported once, as one log line with its
  traceback, and the application runs untraced.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from limelight_hookspecs import EnvVar, parse_bool

from ._bootpaths import RUN_TEMP_DIR, bootstrap_dir
from ._log import get_logger
from ._state import STATE

if TYPE_CHECKING:
    from ._telemetry import Telemetry

__all__ = [
    "LIMELIGHT_AUTOSTART",
    "LIMELIGHT_AUTOSTART_PID",
    "LIMELIGHT_AUTO_INSTRUMENT",
    "RUN_TEMP_DIR",
    "RUN_VARIABLES",
    "autostart",
    "bootstrap_dir",
]

_log = get_logger("limelight")

LIMELIGHT_AUTOSTART = EnvVar(
    "LIMELIGHT_AUTOSTART",
    False,
    parse_bool,
    "Start telemetry when the Python interpreter starts, before the application's code "
    "runs, as `limelight run` does, for platforms where the command line cannot change "
    "(read by limelight's .pth file, so the limelight distribution must be installed "
    "in the interpreter's environment).",
    "true",
)
LIMELIGHT_AUTO_INSTRUMENT = EnvVar(
    "LIMELIGHT_AUTO_INSTRUMENT",
    False,
    parse_bool,
    "Every installed surface instruments each library it supports when the application "
    "imports it (frameworks, clients, drivers), with no call in the code; a surface's own "
    "variable (LIMELIGHT_HTTPCLIENT_INSTRUMENT, LIMELIGHT_QUEUE_INSTRUMENT, ...) still picks "
    "its libraries. Default false with limelight.start(), true under limelight run and "
    "LIMELIGHT_AUTOSTART.",
    "true",
)
LIMELIGHT_AUTOSTART_PID = EnvVar(
    "LIMELIGHT_AUTOSTART_PID",
    "",
    lambda raw: raw.strip(),
    "Set by auto-start to the id of the first process of a run (limelight run removes an "
    "inherited value): its descendants know they are workers, so only that process "
    "serves the standalone /metrics.",
    "4242",
)

RUN_VARIABLES: tuple[EnvVar[Any], ...] = (
    LIMELIGHT_AUTOSTART,
    LIMELIGHT_AUTO_INSTRUMENT,
    LIMELIGHT_AUTOSTART_PID,
)
"""The variables of the zero-code start, in documentation order."""

_PROMETHEUS_SERVER = "LIMELIGHT_PROMETHEUS_SERVER"
_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def _first_process() -> bool:
    """Whether this process is the first of the run; marks it so when none is."""
    pid = str(os.getpid())
    first = os.environ.get(LIMELIGHT_AUTOSTART_PID.name, "").strip()
    if not first:
        os.environ[LIMELIGHT_AUTOSTART_PID.name] = pid
        return True
    return first == pid


def _environ(first: bool) -> dict[str, str]:
    """The environment the configuration is read from (``os.environ`` is left as it is)."""
    environ = dict(os.environ)
    environ.setdefault(LIMELIGHT_AUTO_INSTRUMENT.name, "true")
    if environ.get(_PROMETHEUS_SERVER, "auto").strip().lower() in ("", "auto"):
        if not first:
            environ[_PROMETHEUS_SERVER] = "false"
        elif environ.get(_MULTIPROC_DIR, "").strip():
            environ[_PROMETHEUS_SERVER] = "true"  # the aggregate, from the first process
    return environ


def _start(first: bool) -> Telemetry | None:
    from ._config import load_config
    from ._telemetry import start

    return start(load_config(_environ(first)))


def _report(origin: str, exc: BaseException) -> None:
    _log.error(
        "limelight could not start telemetry; the application runs without it",
        origin=origin,
        error=f"{type(exc).__name__}: {exc}",
        exc_info=exc,
    )


def autostart(origin: str = "sitecustomize") -> Telemetry | None:
    """Start telemetry for this process, once; never raises.

    :param origin: what called it, named in the report of a failure.
    :returns: the running telemetry, or ``None`` when the start failed.
    """
    with STATE.lock:
        if STATE.autostarted:
            from ._telemetry import current

            return current()
        STATE.autostarted = True
    try:
        first = _first_process()
        if first:
            _remove_temp_dir_at_exit()
        telemetry = _start(first)
    except Exception as exc:
        _report(origin, exc)
        return None
    os.register_at_fork(after_in_child=_after_fork_in_child)
    return telemetry


def _remove_temp_dir_at_exit() -> None:
    """Remove the multiprocess directory ``limelight run`` made, when this process exits
    (registered before telemetry starts, so it runs after telemetry's own exit stop)."""
    made = os.environ.get(RUN_TEMP_DIR, "")
    if made and made == os.environ.get(_MULTIPROC_DIR):
        pid = os.getpid()

        def remove() -> None:
            if os.getpid() == pid:  # not in a forked child
                shutil.rmtree(made, ignore_errors=True)

        atexit.register(remove)


def _forked_for_exec() -> bool:
    """Whether this fork is subprocess's, about to run another program (a
    ``preexec_fn`` makes the interpreter run its fork handlers there too)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_execute_child" and "subprocess" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _after_fork_in_child() -> None:
    """A forked child: its own telemetry instead of its parent's."""
    if _forked_for_exec():
        return
    try:
        # locks a thread of the parent may have held at the fork
        STATE.lock = threading.RLock()
        STATE.reporting_lock = threading.Lock()
        with STATE.lock:
            STATE.active = None  # the parent's: its threads are not here, its data is its own
            STATE.generation += 1
        _start(first=False)
    except Exception as exc:
        _report("fork", exc)


def from_pth() -> None:
    """What limelight's ``.pth`` file calls when ``LIMELIGHT_AUTOSTART`` is in the
    environment: with a true value, put the ``sitecustomize`` directory first on
    ``sys.path``, so the interpreter runs it once every ``.pth`` file has been read
    (every distribution's path is known by then); never raises. Once per process
    (the interpreter of a virtual environment may read its .pth files twice)."""
    if STATE.pth_read:
        return
    STATE.pth_read = True
    try:
        reading = LIMELIGHT_AUTOSTART.read(os.environ)
        if reading.problem is not None:
            _log.warning("invalid configuration value", message=reading.problem.message())
        if not reading.value:
            return
        here = bootstrap_dir()
        if here not in (os.path.abspath(p or os.curdir) for p in sys.path):
            sys.path.insert(0, here)
    except Exception as exc:
        _report(".pth", exc)
