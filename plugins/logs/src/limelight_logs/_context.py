"""A log line's trace context and its count, at the cost a log call can pay.

:func:`trace_fields` gives the current span's ids as the OpenTelemetry
specification writes them in non-OTLP log formats (``trace_id`` 32, ``span_id``
16 and ``trace_flags`` 2 lowercase hex digits), or :data:`NO_TRACE` outside a
span. The ids of the last span asked about are kept with the context it was
found in (:data:`_last`), so the lines a request writes format them once and a
line in the same context as the last one finds them without reading the span:
a context is never changed once made (attaching a span makes a new one), so the
same context object holds the same span. :data:`counts` holds the bound ``log_emissions_total``
children of the running telemetry, one per level, built once per start.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry import trace

from limelight import Telemetry
from limelight.surface import TelemetryBinding, current_context, current_span
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

_FLAGS: tuple[str, ...] = tuple(format(flags, "02x") for flags in range(256))

_last: tuple[object, object, tuple[str, str, str]] = (None, trace.INVALID_SPAN, NO_TRACE)
"""``(context, span, fields)`` of the last line: held, so neither object can be freed
and another take its identity while it is kept here."""


def trace_fields() -> tuple[str, str, str]:
    """``(trace_id, span_id, trace_flags)`` of the current span, :data:`NO_TRACE` without one."""
    context = current_context()
    last = _last
    if last[0] is context:
        return last[2]
    return _fields_in(context)


def _fields_in(context: object) -> tuple[str, str, str]:
    """The fields of the current span (*context*: the current context), kept in :data:`_last`."""
    global _last
    span = current_span()
    last = _last
    if last[1] is span:
        fields = last[2]
    else:
        ctx = span.get_span_context()
        if ctx.is_valid:
            # a valid context's ids fit their 16 and 8 bytes; bytes.hex is lowercase and
            # a third of format(..., "032x")'s cost
            flags = ctx.trace_flags
            fields = (
                ctx.trace_id.to_bytes(16, "big").hex(),
                ctx.span_id.to_bytes(8, "big").hex(),
                _FLAGS[flags] if 0 <= flags < 256 else format(flags, "02x"),
            )
        else:
            fields = NO_TRACE
    _last = (context, span, fields)
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
    """``log_emissions_total`` of one telemetry start, tallied per thread.

    A log call adds one to its own thread's tally (a plain dictionary only that
    thread writes: no lock, no shared cell), keyed by the level number of a
    ``logging`` record or the method name of a structlog event. Before every
    read of the metric store (a scrape, an OTLP push, a test's ``value``) an
    observer adds what the tallies gained since the last read to the counter's
    series, so every read is exact. A finished thread's tally is folded in once
    and dropped.

    ``enabled`` is false when telemetry is not running or the logs plugin is not
    loaded in it: nothing is counted then.
    """

    __slots__ = (
        "_lock",
        "_metric",
        "_pushed",
        "_retired",
        "_tallies",
        "emitter",
        "enabled",
        "local",
    )

    def __init__(self, telemetry: Telemetry) -> None:
        store = telemetry.store
        self.enabled = telemetry.enabled and LOG_EMISSIONS.name in store
        self._metric = store.get(LOG_EMISSIONS.name) if self.enabled else None
        self.emitter = telemetry.log_emitter if self.enabled else None
        """Where structlog events not bound for ``logging`` are exported, if anywhere."""
        self._lock = threading.Lock()
        self.local = threading.local()
        """``local.tally``: this thread's counts, by level number or method name."""
        self._tallies: list[tuple[threading.Thread, dict[int | str, int]]] = []
        self._retired: dict[str, int] = {}
        self._pushed: dict[str, int] = {}
        if self.enabled:
            store.add_observer(self.push)

    def tally(self) -> dict[int | str, int]:
        """This thread's tally, made on its first log line."""
        tally: dict[int | str, int] = {}
        with self._lock:
            self._tallies.append((threading.current_thread(), tally))
        self.local.tally = tally
        return tally

    def push(self) -> None:
        """Add to the counter what the tallies gained since the last push."""
        metric = self._metric
        if metric is None:
            return
        with self._lock:
            totals = dict(self._retired)
            alive = []
            for thread, tally in self._tallies:
                finished = not thread.is_alive()
                for key, n in tally.copy().items():
                    label = _label_of(key)
                    totals[label] = totals.get(label, 0) + n
                    if finished:
                        self._retired[label] = self._retired.get(label, 0) + n
                if not finished:
                    alive.append((thread, tally))
            self._tallies = alive
            for label, total in totals.items():
                delta = total - self._pushed.get(label, 0)
                if delta > 0:
                    metric.labels(label).inc(delta)
                    self._pushed[label] = total


def _label_of(key: int | str) -> str:
    if isinstance(key, int):
        return level_label(logging.getLevelName(key))
    return level_label(key)


counts: TelemetryBinding[Counts] = TelemetryBinding(Counts)
"""The :class:`Counts` of the running telemetry."""
