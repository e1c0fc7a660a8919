"""limelight's own log lines: structlog events handed to the standard library's logging.

:func:`get_logger` gives a structlog ``BoundLogger`` (structlog's stdlib
integration, :class:`structlog.stdlib.BoundLogger`) over
``logging.getLogger(name)`` (``"limelight"``, ``"limelight.http"``, ...). An
event below that logger's effective level is dropped before anything is
rendered, so limelight logs at the level the application gave ``logging``: its
own ``logging.getLogger("limelight").setLevel(...)``, the root logger's level
(``logging.basicConfig``, a ``dictConfig``), or, with nothing configured, the
standard library's default of ``WARNING``, with warnings reaching stderr
through its last-resort handler. A server's ``--log-level`` sets the server's
own loggers, not limelight's: under ``uvicorn --log-level warning`` limelight's
debug and info lines stay silent, as the application asked.

limelight never configures structlog for the process. When the application
has configured it (``structlog.configure``), its processors render limelight's
events too, so they read like the application's own lines (a
``ProcessorFormatter`` set-up included) and ``structlog.testing.capture_logs``
sees them; otherwise the message is the event followed by its ``key=value``
pairs (``stopping telemetry reason=SIGTERM``), with ``exc_info`` handed to
``logging`` to render. A processor chain that fails on an event (a set-up made
for another logger type) falls back to that rendering: a log line never raises
into the caller. limelight does not import structlog itself: an application
that configured it has, and otherwise limelight's own rendering needs none of it.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

__all__ = ["Logger", "get_logger"]


def _render(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> tuple[Any, Any]:
    """The last processor of limelight's own chain: ``logging`` call arguments."""
    exc_info = event_dict.pop("exc_info", None)
    stack_info = bool(event_dict.pop("stack_info", False))
    message = str(event_dict.pop("event", ""))
    fields = " ".join(
        f"{key}={value if isinstance(value, str) else repr(value)}"
        for key, value in event_dict.items()
    )
    kwargs: dict[str, Any] = {"stack_info": stack_info}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (f"{message} {fields}" if fields else message,), kwargs


def _format_positional(event: str, args: tuple[Any, ...]) -> str:
    """*event* with ``%``-style *args*, as structlog's ``PositionalArgumentsFormatter``."""
    if not args:
        return event
    if len(args) == 1 and isinstance(args[0], dict) and args[0]:
        return event % args[0]
    return event % args


class Logger:
    """A limelight logger: each event goes through a structlog
    :class:`~structlog.stdlib.BoundLogger` over the standard library logger
    :attr:`stdlib`, once that logger is enabled for the event's level.

    The methods are those of ``logging.Logger`` with structlog's signature
    (``warning("event", key=value)``); :meth:`bind` adds context.
    """

    __slots__ = ("_context", "stdlib")

    def __init__(self, stdlib: logging.Logger, context: dict[str, Any] | None = None) -> None:
        self.stdlib = stdlib
        """The standard library logger events go to (its level decides)."""
        self._context: dict[str, Any] = dict(context or {})

    def bind(self, **values: Any) -> Logger:
        """A logger adding *values* to every event."""
        return Logger(self.stdlib, {**self._context, **values})

    def _emit(self, level: int, method: str, event: str, args: tuple[Any, ...], kw: Any) -> None:
        if not self.stdlib.isEnabledFor(level):
            return
        # an application that configured structlog has imported it; limelight never
        # imports it for a line of its own (structlog and what it pulls in cost tens of
        # milliseconds at start)
        structlog = sys.modules.get("structlog")
        if structlog is not None and structlog.is_configured():
            try:
                processors = structlog.get_config()["processors"]
                bound = structlog.stdlib.BoundLogger(self.stdlib, processors, dict(self._context))
                getattr(bound, method)(event, *args, **kw)
                return
            except Exception:  # a chain made for another logger type: limelight's own
                pass
        event_dict: dict[str, Any] = {**self._context, **kw}
        try:
            event_dict["event"] = _format_positional(event, args)
        except Exception:  # arguments that do not fit the format: the event as given
            event_dict["event"] = event
        call_args, call_kwargs = _render(self.stdlib, method, event_dict)
        getattr(self.stdlib, method)(*call_args, **call_kwargs)

    def debug(self, event: str, *args: Any, **kw: Any) -> None:
        """Log *event* at ``DEBUG``."""
        self._emit(logging.DEBUG, "debug", event, args, kw)

    def info(self, event: str, *args: Any, **kw: Any) -> None:
        """Log *event* at ``INFO``."""
        self._emit(logging.INFO, "info", event, args, kw)

    def warning(self, event: str, *args: Any, **kw: Any) -> None:
        """Log *event* at ``WARNING``."""
        self._emit(logging.WARNING, "warning", event, args, kw)

    def error(self, event: str, *args: Any, **kw: Any) -> None:
        """Log *event* at ``ERROR``."""
        self._emit(logging.ERROR, "error", event, args, kw)

    def exception(self, event: str, *args: Any, **kw: Any) -> None:
        """Log *event* at ``ERROR`` with the exception being handled."""
        kw.setdefault("exc_info", True)
        self._emit(logging.ERROR, "error", event, args, kw)

    def critical(self, event: str, *args: Any, **kw: Any) -> None:
        """Log *event* at ``CRITICAL``."""
        self._emit(logging.CRITICAL, "critical", event, args, kw)


def get_logger(name: str = "limelight") -> Logger:
    """limelight's logger *name* (``"limelight"`` or ``"limelight.<plugin>"``)."""
    return Logger(logging.getLogger(name))
