"""``subprocess.Popen``: a CLIENT span and the metrics per child, context in its environment.

``Popen.__init__`` is wrapped (through :class:`~limelight.surface.Patches`):
every spawn of the standard library goes through it (``run``, ``call``,
``check_call``, ``check_output``, ``getoutput``, and asyncio's
``create_subprocess_exec``/``create_subprocess_shell``, whose transports
create a ``Popen``). The child receives the span's context (``TRACEPARENT``,
``TRACESTATE``, ``BAGGAGE`` with the default propagators) in its environment:
with ``env=`` given, a copy of that mapping carrying it; without, where the
seam of :mod:`._childenv` is installed, ``env=None`` is kept and the carrier
joins ``os.environ``'s lines below ``subprocess``'s encoding loop, else a copy
of ``os.environ`` carrying it is passed as ``env=``. The caller's mapping and
``os.environ`` are never changed. The span and the run end when the exit
status arrives (see :mod:`._status`).
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from opentelemetry.trace import SpanKind

from limelight.propagation import EnvironmentSetter, inject_environ, inject_span
from limelight.semconv import PROCESS_COMMAND_ARGS, PROCESS_EXECUTABLE_NAME, PROCESS_EXECUTABLE_PATH
from limelight.surface import Patches, report_failure

from . import _childenv
from ._childenv import pending, seam
from ._instruments import Instruments, Run, binding
from ._status import ReturncodeProperty, watch

__all__ = ["command_args", "install", "program", "remove"]

_CLIENT = SpanKind.CLIENT


def _bytes_cells() -> bool:
    cells = getattr(os.environ, "_data", None)
    return os.name == "posix" and type(cells) is dict and all(type(k) is bytes for k in cells)


_BYTES_CELLS = _bytes_cells()


def _inherited() -> Any:
    """What a child inherits when ``env`` is not given, at the cost of a dict copy.

    On POSIX ``os.environ`` keeps the environment as ``bytes`` in a plain
    dict (what ``os.environ[k] = v`` writes to along with ``putenv``);
    copying that is about a hundred times cheaper than copying ``os.environ``
    itself, which decodes every name and value, and Popen encodes bytes for
    the child faster than text. Elsewhere, ``os.environ`` itself.
    """
    environ = os.environ
    if _BYTES_CELLS:
        cells = getattr(environ, "_data", None)
        if type(cells) is dict:
            return cells
    return environ


_SINGLE = (str, bytes, os.PathLike)
_fsdecode = os.fsdecode
_basename = os.path.basename
_isabs = os.path.isabs


# where executable, shell and env sit among Popen's positional arguments after args, as
# documented (Popen(args, bufsize, executable, stdin, stdout, stderr, preexec_fn, close_fds,
# shell, cwd, env, ...)); fixed, so another library's (*args, **kwargs) wrapper around
# Popen.__init__ installed before this one changes nothing
_EXECUTABLE, _SHELL, _ENV = 1, 7, 9


def program(args: Any, executable: Any, shell: bool) -> str:
    """The program a Popen runs: with ``shell=True`` the shell (``/bin/sh`` unless
    *executable* names another); otherwise *executable* when given, else the
    command, or the first argument of a sequence."""
    if executable is not None:
        return _fsdecode(executable)
    if shell:
        return "/bin/sh"
    first = args[0] if type(args) is list else args if isinstance(args, _SINGLE) else args[0]
    return first if type(first) is str else _fsdecode(first)


def command_args(args: Any, executable: Any, shell: bool) -> list[str]:
    """The argument vector the program receives (``process.command_args``)."""
    argv = [_fsdecode(args)] if isinstance(args, _SINGLE) else [_fsdecode(a) for a in args]
    if shell:
        return [_fsdecode(executable) if executable is not None else "/bin/sh", "-c", *argv]
    return argv


_programs: dict[str, tuple[str, dict[str, Any]]] = {}
"""(span name, executable attributes) by program path, for the programs run most."""
_PROGRAMS_LIMIT = 256


def _program_attributes(path: str) -> tuple[str, dict[str, Any]]:
    name = _basename(path) or path
    attributes: dict[str, Any] = {PROCESS_EXECUTABLE_NAME: name}
    if path[:1] == "/" or _isabs(path):
        attributes[PROCESS_EXECUTABLE_PATH] = path
    if len(_programs) < _PROGRAMS_LIMIT:
        _programs[path] = (name, attributes)
    return name, attributes


_setter = EnvironmentSetter()


def _begin(
    inst: Instruments, args: Any, rest: tuple[Any, ...], kwargs: dict[str, Any], fast: bool
) -> tuple[Run, tuple[Any, ...], dict[str, str] | None]:
    """Start the span and the run; return the run, the positional arguments (*rest* or
    *kwargs* carrying the new ``env`` when one is passed) and, when *fast* and no
    ``env`` was given, the carrier for the seam instead."""
    given = len(rest)
    if given:
        executable = rest[_EXECUTABLE] if _EXECUTABLE < given else kwargs.get("executable")
        shell = bool(rest[_SHELL] if _SHELL < given else kwargs.get("shell"))
        env = rest[_ENV] if _ENV < given else kwargs.get("env")
    elif kwargs:
        executable = kwargs.get("executable")
        shell = bool(kwargs.get("shell"))
        env = kwargs.get("env")
    else:
        executable = env = None
        shell = False
    if executable is None and not shell and type(args) is list:
        path = args[0]
        if type(path) is not str:
            path = _fsdecode(path)
    else:
        path = program(args, executable, shell)
    known = _programs.get(path)
    if known is None:
        known = _program_attributes(path)
    name, attributes = known
    if inst.command_args:
        attributes = {**attributes, PROCESS_COMMAND_ARGS: command_args(args, executable, shell)}
    # the attributes are read at the start, never kept: the shared mapping is passed as is
    span = inst.start_span(name, None, _CLIENT, attributes)
    try:
        carrier: dict[str, str] | None = None
        if env is None and fast:
            carrier = {}
            inject_span(carrier, span, None, _setter)
        else:
            env = inject_environ(_inherited() if env is None else env, span=span)
            if _ENV < given:
                rest = (*rest[:_ENV], env, *rest[_ENV + 1 :])
            else:
                kwargs["env"] = env
        run = Run(inst.subprocess, span)
    except BaseException:
        span.end()
        raise
    return run, rest, carrier


_status = ReturncodeProperty(subprocess.Popen)


def install(patches: Patches) -> None:
    """Wrap ``Popen.__init__`` (and, on POSIX, the steps of :mod:`._childenv`) and watch
    ``Popen.returncode``."""
    original = subprocess.Popen.__init__
    get = binding.get
    popen_type = subprocess.Popen
    local = pending
    state = seam
    _childenv.install(patches)

    def popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        inst = get()
        if not inst.enabled:
            original(self, args, *rest, **kwargs)
            return
        try:
            if type(args) is not list and not isinstance(args, _SINGLE):
                args = list(args)  # what Popen does with it anyway (an iterator is read once)
            cls = type(self)
            fast = state.active and (cls is popen_type or state.handles(cls))
            run, rest, carrier = _begin(inst, args, rest, kwargs, fast)
        except Exception as exc:
            report_failure("process", "begin subprocess", exc)
            original(self, args, *rest, **kwargs)
            return
        if carrier is None:
            try:
                original(self, args, *rest, **kwargs)
            except BaseException as exc:
                run.failed(exc)
                raise
        else:
            outer = local.carrier  # a spawn from a signal handler during another one
            local.carrier = carrier
            try:
                original(self, args, *rest, **kwargs)
            except BaseException as exc:
                local.carrier = outer
                run.failed(exc)
                raise
            left = local.carrier
            local.carrier = outer
            if left is carrier and self.__dict__.get("_child_created"):
                state.missed()  # a child made without either step taking its carrier
        try:
            run.spawned(self.pid)
            watch(self, run)
        except Exception as exc:
            report_failure("process", "watch subprocess", exc)

    popen_init.__name__ = popen_init.__qualname__ = "__init__"
    popen_init.__wrapped__ = original  # type: ignore[attr-defined]
    patches.wrap(subprocess.Popen, "__init__", popen_init)
    _status.add()


def remove() -> None:
    """Take the ``returncode`` property away (the patches are restored by the caller)."""
    _childenv.remove()
    _status.remove()
