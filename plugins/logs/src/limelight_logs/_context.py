"""A log line's trace context and its count, at the cost a log call can pay.

:func:`trace_fields` gives the current span's ids as the OpenTelemetry
specification writes them in non-OTLP log formats (``trace_id`` 32, ``span_id``
16 and ``trace_flags`` 2 lowercase hex digits), or :data:`NO_TRACE` outside a
span. The ids of the last span asked about are kept with the context it was
found in (:data:`_last`), so the lines a request writes format them once and a
line in the same context as the last one finds them without reading the span:
a context is never changed once made (attaching a span makes a new one), so the
same context object holds the same span.

Every line is counted in :data:`COUNTERS`, one process-wide iterator per level
that each line advances (one C call, atomic, no lock and nothing to look up per
thread or per telemetry). Which telemetry a line counts in is decided outside
the log call: :class:`Counts` takes, for the telemetry it belongs to, what the
iterators advanced while that telemetry was the one counting (from its start,
or from the stop of a telemetry started after it, until its stop) and adds it
to ``log_emissions_total`` before every read of the metric store.
"""

from __future__ import annotations

import itertools
import logging
import operator
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from limelight import Telemetry
from limelight.surface import current_context, current_span
from limelight.surface import report_failure as _report_failure

from ._plugin import LOG_EMISSIONS

if TYPE_CHECKING:
    # only named in annotations: the logs SDK behind it is loaded when records are exported
    from limelight.surface import LogEmitter

__all__ = [
    "COUNTERS",
    "FIELDS",
    "NO_TRACE",
    "Counts",
    "count_new",
    "entry",
    "level_label",
    "on_route",
    "report_failure",
    "set_logging_instrumented",
    "started",
    "stopped",
    "trace_fields",
]

FIELDS: tuple[str, str, str] = ("trace_id", "span_id", "trace_flags")
"""The names of the three fields, as the specification gives them for non-OTLP formats."""

NO_TRACE: tuple[str, str, str] = ("", "", "")
"""The fields of a ``logging`` record made outside a span: empty strings, so a format
string naming them prints nothing there (structlog events get no keys at all)."""

_FLAGS: dict[int, str] = {flags: format(flags, "02x") for flags in range(256)}

_last: tuple[object, object, tuple[str, str, str]] = (None, None, NO_TRACE)
"""``(context, span, fields)`` of the last line: held, so neither object can be freed
and another take its identity while it is kept here."""


def trace_fields() -> tuple[str, str, str]:
    """``(trace_id, span_id, trace_flags)`` of the current span, :data:`NO_TRACE` without one."""
    last = _last
    if last[0] is current_context():
        return last[2]
    return entry()[2]


def entry() -> tuple[object, object, tuple[str, str, str]]:
    """``(context, span, fields)`` of the current context, kept in :data:`_last`."""
    global _last
    context = current_context()
    span = current_span()
    last = _last
    if last[1] is span:
        fields = last[2]
    else:
        ctx = span.get_span_context()
        trace_id = ctx.trace_id
        span_id = ctx.span_id
        if trace_id and span_id:
            # bytes.hex is lowercase and a third of format(..., "032x")'s cost; an id out
            # of its 16 or 8 bytes (never valid) or flags above 0xff go the long way
            try:
                fields = (
                    trace_id.to_bytes(16).hex(),
                    span_id.to_bytes(8).hex(),
                    _FLAGS[ctx.trace_flags],
                )
            except (OverflowError, KeyError):
                fields = _unusual(ctx)
        else:
            fields = NO_TRACE
    last = _last = (context, span, fields)
    return last


def _unusual(ctx: Any) -> tuple[str, str, str]:
    """The fields of a span context whose ids or flags :func:`entry` cannot take as usual."""
    if not ctx.is_valid:
        return NO_TRACE
    return (
        format(ctx.trace_id, "032x"),
        format(ctx.span_id, "016x"),
        format(ctx.trace_flags, "02x"),
    )


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


# -- counting ---------------------------------------------------------------------------

_TIMES = sys.maxsize

COUNTERS: dict[int | str, Iterator[None]] = {}
"""Lines made in this process, by the level number of a ``logging`` record or the
method name of a structlog event: ``next(COUNTERS[key])`` counts one. Each is an
``itertools.repeat`` of ``sys.maxsize`` items, so what it has given is
``sys.maxsize - operator.length_hint(it)``; advancing one is a single C call, which
no other thread can interleave with."""


def count_new(key: int | str) -> None:
    """Count one line of a level no line had before."""
    next(COUNTERS.setdefault(key, itertools.repeat(None, _TIMES)))


def _made() -> dict[int | str, int]:
    """What every counter has given so far."""
    return {key: _TIMES - operator.length_hint(it) for key, it in COUNTERS.copy().items()}


def _label_of(key: int | str) -> str:
    if isinstance(key, int):
        return level_label(logging.getLevelName(key))
    return level_label(key)


