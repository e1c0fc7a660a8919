"""Reporting a failure of instrumentation itself: once per place, never to the caller."""

from __future__ import annotations

import threading

import structlog

__all__ = ["report_failure"]

_log = structlog.get_logger("limelight")
_seen: set[tuple[str, str, str]] = set()
_lock = threading.Lock()


def report_failure(component: str, where: str, exc: BaseException) -> None:
    """Log that *component* failed at *where*, once per kind of failure.

    Surfaces call this when their own bookkeeping (or a user hook they run)
    raises: the instrumented call carries on unaffected, and the log says once
    what went wrong instead of once per request.

    :param component: the plugin or part of limelight, for example ``"http"``.
    :param where: the step that failed, for example ``"begin"`` or ``"hook request_attributes"``.
    :param exc: the exception; its type is part of what makes a failure new.
    """
    key = (component, where, type(exc).__qualname__)
    with _lock:
        if key in _seen:
            return
        _seen.add(key)
    _log.error(
        "instrumentation failed; the instrumented call is unaffected",
        component=component,
        where=where,
        error=repr(exc),
    )
