"""limelight-logs: the trace context in every log line, and log lines counted.

Inside a span, every ``logging`` record and every structlog event gets
``trace_id``, ``span_id`` and ``trace_flags`` (lowercase hex, the names the
OpenTelemetry specification gives them for non-OTLP formats); every one is
counted in ``log_emissions_total{level}``; where an exporter takes log records
(limelight-otlp), each record is exported with its trace context::

    import limelight
    import limelight_logs

    limelight.start(service_name="shop")  # instruments logging and structlog
    limelight_logs.is_instrumented("logging")  # True

    limelight_logs.uninstrument()  # logging and structlog exactly as they were
    limelight_logs.instrument("structlog")  # one of them again

For a ``dictConfig`` or a handler of your own, :class:`TraceContextFilter`
adds the fields; for a structlog chain of your own (a ``ProcessorFormatter``'s
``foreign_pre_chain``), :func:`add_trace_context`. See ``docs/plugins/logs.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._context import FIELDS, NO_TRACE, trace_fields
    from ._export import TelemetryHandler, severity_number
    from ._instrumentation import instrument, is_instrumented, uninstrument
    from ._plugin import LIBRARIES, LIMELIGHT_LOGS_INSTRUMENT, LOG_EMISSIONS, LogsPlugin, plugin
    from ._stdlib import TraceContextFilter
    from ._structlog import add_trace_context


__all__ = [
    "FIELDS",
    "LIBRARIES",
    "LIMELIGHT_LOGS_INSTRUMENT",
    "LOG_EMISSIONS",
    "NO_TRACE",
    "LogsPlugin",
    "TelemetryHandler",
    "TraceContextFilter",
    "add_trace_context",
    "instrument",
    "is_instrumented",
    "plugin",
    "severity_number",
    "trace_fields",
    "uninstrument",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._context": (
            "FIELDS",
            "NO_TRACE",
            "trace_fields",
        ),
        "._export": (
            "TelemetryHandler",
            "severity_number",
        ),
        "._instrumentation": (
            "instrument",
            "is_instrumented",
            "uninstrument",
        ),
        "._plugin": (
            "LIBRARIES",
            "LIMELIGHT_LOGS_INSTRUMENT",
            "LOG_EMISSIONS",
            "LogsPlugin",
            "plugin",
        ),
        "._stdlib": ("TraceContextFilter",),
        "._structlog": ("add_trace_context",),
    },
)
