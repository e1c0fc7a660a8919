"""A log line's trace context and its count, at the cost a log call can pay.

:func:`trace_fields` gives the current span's ids as the OpenTelemetry
specification writes them in non-OTLP log formats (``trace_id`` 32, ``span_id``
16 and ``trace_flags`` 2 lowercase hex digits), or :data:`NO_TRACE` outside a
span. The ids of the last span asked about are kept, so the lines a request
writes format them once. :data:`counts` holds the bound ``log_emissions_total``
children of the running telemetry, one per level, built once per start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from opentelemetry import trace

from limelight import Telemetry
from limelight.surface import TelemetryBinding, current_span
from limelight.surface import report_failure as _report_failure

from ._plugin import LOG_EMISSIONS

__all__ = [
    "FIELDS",
    "NO_TRACE",
    "Counts",
    "counts",
    "level_label",
    "report_failure",
    "trace_fields",
]

FIELDS: tuple[str, str, str] = ("trace_id", "span_id", "trace_flags")
"""The names of the three fields, as the specification gives them for non-OTLP formats."""

NO_TRACE: tuple[str, str, str] = ("", "", "")
"""The fields of a ``logging`` record made outside a span: empty strings, so a format
string naming them prints nothing there (structlog events get no keys at all)."""

_last: tuple[object, tuple[str, str, str]] = (trace.INVALID_SPAN, NO_TRACE)


def trace_fields() -> tuple[str, str, str]:
    """``(trace_id, span_id, trace_flags)`` of the current span, :data:`NO_TRACE` without one."""
    global _last
    span = current_span()
    last = _last
    if last[0] is span:
        return last[1]
    ctx = span.get_span_context()
    if ctx.is_valid:
        fields = (
            format(ctx.trace_id, "032x"),
            format(ctx.span_id, "016x"),
            format(ctx.trace_flags, "02x"),
        )
    else:
        fields = NO_TRACE
    _last = (span, fields)
    return fields


def report_failure(where: str, exc: BaseException) -> None:
    """Log, once per place and exception type, that recording failed; the log call goes on."""
    _report_failure("logs", where, exc)


_STRUCTLOG_LEVELS = {
    "warn": "warning",
    "exception": "error",
    "err": "error",
    "fatal": "critical",
    "msg": "info",
    "failure": "error",
}


def level_label(name: str) -> str:
    """The ``level`` label of a level or structlog method name (``warn`` is ``warning``)."""
    label = name.lower()
    return _STRUCTLOG_LEVELS.get(label, label)


class Counts:
    """The ``log_emissions_total`` children of one telemetry start, bound per level.

    ``enabled`` is false when telemetry is not running or the logs plugin is not
    loaded in it: nothing is counted then.
    """

    __slots__ = ("_lock", "_metric", "by_levelno", "by_method", "enabled")

    def __init__(self, telemetry: Telemetry) -> None:
        store = telemetry.store
        self.enabled = telemetry.enabled and LOG_EMISSIONS.name in store
        self._metric = store.get(LOG_EMISSIONS.name) if self.enabled else None
        self._lock = threading.Lock()
        self.by_levelno: dict[int, Callable[[], None]] = {}
        """The bound ``inc`` of a ``logging`` level number."""
        self.by_method: dict[str, Callable[[], None]] = {}
        """The bound ``inc`` of a structlog method name."""

    def _bind(self, label: str) -> Callable[[], None]:
        metric = self._metric
        assert metric is not None
        inc: Callable[[], None] = metric.labels(label).inc
        return inc

    def levelno(self, levelno: int, levelname: str) -> Callable[[], None]:
        """The bound ``inc`` for a ``logging`` record of *levelno* (named *levelname*)."""
        with self._lock:
            inc = self.by_levelno.get(levelno)
            if inc is None:
                inc = self._bind(level_label(levelname))
                if len(self.by_levelno) < 64:  # level numbers come from code, not data
                    self.by_levelno[levelno] = inc
            return inc

    def method(self, name: str) -> Callable[[], None]:
        """The bound ``inc`` for a structlog event logged with method *name*."""
        with self._lock:
            inc = self.by_method.get(name)
            if inc is None:
                inc = self._bind(level_label(name))
                if len(self.by_method) < 64:  # method names come from code, not data
                    self.by_method[name] = inc
            return inc


counts: TelemetryBinding[Counts] = TelemetryBinding(Counts)
"""The :class:`Counts` of the running telemetry."""
