"""``multiprocessing.Process``: a CLIENT span and the metrics per child, context handed over.

``BaseProcess.start`` is wrapped (through :class:`~limelight.surface.Patches`);
it is the start of every process under every start method. The child's exit
status is seen through ``returncode`` of multiprocessing's POSIX Popen class
(the base of the fork, spawn and forkserver ones; see :mod:`._status`).

The parent's context reaches the child

- under ``fork``: the span is current while ``start()`` forks, and a forked
  child begins with a copy of the forking thread's context;
- under ``spawn`` and ``forkserver``: through a :class:`~._children.ChildContext`
  pickled with the ``Process`` object, restored as the child's current context.

The worker processes a pool starts for itself (``multiprocessing.Pool``,
``ProcessPoolExecutor``) get neither a span nor a count: a pool's work is
counted and traced per task (:mod:`._pools`).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing import process as mp_process
from typing import Any

from opentelemetry import trace
from opentelemetry.context import attach, detach
from opentelemetry.trace import SpanKind

from limelight.propagation import inject_span
from limelight.semconv import CODE_FUNCTION_NAME, PROCESS_EXECUTABLE_NAME
from limelight.surface import Patches, current_context, report_failure

from . import _children
from ._instruments import Instruments, Run, binding
from ._metrics import MULTIPROCESSING
from ._names import callable_name
from ._status import ReturncodeProperty, watch

__all__ = ["CONTEXT_ATTRIBUTE", "install", "remove"]

CONTEXT_ATTRIBUTE = "_limelight_process_context"
"""The ``Process`` attribute that carries the parent's context to a spawned child
(set for the duration of ``start()`` only)."""

_CLIENT = SpanKind.CLIENT


def _pool_workers() -> tuple[Any, ...]:
    """The functions pools run as their worker processes' target."""
    found = []
    for module, name in (
        ("multiprocessing.pool", "worker"),
        ("concurrent.futures.process", "_process_worker"),
    ):
        loaded = sys.modules.get(module)
        function = getattr(loaded, name, None) if loaded is not None else None
        if function is not None:
            found.append(function)
    return tuple(found)


def _target_name(process: mp_process.BaseProcess, target: Any) -> str:
    if target is not None:
        return callable_name(target)
    cls = type(process)
    if cls.run is not mp_process.BaseProcess.run:
        return f"{callable_name(cls)}.run"
    return callable_name(cls)


def _executable(process: mp_process.BaseProcess) -> str:
    method = getattr(process, "_start_method", None) or multiprocessing.get_start_method()
    if method == "fork":
        return sys.executable
    from multiprocessing import spawn

    return str(spawn.get_executable() or sys.executable)


def _begin(inst: Instruments, process: mp_process.BaseProcess) -> tuple[Run, Any] | None:
    """The run and the span of a child about to start; ``None`` for a pool's own worker."""
    target = getattr(process, "_target", None)
    if target is not None and target in _pool_workers():
        return None
    name = _target_name(process, target)
    attributes = {
        PROCESS_EXECUTABLE_NAME: os.path.basename(_executable(process)),
        CODE_FUNCTION_NAME: name,
    }
    span = inst.tracer.start_span(name, kind=_CLIENT, attributes=attributes)
    try:
        context = current_context()
        carrier: dict[str, str] = {}
        inject_span(carrier, span, context)
        setattr(process, CONTEXT_ATTRIBUTE, _children.ChildContext(carrier))
        run = Run(inst.series[MULTIPROCESSING], span)
    except BaseException:
        span.end()
        raise
    return run, trace.set_span_in_context(span, context)


_status: ReturncodeProperty | None = None


def install(patches: Patches) -> None:
    """Wrap ``BaseProcess.start`` and watch the Popen classes' ``returncode``."""
    global _status
    from multiprocessing import popen_fork

    original = mp_process.BaseProcess.start
    get = binding.get

    def start(self: mp_process.BaseProcess) -> None:
        inst = get()
        if not inst.enabled:
            original(self)
            return
        try:
            begun = _begin(inst, self)
        except Exception as exc:
            report_failure("process", "begin multiprocessing", exc)
            begun = None
        if begun is None:
            original(self)
            return
        run, context = begun
        token = attach(context)  # a forked child starts in this context
        try:
            original(self)
        except BaseException as exc:
            run.failed(exc)
            raise
        finally:
            detach(token)
            self.__dict__.pop(CONTEXT_ATTRIBUTE, None)
        try:
            popen = getattr(self, "_popen", None)
            run.spawned(getattr(popen, "pid", None))
            if popen is not None:
                watch(popen, run)
        except Exception as exc:
            report_failure("process", "watch multiprocessing", exc)

    start.__wrapped__ = original  # type: ignore[attr-defined]
    patches.wrap(mp_process.BaseProcess, "start", start)
    _status = ReturncodeProperty(popen_fork.Popen)
    _status.add()
    _children.arm()


def remove() -> None:
    """Take the ``returncode`` property away (the patches are restored by the caller)."""
    if _status is not None:
        _status.remove()
