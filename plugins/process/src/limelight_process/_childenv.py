"""The child's environment: ``os.environ`` and the carrier, without ``subprocess`` re-encoding it.

Given an ``env=`` mapping, ``subprocess.Popen`` turns it into the
``NAME=value`` lines ``execve`` takes with a loop in Python (two
``os.fsencode`` calls and a concatenation per variable), on every spawn:
about 38 µs for 38 variables, more than the rest of the instrumentation. With
``env=None`` it skips that loop and the child inherits the environment. So a
spawn made without ``env=`` keeps ``env=None``, and the span's carrier
(``TRACEPARENT``, ``TRACESTATE``, ``BAGGAGE``) goes, for the calling thread
only (:data:`pending`), to the step below the loop that receives the
environment:

- ``subprocess._fork_exec`` (``_posixsubprocess.fork_exec``), which takes
  the encoded lines (``env_list``, ``None`` for inheriting) as its sixth
  argument in every supported release (3.11 to 3.14): :func:`install` wraps
  it, and the wrapper passes the lines of ``os.environ`` as it is at that
  moment, less the propagators' variables, plus the carrier's. The lines are
  made from the bytes ``os.environ`` keeps (``os.environ._data``, what every
  ``os.environ[k] = v`` and ``del`` writes to), kept with a copy of those
  bytes and made again only when they differ (one dict comparison per spawn):
  a variable set or deleted since the last spawn is in the next child, or
  gone from it.
- ``Popen._posix_spawn``, the ``os.posix_spawn`` path (what Python 3.13 takes
  by default for a program given by its path; 3.11 and 3.12 with
  ``close_fds=False``), which passes the mapping itself to ``os.posix_spawn``
  to encode in C: the wrapper gives it the same explicit environment the plain
  path builds (a copy of ``os.environ``'s bytes with the carrier).

Either way the child receives exactly what an explicit copy of ``os.environ``
carrying the context would give it: every variable ``os.environ`` holds at the
spawn, the propagators' variables replaced by the span's. Both are private
parts of ``subprocess``; :func:`install` checks that they are what this module
expects (POSIX, ``os.environ`` kept as bytes, ``_fork_exec`` the one from
``_posixsubprocess`` with ``env`` as its sixth parameter, ``_execute_child``
calling it with ``env_list``, ``_posix_spawn`` taking ``env`` third) and
otherwise installs nothing: spawns then pass an explicit ``env=`` copy, as on
Windows. A spawn that reaches neither step (a Popen subclass spawning its own
way is passed the explicit copy from the start) turns the seam off for good.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

from limelight.propagation import environ_variables
from limelight.surface import Patches, report_failure

__all__ = ["Seam", "install", "pending", "seam"]

ENV_LIST = 5
"""Where ``_posixsubprocess.fork_exec`` takes the environment's lines, counting from 0."""

_fsencode = os.fsencode
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()
_EQUALS = b"="


class _Pending(threading.local):
    """The carrier of the spawn the calling thread is making, until the seam takes it."""

    carrier: dict[str, str] | None = None


pending = _Pending()
"""Set by the spawn around ``Popen.__init__``, taken (set back to ``None``) by the seam."""


