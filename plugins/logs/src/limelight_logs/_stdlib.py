"""The standard library's ``logging``: the ids on every record a logger handles, and its count.

Instrumented, ``logging.Logger.handle`` (every record a logger makes goes
through it once, in the thread that logged, before the logger's filters and
any handler) stamps the record with ``trace_id``, ``span_id`` and
``trace_flags`` and counts it in ``log_emissions_total``. The stamp happens
after the record is made, so a record given its own ``trace_id`` through
``extra=`` keeps it (``logging`` refuses an ``extra`` key the record already
has: a record factory setting the fields would make such a call raise). Where
the configuration is not limelight's to change, :class:`TraceContextFilter`
adds the same fields from a ``dictConfig`` or a handler of your own.
"""

from __future__ import annotations

import logging
from typing import Any

from limelight.surface import Instrumentor, Patches, current_context

from . import _context as context_module
from ._context import NO_TRACE, report_failure, trace_fields
from ._export import attach, attached, detach, emitters

__all__ = ["TraceContextFilter", "install", "remove", "stamp"]


def stamp(record: logging.LogRecord) -> None:
    """Give *record* ``trace_id``, ``span_id`` and ``trace_flags`` from the current span
    (empty strings outside one), keeping any of them it already has."""
    values = record.__dict__
    if "trace_id" not in values:
        values["trace_id"], values["span_id"], values["trace_flags"] = trace_fields()
        return
    # the application set some of them itself (extra=): fill in only what is missing
    fields = trace_fields() if values["trace_id"] else NO_TRACE
    values.setdefault("span_id", fields[1])
    values.setdefault("trace_flags", fields[2])


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id`` and ``trace_flags`` to every record it sees.

    The current span's ids in lowercase hex; empty strings outside a span, so a
    format such as ``"%(message)s trace_id=%(trace_id)s"`` never fails. A record
    that already has them (stamped where it was made, or through ``extra=``)
    keeps its own: on a handler behind a ``QueueHandler`` the ids stay those of
    the thread that logged. Every record passes. Usable from ``dictConfig``::

        "filters": {"trace": {"()": "limelight_logs.TraceContextFilter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["trace"]}},

    Counting is not its business (a record crosses several filters):
    :func:`limelight_logs.instrument` counts every record once as it is made.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            stamp(record)
        except Exception as exc:
            report_failure("filter", exc)
        return True


class _Installed:
    """Whether ``logging`` is instrumented, read by the structlog processor: a structlog
    event that becomes a ``logging`` record is counted as that record, once."""

    @property
    def active(self) -> bool:
        return context_module._logging_instrumented


installed = _Installed()


def install(patches: Patches) -> None:
    """Wrap ``logging.Logger.handle`` (through *patches*, so removal restores it)."""
    original = logging.Logger.handle
    # the hot path's names bound once: locals of the closure, and the module whose
    # _last (the last line's context and fields) is read without a call
    cx = context_module
    context_now = current_context
    entry = context_module.entry
    counters = context_module.COUNTERS
    count_new = context_module.count_new

    def handle(self: logging.Logger, record: logging.LogRecord) -> Any:
        if not self.disabled:
            try:
                values = record.__dict__
                if "trace_id" not in values:
                    # the last line's fields, without a call, in the same context
                    last = cx._last
                    if last[0] is not context_now():
                        last = entry()
                    values["trace_id"], values["span_id"], values["trace_flags"] = last[2]
                elif "span_id" not in values or "trace_flags" not in values:
                    stamp(record)
                try:
                    next(counters[record.levelno])
                except KeyError:
                    count_new(record.levelno)
            except Exception as exc:
                report_failure("record", exc)
        return original(self, record)

    handle.__doc__ = original.__doc__
    handle.__wrapped__ = original  # type: ignore[attr-defined]
    patches.wrap(logging.Logger, "handle", handle)

    # a configuration made later replaces the root logger's handlers: limelight's
    # TelemetryHandler, when it was there, is put back after it (logging.config's
    # functions once the application imports it: most never do)
    patches.wrap(logging, "basicConfig", _keeping_handler(logging.basicConfig))
    _config_functions.instrument_on_import("logs")
    context_module.set_logging_instrumented(True)
    if emitters.get() is not None:
        attach()


def _install_config_functions(patches: Patches) -> None:
    import logging.config as logging_config

    for name in ("dictConfig", "fileConfig"):
        patches.wrap(logging_config, name, _keeping_handler(getattr(logging_config, name)))


_config_functions = Instrumentor("logging.config", _install_config_functions)
"""``logging.config.dictConfig`` and ``fileConfig``, wrapped while ``logging`` is
instrumented (when ``logging.config`` is imported)."""


def _keeping_handler(configure: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        had = attached()
        try:
            return configure(*args, **kwargs)
        finally:
            if had and emitters.get() is not None:
                attach()

    wrapper.__doc__ = configure.__doc__
    wrapper.__wrapped__ = configure  # type: ignore[attr-defined]
    return wrapper


def remove() -> None:
    """Undo what :func:`install` did besides its patches."""
    context_module.set_logging_instrumented(False)
    _config_functions.uninstrument()
    detach()
