"""limelight-process: spawned processes and pool tasks, counted, traced, context handed over.

Every child started through ``subprocess`` (``run``, ``call``,
``check_output``, ``Popen``, and asyncio's ``create_subprocess_exec`` /
``create_subprocess_shell``) or ``multiprocessing.Process`` (fork, spawn,
forkserver) gets a CLIENT span, lasting until the child is reaped, and is
counted in ``process_started_total``, ``process_terminated_total``,
``process_active`` and ``process_duration_seconds``. The child receives the
span's context in ``TRACEPARENT``, ``TRACESTATE`` and ``BAGGAGE`` in its
environment (the caller's ``env=`` and ``os.environ`` are never changed);
a Python child that runs ``limelight.start()`` continues the trace. Tasks
handed to a ``ProcessPoolExecutor`` or a ``multiprocessing.Pool`` carry their
submitter's context into the worker, where they run in a span of their own,
and multiprocessing children flush their telemetry when they exit.

Installed, the plugin instruments everything when telemetry starts
(``LIMELIGHT_PROCESS_INSTRUMENT``); by hand::

    import limelight_process

    limelight_process.instrument()              # subprocess, multiprocessing, concurrent.futures
    limelight_process.instrument("subprocess")  # one of them
    limelight_process.uninstrument()

See ``docs/plugins/process.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._env import (
        LIBRARIES,
        LIMELIGHT_PROCESS_COMMAND_ARGS,
        LIMELIGHT_PROCESS_INSTRUMENT,
        VARIABLES,
    )
    from ._instrumentation import INSTRUMENTATION, instrument, is_instrumented, uninstrument
    from ._instruments import TRACER_NAME, exit_error_type
    from ._metrics import (
        ALL_METRICS,
        COMPLETED,
        ERROR,
        KINDS,
        MULTIPROCESSING,
        POOL_TASK,
        PROCESS_ACTIVE,
        PROCESS_BUCKETS,
        PROCESS_DURATION,
        PROCESS_STARTED,
        PROCESS_TERMINATED,
        SUBPROCESS,
    )
    from ._plugin import ProcessPlugin, plugin

__all__ = [
    "ALL_METRICS",
    "COMPLETED",
    "ERROR",
    "INSTRUMENTATION",
    "KINDS",
    "LIBRARIES",
    "LIMELIGHT_PROCESS_COMMAND_ARGS",
    "LIMELIGHT_PROCESS_INSTRUMENT",
    "MULTIPROCESSING",
    "POOL_TASK",
    "PROCESS_ACTIVE",
    "PROCESS_BUCKETS",
    "PROCESS_DURATION",
    "PROCESS_STARTED",
    "PROCESS_TERMINATED",
    "SUBPROCESS",
    "TRACER_NAME",
    "VARIABLES",
    "ProcessPlugin",
    "exit_error_type",
    "instrument",
    "is_instrumented",
    "plugin",
    "uninstrument",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._env": (
            "LIBRARIES",
            "LIMELIGHT_PROCESS_COMMAND_ARGS",
            "LIMELIGHT_PROCESS_INSTRUMENT",
            "VARIABLES",
        ),
        "._instrumentation": (
            "INSTRUMENTATION",
            "instrument",
            "is_instrumented",
            "uninstrument",
        ),
        "._instruments": (
            "TRACER_NAME",
            "exit_error_type",
        ),
        "._metrics": (
            "ALL_METRICS",
            "COMPLETED",
            "ERROR",
            "KINDS",
            "MULTIPROCESSING",
            "POOL_TASK",
            "PROCESS_ACTIVE",
            "PROCESS_BUCKETS",
            "PROCESS_DURATION",
            "PROCESS_STARTED",
            "PROCESS_TERMINATED",
            "SUBPROCESS",
        ),
        "._plugin": (
            "ProcessPlugin",
            "plugin",
        ),
    },
)
