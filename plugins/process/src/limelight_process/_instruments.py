"""What one child process or pool task records: its span and its four metrics.

Instruments are bound once per telemetry start (:data:`binding`): a spawn
costs one integer comparison to find them. A :class:`Run` is counted started
and active when it is created and ends exactly once, when the child is reaped
(:meth:`Run.exited`), when the spawn or the task fails (:meth:`Run.failed`),
or when the task returns: then ``process_active`` goes down, the result is
counted, the duration observed and the span, if any, ended.
"""

from __future__ import annotations

import importlib.metadata
import signal
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from limelight import Telemetry
from limelight.semconv import ERROR_TYPE, PROCESS_EXIT_CODE, PROCESS_PID
from limelight.surface import TelemetryBinding, error_type, report_failure

from ._env import LIMELIGHT_PROCESS_COMMAND_ARGS
from ._metrics import (
    COMPLETED,
    ERROR,
    KINDS,
    PROCESS_ACTIVE,
    PROCESS_DURATION,
    PROCESS_STARTED,
    PROCESS_TERMINATED,
    RESULTS,
    SUBPROCESS,
)

__all__ = ["TRACER_NAME", "Instruments", "Run", "Series", "binding", "exit_error_type"]

TRACER_NAME = "limelight.process"

_perf_counter = time.perf_counter


def _version() -> str | None:
    try:
        return importlib.metadata.version("limelight-process")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return None


_VERSION = _version()


def exit_error_type(code: int) -> str:
    """The ``error.type`` of a non-zero exit code: the signal's name for a child
    killed by a signal (Python reports ``-N``: ``SIGKILL``), else the code (``"1"``)."""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return str(code)
    return str(code)


class Series:
    """The bound metric series of one ``kind``."""

    __slots__ = ("active", "ended", "kind", "started")

    def __init__(self, telemetry: Telemetry, kind: str) -> None:
        store = telemetry.store
        self.kind = kind
        self.started = store.get(PROCESS_STARTED.name).labels(kind).inc
        self.active = store.get(PROCESS_ACTIVE.name).labels(kind).add
        terminated = store.get(PROCESS_TERMINATED.name)
        duration = store.get(PROCESS_DURATION.name)
        self.ended = {
            result: (terminated.labels(kind, result).inc, duration.labels(kind, result).observe)
            for result in RESULTS
        }


class Instruments:
    """Everything a spawn or a task needs, built from the running telemetry.

    ``enabled`` is false when telemetry is not running or the process plugin
    is not loaded (its metrics are not declared): instrumented code then
    passes straight through.
    """

    subprocess: Series
    """The series of ``kind="subprocess"`` (set when enabled)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.enabled = telemetry.enabled and PROCESS_STARTED.name in telemetry.store
        self.tracer: trace.Tracer = trace.NoOpTracer()
        self.command_args = False
        self.series: dict[str, Series] = {}
        if self.enabled:
            self.tracer = telemetry.tracer(TRACER_NAME, _VERSION)
            self.command_args = bool(telemetry.config.get(LIMELIGHT_PROCESS_COMMAND_ARGS))
            self.series = {kind: Series(telemetry, kind) for kind in KINDS}
            self.subprocess = self.series[SUBPROCESS]
        self.start_span = self.tracer.start_span


binding: TelemetryBinding[Instruments] = TelemetryBinding(Instruments)
"""The instruments for the running telemetry."""


class Run:
    """One child process or pool task, from its start to its end.

    :param series: the metric series of its kind.
    :param span: its span (``None`` for a pool task in the submitter, a pool's
        own worker processes have no run at all).
    """

    __slots__ = ("_open", "_pid", "_start", "series", "span")

    def __init__(self, series: Series, span: trace.Span | None) -> None:
        self.series = series
        self.span = span
        self._pid: int | None = None
        self._open = [True]  # the first end pops it (atomic), the others find it empty
        self._start = _perf_counter()
        series.started()
        series.active(1)

    def spawned(self, pid: int | None) -> None:
        """The child exists: its pid goes on the span (with the exit status, in one call)."""
        self._pid = pid

    def exited(self, code: int) -> None:
        """The child was reaped with exit code *code* (``-N``: killed by signal N)."""
        if code == 0:
            self._end(COMPLETED, 0, None, None)
        else:
            self._end(ERROR, code, exit_error_type(code), None)

    def failed(self, exc: BaseException) -> None:
        """The spawn raised, or the task raised or was cancelled."""
        self._end(ERROR, None, error_type(exc), exc)

    def succeeded(self) -> None:
        """The task returned."""
        self._end(COMPLETED, None, None, None)

    def _end(
        self, result: str, code: int | None, error: str | None, exc: BaseException | None
    ) -> None:
        # the first end wins; the others (a status read twice, a callback after a check) pass
        try:
            self._open.pop()
        except IndexError:
            return
        try:
            duration = _perf_counter() - self._start
            series = self.series
            series.active(-1)
            inc, observe = series.ended[result]
            inc()
            observe(duration)
            span = self.span
            if span is None:
                return
            pid = self._pid
            attributes: dict[str, Any] = {} if pid is None else {PROCESS_PID: pid}
            if code is not None:
                attributes[PROCESS_EXIT_CODE] = code
            if error is not None:
                attributes[ERROR_TYPE] = error
            if attributes:
                span.set_attributes(attributes)
            if exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            elif error is not None:
                span.set_status(Status(StatusCode.ERROR, f"exit code {code}"))
            span.end()
        except Exception as failure:  # never into the code that reaped the child
            report_failure("process", "end", failure)
