"""structlog: a processor adding the trace context, placed before the renderer.

:func:`add_trace_context` is an ordinary structlog processor. Instrumented,
structlog's configured chain gets it just before its last processor (the
renderer: ``JSONRenderer``, ``ConsoleRenderer``, ``ProcessorFormatter.wrap_for_formatter``,
...), whenever the application configures structlog, before or after
:func:`limelight_logs.instrument`: ``structlog.configure``,
``configure_once`` and ``reset_defaults`` are wrapped to put it back. The
chain is changed in place, so loggers already bound (cached ones included)
see it too.

structlog is imported only when it is instrumented; this module does not
import it.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from limelight.surface import Patches, current_context

from . import _context as _cx
from ._context import COUNTERS, count_new, entry, on_route, report_failure, trace_fields
from ._export import emit_event

__all__ = ["add_trace_context", "ensure_processor", "install", "remove"]

_context_now = current_context
_Logger = logging.Logger

_route: set[type] | None = None
""":data:`limelight_logs._context._route`, kept here where the processor reads it."""


def _set_route(route: set[type] | None) -> None:
    global _route
    _route = route


on_route(_set_route)


def add_trace_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id``, ``span_id`` and ``trace_flags`` of the current span.

    Inside a span the event gets the three keys (lowercase hex, as the
    OpenTelemetry specification names them for non-OTLP formats); outside one
    it gets none. Keys the event already has are kept.

    It also counts the event in ``log_emissions_total`` (level from the method
    name: ``warn`` counts as ``warning``, ``exception`` as ``error``), except
    when the event goes on to a ``logging`` logger that limelight instruments,
    which counts the record it becomes. In a ``ProcessorFormatter`` chain
    (``foreign_pre_chain``) it takes the ids the record was stamped with where it
    was made, and counts nothing: the record was counted then.
    """
    # the hot path: module globals (read through the interpreter's cache), the ids of
    # the last line's context taken as they are, one C call to count
    try:
        if "_record" not in event_dict:
            last = _cx._last
            if last[0] is not _context_now():
                last = entry()
            route = _route
            if route is None or type(logger) in route:
                try:
                    next(COUNTERS[method_name])
                except KeyError:
                    count_new(method_name)
            else:
                _routed(route, logger, method_name, event_dict)
            fields = last[2]
        else:
            fields = _record_fields(event_dict["_record"])
        if fields[0] and "trace_id" not in event_dict:
            event_dict["trace_id"], event_dict["span_id"], event_dict["trace_flags"] = fields
    except Exception as exc:
        report_failure("structlog event", exc)
    return event_dict


def _routed(
    route: set[type], logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> None:
    """An event whose logger's class is not in *route* (:data:`_route`) yet, while
    ``logging`` is instrumented or the counting telemetry exports log records.

    An event for a ``logging`` logger is counted (and exported) as the record it becomes
    while ``logging`` is instrumented. While the counting telemetry exports log
    records, any other event is handed over and counted, and *route* stays empty.
    Otherwise the event is counted and its logger's class added to *route*: that
    class's next events are counted at once.
    """
    is_logging = isinstance(logger, _Logger)
    if is_logging and _cx._logging_instrumented:
        return
    emitter = _cx._emitter
    if emitter is None:
        route.add(type(logger))
    elif not is_logging:
        emit_event(emitter, logger, method_name, event_dict)
    count_new(method_name)


def _record_fields(record: Any) -> tuple[str, str, str]:
    """In a ``ProcessorFormatter`` chain: the fields the record was stamped with where it
    was made (the current span's when it was not stamped)."""
    if isinstance(record, logging.LogRecord) and "trace_id" in record.__dict__:
        return (
            str(record.__dict__["trace_id"]),
            str(getattr(record, "span_id", "")),
            str(getattr(record, "trace_flags", "")),
        )
    return trace_fields()


def ensure_processor(processors: Any) -> Any:
    """*processors* with :func:`add_trace_context` before its last item (the renderer).

    A list is changed in place and returned; another sequence comes back as a
    new list; a chain that already holds the processor is returned as it is.
    """
    if any(p is add_trace_context for p in processors):
        return processors
    chain = processors if isinstance(processors, list) else list(processors)
    chain.insert(max(len(chain) - 1, 0), add_trace_context)
    return chain


def _place(configure: Any) -> None:
    """Put the processor in structlog's current chain (*configure*: the original function)."""
    import structlog

    processors = structlog.get_config()["processors"]
    placed = ensure_processor(processors)
    if placed is not processors:
        configure(processors=placed)


def install(patches: Patches) -> None:
    """Place the processor, and keep it placed when the application configures structlog."""
    import structlog
    import structlog._config as config_module

    configure = config_module.configure

    def after(original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            try:
                _place(configure)
            except Exception as exc:
                report_failure("structlog configure", exc)
            return result

        wrapper.__doc__ = original.__doc__
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        return wrapper

    for name in ("configure", "configure_once", "reset_defaults"):
        original = getattr(config_module, name)
        wrapped = after(original)
        patches.wrap(config_module, name, wrapped)  # what configure_once calls
        if getattr(structlog, name, None) is original:
            patches.wrap(structlog, name, wrapped)
    _place(configure)


def remove() -> None:
    """Take the processor out of structlog's current chain."""
    import structlog

    processors = structlog.get_config()["processors"]
    if isinstance(processors, list):
        while add_trace_context in processors:
            processors.remove(add_trace_context)
    elif any(p is add_trace_context for p in processors):
        # the original configure: the wrapped one would put the processor back
        configure = getattr(structlog.configure, "__wrapped__", structlog.configure)
        configure(processors=[p for p in processors if p is not add_trace_context])
