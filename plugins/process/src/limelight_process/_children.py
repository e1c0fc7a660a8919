"""The child side of multiprocessing: its parent's context, and nothing lost at its exit.

A multiprocessing child ends through ``os._exit`` under the fork and
forkserver start methods (and a pool worker recycled by ``maxtasksperchild`` /
``max_tasks_per_child`` the same way): no ``atexit`` handler runs, so
telemetry queued in the child would be lost. The one place every child goes
through on its way out is multiprocessing's own exit function, which runs the
finalizers registered with ``multiprocessing.util.Finalize``. :func:`arm`
registers one in every multiprocessing child (through
``multiprocessing.util.register_after_fork`` for forked children, directly in
a child that imports this module later, as a spawned pool worker does when its
first task arrives). It runs after the child's own children were joined and
its queues flushed, and:

- stops the child's telemetry when the child started it itself (spawn,
  forkserver, or ``limelight.start()`` in a forked child that had none):
  spans and metrics are flushed, as at any exit;
- flushes the spans of a telemetry inherited through ``fork``, without
  stopping it: the plugins' threads and servers belong to the parent. The
  metric store such a child inherited holds its parent's values; its own
  values are summed by Prometheus multiprocess mode, not pushed over OTLP.

:class:`ChildContext` carries the parent's context to a child started with
the spawn or forkserver method: it is pickled with the ``Process`` object and,
unpickled in the child, makes that context the current one of the child's
main thread, where ``run()`` runs. A forked child has it already: the fork
copies the current context of the thread that started it.
"""

from __future__ import annotations

import os
import threading
from multiprocessing import parent_process, util
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import attach

import limelight
from limelight.surface import report_failure

__all__ = ["ChildContext", "arm", "flush_telemetry"]

EXIT_PRIORITY = -100
"""Below multiprocessing's own finalizers (queue feeder threads join at -5): a
child's results reach its parent before its telemetry is flushed."""


def flush_telemetry() -> None:
    """Flush (or stop, if it started it) the telemetry of this child; never raises."""
    try:
        telemetry = limelight.current()
        if not telemetry.enabled:
            return
        if telemetry.resource.attributes.get("process.pid") == os.getpid():
            telemetry.stop()
        else:
            telemetry.force_flush()
    except Exception as exc:
        report_failure("process", "flush at child exit", exc)


class _ExitFlush:
    """One per process: the finalizer that calls :func:`flush_telemetry` at a child's exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooked_pid = 0
        self._finalizer: Any = None

    def arm(self) -> None:
        with self._lock:
            pid = os.getpid()
            if self._hooked_pid != pid:
                # children forked from here register their own finalizer as they start
                util.register_after_fork(self, _ExitFlush.after_fork)
                self._hooked_pid = pid
            if parent_process() is not None:
                self._register()

    def after_fork(self) -> None:
        self._hooked_pid = os.getpid()  # the registry of after-fork hooks came with the fork
        self._lock = threading.Lock()
        self._register()

    def _register(self) -> None:
        finalizer = self._finalizer
        # a forked child starts with an empty finalizer registry
        if finalizer is None or not finalizer.still_active():
            self._finalizer = util.Finalize(None, flush_telemetry, exitpriority=EXIT_PRIORITY)


_EXIT_FLUSH = _ExitFlush()


def arm() -> None:
    """Flush telemetry at the exit of this process if it is a multiprocessing child,
    and at the exit of every multiprocessing child forked from it."""
    _EXIT_FLUSH.arm()


def _restore(carrier: dict[str, str]) -> ChildContext:
    """Unpickled in a spawned child: adopt the parent's context, arm the exit flush."""
    try:
        arm()
        if carrier:
            attach(propagate.extract(carrier))
    except Exception as exc:
        report_failure("process", "adopt the parent context", exc)
    return ChildContext(carrier)


class ChildContext:
    """The parent's context for a spawned child, as the propagator's text map.

    :param carrier: what the global propagator injected in the parent.
    """

    __slots__ = ("carrier",)

    def __init__(self, carrier: dict[str, str]) -> None:
        self.carrier = carrier

    def __reduce__(self) -> tuple[Any, tuple[dict[str, str]]]:
        return _restore, (self.carrier,)
