"""Reporting a failure of instrumentation itself: once per place, never to the caller."""

from __future__ import annotations

from ._log import get_logger
from ._logbound import bound
from ._state import STATE

__all__ = ["error_type", "report_failure"]

_log = get_logger("limelight")


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
    with STATE.reporting_lock:
        seen = STATE.reported_failures
        if key in seen:
            return
        seen.add(key)
    _log.error(
        "instrumentation failed; the instrumented call is unaffected",
        component=component,
        where=where,
        error=bound(repr(exc), 500),  # an exception may carry request input
    )


def error_type(exc: BaseException) -> str:
    """The ``error.type`` of an exception: its fully qualified class name.

    As the semantic conventions ask (``shop.PaymentError``); a built-in
    exception keeps its bare name (``KeyError``). Every surface and the
    ``exception.type`` of recorded exceptions use it, so one failure reads the
    same everywhere.
    """
    cls = type(exc)
    module = cls.__module__
    return (
        cls.__qualname__ if not module or module == "builtins" else f"{module}.{cls.__qualname__}"
    )
