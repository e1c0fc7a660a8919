"""Log records to the running telemetry's log pipeline (OTLP with limelight-otlp).

:class:`TelemetryHandler` converts each ``logging`` record it handles into an
OpenTelemetry log record: severity (number and text), body (the formatted
message), attributes (the record's ``extra`` fields and ``code.*``), the
exception fields of ``exc_info`` and the trace context the record was stamped
with where it was made. Instrumented, ``logging`` gets one on the root logger
while a telemetry whose plugins take log records runs (and only then, so a
process with nothing configured keeps ``logging``'s last-resort handler);
``dictConfig``, ``fileConfig`` and ``basicConfig`` keep it there.

A record is left out when it is made in a suppressed context (an exporter's
own export, whatever it logs) or while this handler is already converting one
in the same thread: nothing an export logs comes back as a log record.
structlog events that do not go on to ``logging`` are handed over by
:func:`~limelight_logs.add_trace_context` (:func:`emit_event`).
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from limelight import Telemetry
from limelight.semconv import CODE_FILE_PATH, CODE_FUNCTION_NAME, CODE_LINE_NUMBER
from limelight.surface import (
    SUPPRESS_INSTRUMENTATION_KEY,
    TelemetryBinding,
    current_context,
    current_span,
)

from ._context import FIELDS, level_label, report_failure

if TYPE_CHECKING:
    # only named in annotations: the logs SDK behind it is loaded when records are exported
    from limelight.surface import LogEmitter

__all__ = [
    "TelemetryHandler",
    "attach",
    "attached",
    "detach",
    "emit_event",
    "severity_number",
]


def _emitter(telemetry: Telemetry) -> LogEmitter | None:
    return telemetry.log_emitter


emitters: TelemetryBinding[LogEmitter | None] = TelemetryBinding(_emitter)
"""The running telemetry's :class:`~limelight.surface.LogEmitter`, ``None`` without one."""

_converting: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "limelight_logs_converting", default=False
)

# the attributes every LogRecord has (what logging.makeRecord sets), never exported as such
_RESERVED = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None, None, None))
) | frozenset(("message", "asctime", *FIELDS))

_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_BASES = ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5))


def severity_number(levelno: int) -> int:
    """The OpenTelemetry severity number of a ``logging`` level, as the SDK maps it:
    ``DEBUG`` 5, ``INFO`` 9, ``WARNING`` 13, ``ERROR`` 17, ``CRITICAL`` 21, the three
    levels above each one its next numbers; below ``DEBUG`` unspecified (0)."""
    for floor, number in _BASES:
        if levelno >= floor:
            return min(number + min(levelno - floor, 3), 24)
    return 0