class _Names:
    """The variable names of the global propagator's fields
    (:func:`limelight.propagation.environ_variables`), with their encoded forms."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: tuple[tuple[str, ...], frozenset[str], frozenset[bytes]] = (
            (),
            frozenset(),
            frozenset(),
        )

    def get(self) -> tuple[frozenset[str], frozenset[bytes]]:
        variables = environ_variables()
        state = self._state
        if state[0] is not variables:
            state = (variables, frozenset(variables), frozenset(map(_fsencode, variables)))
            self._state = state
        return state[1], state[2]


_names = _Names()


class _Lines:
    """``os.environ``'s variables as ``execve`` lines, made again only when it changed.

    Kept as one tuple (a copy of the bytes they were made from, the names left
    out, the lines), replaced whole: a thread reads one consistent state, and
    threads that find it stale at once each make their own.
    """

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: tuple[dict[bytes, bytes] | None, frozenset[bytes], list[bytes]] = (
            None,
            frozenset(),
            [],
        )

    def get(self, cells: dict[bytes, bytes], skip: frozenset[bytes]) -> list[bytes]:
        """The lines of *cells* less the names in *skip* (never to be changed)."""
        made_from, skipped, lines = self._state
        if skipped is skip and made_from == cells:
            return lines
        snapshot = cells.copy()
        lines = [name + _EQUALS + value for name, value in snapshot.items() if name not in skip]
        self._state = (snapshot, skip, lines)
        return lines


_lines = _Lines()


def _environ_lines(skip: frozenset[bytes]) -> list[bytes]:
    """The lines of ``os.environ`` now, less *skip* (a list not to be changed)."""
    environ = os.environ
    cells = getattr(environ, "_data", None)
    if type(cells) is dict:
        return _lines.get(cells, skip)
    # os.environ replaced by another mapping: encoded as subprocess would encode it
    return _encoded(environ, skip)


def _encoded(env: Mapping[Any, Any], skip: frozenset[bytes]) -> list[bytes]:
    out = []
    for key, value in env.items():
        name = _fsencode(key)
        if _EQUALS in name:
            raise ValueError("illegal environment variable name")
        if name not in skip:
            out.append(name + _EQUALS + _fsencode(value))
    return out


def child_lines(env_list: list[bytes] | None, carrier: dict[str, str]) -> list[bytes]:
    """The environment lines for ``fork_exec``: *env_list* (``None``: ``os.environ``'s)
    with the propagators' variables replaced by *carrier*'s."""
    names, skip = _names.get()
    if not carrier.keys() <= names:  # a propagator writing a field it does not declare
        skip = skip | {_fsencode(name) for name in carrier}
    if env_list is None:
        lines = _environ_lines(skip).copy()
    else:  # given by code between the spawn and this step: its lines, the carrier's win
        lines = [line for line in env_list if line.partition(_EQUALS)[0] not in skip]
    append = lines.append
    encoding, errors = _FS_ENCODING, _FS_ERRORS  # os.fsencode's, without its Python
    for name, value in carrier.items():
        if type(name) is str and type(value) is str:
            append(name.encode(encoding, errors) + _EQUALS + value.encode(encoding, errors))
        else:
            append(_fsencode(name) + _EQUALS + _fsencode(value))
    return lines


def child_mapping(env: Mapping[Any, Any] | None, carrier: dict[str, str]) -> dict[Any, Any]:
    """The environment mapping for ``os.posix_spawn``: a copy of *env* (``None``:
    ``os.environ``'s bytes) with the propagators' variables replaced by *carrier*'s."""
    names, _ = _names.get()
    if env is None:
        environ = os.environ
        cells = getattr(environ, "_data", None)
        env = cells if type(cells) is dict else environ
    out: dict[Any, Any] = dict(env)
    for name in names | carrier.keys():
        out.pop(name, None)
        out.pop(_fsencode(name), None)
    out.update(carrier)
    return out


class Seam:
    """Whether spawns hand their carrier to the steps below ``subprocess``'s encoding loop.

    :attr:`active` is true once :func:`install` found and wrapped the steps, and
    goes false for good if a spawn ever reaches neither of them.
    """

    __slots__ = ("active", "reason", "spawners")

    def __init__(self) -> None:
        self.active = False
        self.reason = "not installed"
        self.spawners: tuple[tuple[str, object], ...] = ()

    def handles(self, popen_type: type) -> bool:
        """Whether a Popen of *popen_type* spawns through the wrapped steps."""
        return all(getattr(popen_type, name, None) is seen for name, seen in self.spawners)

    def missed(self) -> None:
        """A spawn given a carrier came back without either step taking it."""
        self.active = False
        self.reason = "a spawn reached neither fork_exec nor _posix_spawn"
        report_failure("process", "child environment", RuntimeError(self.reason))


seam = Seam()
"""The state of the seam for the current instrumentation."""


def _parameter(function: Any, index: int) -> str | None:
    """The name of *function*'s parameter at *index*, from its signature or, for a
    builtin without one (3.11), the first line of its docstring."""
    try:
        return list(inspect.signature(function).parameters)[index]
    except (TypeError, ValueError, IndexError):
        pass
    doc = getattr(function, "__doc__", None) or ""
    head, _, rest = doc.partition("(")
    if not head.strip().isidentifier():
        return None
    names = [p.strip() for p in rest.partition(")")[0].split(",")]
    return names[index] if index < len(names) else None


def _code(function: object) -> Any:
    return getattr(function, "__code__", None)


def check(module: Any = subprocess) -> str | None:
    """Why the seam cannot be used with *module* (``subprocess``), or ``None`` if it can."""
    if os.name != "posix":
        return f"not POSIX ({os.name})"
    cells = getattr(os.environ, "_data", None)
    if type(cells) is not dict or not all(type(k) is bytes for k in cells):
        return "os.environ does not keep bytes"
    try:
        import _posixsubprocess
    except ImportError:
        return "no _posixsubprocess"
    fork_exec: Any = getattr(module, "_fork_exec", None)
    if fork_exec is None or fork_exec is not getattr(_posixsubprocess, "fork_exec", None):
        return "subprocess._fork_exec is not _posixsubprocess.fork_exec"
    environment = _parameter(fork_exec, ENV_LIST)
    if environment is None or environment not in {"env", "env_list"}:
        return "fork_exec does not take the environment sixth"
    popen = module.Popen
    execute = _code(vars(popen).get("_execute_child"))
    if execute is None or "_fork_exec" not in execute.co_names:
        return "Popen._execute_child does not call _fork_exec"
    if "env_list" not in execute.co_varnames or "env" not in execute.co_varnames:
        return "Popen._execute_child does not build env_list from env"
    if "_posix_spawn" in execute.co_names:
        spawn = _code(vars(popen).get("_posix_spawn"))
        if spawn is None or spawn.co_varnames[:4] != ("self", "args", "executable", "env"):
            return "Popen._posix_spawn does not take env third"
    return None


def install(patches: Patches, module: Any = subprocess) -> bool:
    """Wrap *module*'s ``_fork_exec`` and ``Popen._posix_spawn`` when they are what this
    module expects; whether it did (:data:`seam` says why not)."""
    seam.active = False
    seam.spawners = ()
    reason = check(module)
    if reason is not None:
        seam.reason = reason
        return False
    popen = module.Popen
    spawners: list[tuple[str, object]] = [("_execute_child", vars(popen)["_execute_child"])]
    original_fork_exec = module._fork_exec

    def fork_exec(*args: Any) -> Any:
        carrier = pending.carrier
        if carrier is not None and len(args) > ENV_LIST:
            env_list = args[ENV_LIST]
            if env_list is None or type(env_list) is list:
                pending.carrier = None
                try:
                    lines = child_lines(env_list, carrier)
                except Exception as exc:  # the child inherits, without the context
                    report_failure("process", "child environment", exc)
                else:
                    args = (*args[:ENV_LIST], lines, *args[ENV_LIST + 1 :])
        return original_fork_exec(*args)

    patches.wrap(module, "_fork_exec", fork_exec)
    if "_posix_spawn" in _code(popen._execute_child).co_names:
        original_spawn = popen._posix_spawn

        def _posix_spawn(
            self: Any, args: Any, executable: Any, env: Any, *rest: Any, **kwargs: Any
        ) -> Any:
            carrier = pending.carrier
            if carrier is not None:
                pending.carrier = None
                try:
                    env = child_mapping(env, carrier)
                except Exception as exc:
                    report_failure("process", "child environment", exc)
            return original_spawn(self, args, executable, env, *rest, **kwargs)

        _posix_spawn.__wrapped__ = original_spawn  # type: ignore[attr-defined]
        patches.wrap(popen, "_posix_spawn", _posix_spawn)
        spawners.append(("_posix_spawn", _posix_spawn))
    seam.spawners = tuple(spawners)
    seam.reason = ""
    seam.active = True
    return True


def remove() -> None:
    """The seam is off (its patches are restored by the caller)."""
    seam.active = False
    seam.spawners = ()
    seam.reason = "not installed"
