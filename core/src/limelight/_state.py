"""Everything limelight keeps for the life of the process, in one place.

Two kinds of state live here, and :func:`reset` treats them differently:

What the process holds (kept by :func:`reset`)
    the running telemetry (``active``, and ``default``, the inactive one
    :func:`limelight.current` returns when none runs), the ``generation``
    counter that tells :class:`~limelight.surface.TelemetryBinding` values to
    rebuild, whether the OpenTelemetry global tracer provider was routed to
    limelight (``globals_installed``), whether the exit and SIGTERM handlers
    were installed (``exit_handlers_installed``, ``previous_sigterm``), and
    the fork count span processors compare with (``forks``), and whether the
    zero-code start ran (``autostarted``) and the ``.pth`` hook was read
    (``pth_read``, ``limelight._autostart``). Each describes
    something that exists outside this module (a started telemetry, an
    ``atexit`` registration, a signal handler, an OpenTelemetry global, a
    forked child), so forgetting it would not undo it.

What limelight remembers (cleared by :func:`reset`)
    the failures already reported once (``reported_failures``,
    :func:`limelight.surface.report_failure`), the configuration problems
    already warned about (``reported_problems``), the log lines caused by
    request input let through lately (``log_windows``), the process's
    ``service.instance.id`` (``instance_id``), the names of the installed
    propagators (``propagator_names``) and the environment variable names of
    the installed propagator's fields (``environ_names``).

:class:`limelight.testing.Harness` calls :func:`reset` when it starts and when
it stops, so that an assertion that something is reported once, or that a
harness gets its own instance id, holds whatever tests ran before. What
``limelight._sdk`` found at import (its fallbacks) describes the libraries as
imported and is not state of this kind.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.propagators.textmap import TextMapPropagator

    from ._telemetry import Telemetry

__all__ = ["STATE", "ProcessState", "reset"]


class ProcessState:
    """The process-wide state; there is one, :data:`STATE`."""

    __slots__ = (
        "active",
        "autostarted",
        "default",
        "environ_names",
        "exit_handlers_installed",
        "forks",
        "generation",
        "globals_installed",
        "instance_id",
        "lock",
        "log_windows",
        "previous_sigterm",
        "propagator_names",
        "pth_read",
        "reported_failures",
        "reported_problems",
        "reporting_lock",
    )

    def __init__(self) -> None:
        self.lock = threading.RLock()
        """Held while the running telemetry changes and while bindings rebuild."""
        # -- what the process holds ------------------------------------------------------
        self.active: Telemetry | None = None
        self.default: Telemetry | None = None
        self.generation = 0
        self.globals_installed = False
        self.exit_handlers_installed = False
        self.previous_sigterm: Any = None
        self.forks = 0
        self.autostarted = False
        self.pth_read = False
        # -- what limelight remembers -----------------------------------------------------
        self.reporting_lock = threading.Lock()
        """Held while a once-only report decides whether it is the first."""
        self.reported_failures: set[tuple[str, str, str]] = set()
        self.reported_problems: set[tuple[str, str]] = set()
        self.log_windows: dict[tuple[str, str], tuple[float, int]] = {}
        """Per kind of log line caused by request input: when it was last let
        through and how many were left out since (``limelight._logbound``)."""
        self.instance_id: tuple[int, str] | None = None
        self.propagator_names: frozenset[str] | None = None
        self.environ_names: tuple[TextMapPropagator | None, tuple[str, ...]] = (None, ())

    def reset(self) -> None:
        """Forget what limelight remembers (see the module documentation); what the
        process holds stays, and every binding is rebuilt on its next use."""
        with self.lock:
            with self.reporting_lock:
                self.reported_failures.clear()
                self.reported_problems.clear()
                self.log_windows.clear()
            self.instance_id = None
            self.propagator_names = None
            self.environ_names = (None, ())
            self.default = None
            self.generation += 1


STATE = ProcessState()
"""The process-wide state."""


def reset() -> None:
    """:meth:`ProcessState.reset` of :data:`STATE`."""
    STATE.reset()
