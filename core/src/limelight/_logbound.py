"""Log lines caused by request input: bounded in length and in rate.

A library limelight calls on every request may log what the request carried:
OpenTelemetry's baggage propagator warns with the whole ``baggage`` header
(up to 100 kB from an attacker, on every request), the attribute cleaner with
an attribute's key. :class:`BoundedLines` is a :class:`logging.Filter` that
limelight adds to those loggers when it installs the global propagator:

- each kind of line (its logger and its format string) passes once per
  :data:`INTERVAL` seconds; the next one that passes says how many were left
  out meanwhile (``... (37 more like this in the last 60 s)``);
- the rendered message is escaped (``repr`` style: no newline, no terminal
  control sequence reaches the log) and cut after :data:`LIMIT` characters,
  saying how long it was.

The counts live in :data:`limelight._state.STATE` (``log_windows``), so
:func:`limelight._state.reset` starts every kind afresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from ._state import STATE

__all__ = ["INTERVAL", "LIMIT", "REQUEST_INPUT_LOGGERS", "BoundedLines", "bound", "bound_loggers"]

INTERVAL = 60.0
"""Seconds during which one kind of line is logged once."""

LIMIT = 300
"""Characters of a bounded message."""

REQUEST_INPUT_LOGGERS: tuple[str, ...] = (
    "opentelemetry.baggage.propagation",
    "opentelemetry.trace.propagation.tracecontext",
    "opentelemetry.attributes",
    "opentelemetry.propagators.textmap",
    "opentelemetry.baggage",
)
"""OpenTelemetry loggers that log values taken from requests, whatever propagators
are configured (the configured propagators' own modules are added to them)."""


def bound(text: str, limit: int = LIMIT) -> str:
    """*text* escaped (``repr`` without its quotes) and cut after *limit* characters."""
    shown = repr(text[:limit])[1:-1]
    if len(text) > limit:
        shown += f"... ({len(text)} characters)"
    return shown


class BoundedLines(logging.Filter):
    """Lets each kind of record through once per *interval* seconds, bounded.

    :param interval: seconds a kind of record is let through once.
    :param limit: characters of the message kept.
    """

    def __init__(self, interval: float = INTERVAL, limit: int = LIMIT) -> None:
        super().__init__()
        self.interval = interval
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        with STATE.reporting_lock:
            windows = STATE.log_windows
            window = windows.get(key)
            if window is not None and now - window[0] < self.interval:
                windows[key] = (window[0], window[1] + 1)
                return False
            left_out = window[1] if window is not None else 0
            windows[key] = (now, 0)
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format
            message = f"{record.msg!r} {record.args!r}"
        text = bound(message, self.limit)
        if left_out:
            text += f" ({left_out} more like this in the last {self.interval:g} s)"
        record.msg, record.args = text, None
        return True


_FILTER = BoundedLines()


def bound_loggers(names: Iterable[str]) -> None:
    """Add limelight's :class:`BoundedLines` filter to the loggers *names* (once each)."""
    for name in dict.fromkeys((*REQUEST_INPUT_LOGGERS, *names)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, BoundedLines) for f in logger.filters):
            logger.addFilter(_FILTER)