class Counts:
    """``log_emissions_total`` of one telemetry start.

    While the telemetry is the one counting (:func:`started` until :func:`stopped`,
    less the time a telemetry started after it counts), the lines the
    :data:`COUNTERS` give are its own. Before every read of the metric store (a
    scrape, an OTLP push, a test's ``value``) an observer adds what they gained
    since the last read to the counter's series, so every read is exact.

    ``enabled`` is false when the telemetry's store has no ``log_emissions_total``
    (another plugin declared it first): nothing is counted then.
    """

    __slots__ = ("_banked", "_base", "_metric", "_pushed", "emitter", "enabled", "telemetry")

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        store = telemetry.store
        self.enabled = LOG_EMISSIONS.name in store
        self._metric: Any = store.get(LOG_EMISSIONS.name) if self.enabled else None
        self.emitter: LogEmitter | None = telemetry.log_emitter if self.enabled else None
        """Where structlog events not bound for ``logging`` are exported, if anywhere."""
        self._base: dict[int | str, int] | None = None
        """What the counters had given when this telemetry began counting (``None``
        while it does not)."""
        self._banked: dict[str, int] = {}
        self._pushed: dict[str, int] = {}
        if self.enabled:
            store.add_observer(self.push)

    def resume(self) -> None:
        """Begin counting (with the lock held)."""
        if self._base is None:
            self._base = _made()

    def pause(self) -> None:
        """Stop counting, keeping what was counted (with the lock held)."""
        base = self._base
        if base is not None:
            self._base = None
            self._bank(_made(), base)

    def _bank(self, made: dict[int | str, int], base: dict[int | str, int]) -> None:
        banked = self._banked
        for key, n in made.items():
            gained = n - base.get(key, 0)
            if gained:
                label = _label_of(key)
                banked[label] = banked.get(label, 0) + gained

    def push(self) -> None:
        """Add to the counter what was counted since the last push."""
        metric = self._metric
        if metric is None:
            return
        with _lock:
            base = self._base
            if base is not None:
                # bank what this period gave so far and go on from here
                made = _made()
                self._bank(made, base)
                self._base = made
            for label, total in self._banked.items():
                delta = total - self._pushed.get(label, 0)
                if delta > 0:
                    metric.labels(label).inc(delta)
                    self._pushed[label] = total

    def after_fork(self) -> None:
        """In a forked child, whose store starts from 0: count only the child's lines."""
        self._banked = {}
        self._pushed = {}
        if self._base is not None:
            self._base = _made()


_lock = threading.Lock()
_running: list[Counts] = []
"""The :class:`Counts` of the running telemetries that loaded the plugin, in the order
they started: the last one counts."""

_emitter: LogEmitter | None = None
"""Where structlog events not bound for ``logging`` are exported: the counting
telemetry's log pipeline, when it has one."""

_logging_instrumented = False
"""Whether ``logging`` is instrumented: a structlog event that becomes a ``logging``
record is then counted (and exported) as that record, once."""


_route: set[type] | None = None
"""Which structlog events the processor counts at once: every one (``None``: ``logging``
is not instrumented and nothing exports log records), or those whose logger's class is
in the set, learnt one class at a time. While ``logging`` is instrumented that is every
class but ``logging.Logger`` and its subclasses (an event for ``logging`` is counted as
the record it becomes); while the counting telemetry exports log records, none (every
event goes the long way, which exports it). A new set whenever that changes."""

_route_listeners: list[Callable[[set[type] | None], None]] = []


def on_route(listener: Callable[[set[type] | None], None]) -> None:
    """Call *listener* with :data:`_route` now and whenever it changes."""
    _route_listeners.append(listener)
    listener(_route)


def _update_route() -> None:
    global _route
    _route = set() if _emitter is not None or _logging_instrumented else None
    for listener in _route_listeners:
        listener(_route)


def started(telemetry: Telemetry) -> None:
    """*telemetry* (starting, with the plugin loaded) counts the lines from now on."""
    global _emitter
    counts = Counts(telemetry)  # its observer added outside the lock a push takes
    with _lock:
        if _running:
            _running[-1].pause()
        _running.append(counts)
        counts.resume()
        _emitter = counts.emitter
        _update_route()


def stopped(telemetry: Telemetry) -> None:
    """*telemetry* (stopping) counts no more lines; the one started before it, if still
    running, counts them again."""
    global _emitter
    with _lock:
        for counts in reversed(_running):
            if counts.telemetry is telemetry:
                counts.pause()
                _running.remove(counts)
                break
        if _running:
            _running[-1].resume()
            _emitter = _running[-1].emitter
        else:
            _emitter = None
        _update_route()


def set_logging_instrumented(active: bool) -> None:
    """Record whether ``logging`` is instrumented (see :data:`_logging_instrumented`)."""
    global _logging_instrumented
    with _lock:
        _logging_instrumented = active
        _update_route()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent thread may have held it at the fork
    for counts in _running:
        counts.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
