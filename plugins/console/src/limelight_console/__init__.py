"""limelight-console: traces and metrics on stderr, for development.

Installed, every trace is printed as an indented tree with durations when its
root span ends, and a summary of the metric store is printed when telemetry
stops. Select it with ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``
(name ``console``) like any exporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._console import MAX_PENDING_SPANS, ConsoleMetricsSummary, ConsoleSpanProcessor
    from ._plugin import LIMELIGHT_CONSOLE_ATTRIBUTES, ConsolePlugin, plugin
    from ._render import format_duration, render_metrics, render_trace


__all__ = [
    "LIMELIGHT_CONSOLE_ATTRIBUTES",
    "MAX_PENDING_SPANS",
    "ConsoleMetricsSummary",
    "ConsolePlugin",
    "ConsoleSpanProcessor",
    "format_duration",
    "plugin",
    "render_metrics",
    "render_trace",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._console": (
            "MAX_PENDING_SPANS",
            "ConsoleMetricsSummary",
            "ConsoleSpanProcessor",
        ),
        "._plugin": (
            "LIMELIGHT_CONSOLE_ATTRIBUTES",
            "ConsolePlugin",
            "plugin",
        ),
        "._render": (
            "format_duration",
            "render_metrics",
            "render_trace",
        ),
    },
)