_METHOD_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _value(value: Any) -> Any:
    """An attribute value OTLP takes: primitives as they are, anything else as its text."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | bool | int | float) for v in value
    ):
        return list(value)
    return str(value)


def _ids(fields: tuple[Any, Any, Any]) -> tuple[int, int, int]:
    """The ids of the stamped fields, or of the current span when there are none."""
    trace_id, span_id, flags = fields
    if trace_id:
        return int(trace_id, 16), int(span_id, 16), int(flags or "0", 16)
    ctx = current_span().get_span_context()
    if ctx.is_valid:
        return ctx.trace_id, ctx.span_id, int(ctx.trace_flags)
    return 0, 0, 0


def _exception(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if exc_info is True:
        return sys.exc_info()[1]
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        found = exc_info[1]
        return found if isinstance(found, BaseException) else None
    return None


def _left_out() -> bool:
    """True in a suppressed context (an export's own lines) or while converting already."""
    return bool(current_context().get(SUPPRESS_INSTRUMENTATION_KEY)) or _converting.get()


class TelemetryHandler(logging.Handler):
    """Hands every record it handles to the running telemetry's log pipeline.

    Nothing happens while no running telemetry takes log records (no exporter
    plugin for them, or telemetry stopped). :func:`limelight_logs.instrument`
    puts one on the root logger while one does; add it yourself to a logger that
    does not propagate, or from a ``dictConfig``
    (``{"()": "limelight_logs.TelemetryHandler"}``).

    With a formatter, the body is the formatted line; without one, the message.
    """

    def handle(self, record: logging.LogRecord) -> Any:
        # no handler lock: converting is thread-safe and the pipeline queues
        rv = self.filter(record)
        if rv:
            self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        emitter = emitters.get()
        if emitter is None or _left_out():
            return
        token = _converting.set(True)
        try:
            self._emit(emitter, record)
        except Exception as exc:
            report_failure("log record export", exc)
        finally:
            _converting.reset(token)

    def _emit(self, emitter: LogEmitter, record: logging.LogRecord) -> None:
        values = record.__dict__
        attributes: dict[str, Any] = {
            key: _value(value)
            for key, value in values.items()
            if key not in _RESERVED and not key.startswith("_")
        }
        msg = record.msg
        if isinstance(msg, Mapping) and not record.args:
            # a structlog event dict (ProcessorFormatter.wrap_for_formatter): its keys
            body: Any = str(msg.get("event", ""))
            for key, value in msg.items():
                if key != "event" and key not in FIELDS and not str(key).startswith("_"):
                    attributes[str(key)] = _value(value)
        elif self.formatter is not None:
            body = self.format(record)
        else:
            body = record.getMessage()
        attributes[CODE_FILE_PATH] = record.pathname
        attributes[CODE_FUNCTION_NAME] = record.funcName
        attributes[CODE_LINE_NUMBER] = record.lineno
        trace_id, span_id, flags = _ids(
            (values.get("trace_id"), values.get("span_id"), values.get("trace_flags"))
        )
        emitter.emit(
            record.name,
            timestamp=int(record.created * 1e9),
            severity_number=severity_number(record.levelno),
            severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
            body=body,
            attributes=attributes,
            trace_id=trace_id,
            span_id=span_id,
            trace_flags=flags,
            exception=_exception(record.exc_info),
        )


def emit_event(
    emitter: LogEmitter, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> None:
    """Hand a structlog event (one that does not go on to ``logging``) to *emitter*."""
    if _left_out():
        return
    token = _converting.set(True)
    try:
        label = level_label(method_name)
        levelno = _METHOD_LEVELS.get(label, logging.INFO)
        attributes = {
            str(key): _value(value)
            for key, value in event_dict.items()
            if key not in ("event", "exc_info", *FIELDS) and not str(key).startswith("_")
        }
        trace_id, span_id, flags = _ids(
            (event_dict.get("trace_id"), event_dict.get("span_id"), event_dict.get("trace_flags"))
        )
        emitter.emit(
            str(event_dict.get("logger") or getattr(logger, "name", None) or "structlog"),
            timestamp=time.time_ns(),
            severity_number=severity_number(levelno),
            severity_text=_SEVERITY_TEXT.get(label.upper(), label.upper()),
            body=str(event_dict.get("event", "")),
            attributes=attributes,
            trace_id=trace_id,
            span_id=span_id,
            trace_flags=flags,
            exception=_exception(event_dict.get("exc_info")),
        )
    except Exception as exc:
        report_failure("structlog event export", exc)
    finally:
        _converting.reset(token)


# -- the root logger's handler ----------------------------------------------------------

_root_handler = TelemetryHandler()


def attached() -> bool:
    """Whether a :class:`TelemetryHandler` is on the root logger."""
    return any(isinstance(h, TelemetryHandler) for h in logging.getLogger().handlers)


def attach() -> None:
    """Put limelight's :class:`TelemetryHandler` on the root logger, unless one is there."""
    if not attached():
        logging.getLogger().addHandler(_root_handler)


def detach() -> None:
    """Take limelight's own :class:`TelemetryHandler` off the root logger."""
    logging.getLogger().removeHandler(_root_handler)
