"""Keep the OTLP exporters' own failure logs to one per failure episode.

The OpenTelemetry OTLP exporters log every failed attempt (and every retry).
With an endpoint down that is a warning per batch, forever. limelight counts
each failure in ``limelight_export_errors_total`` and warns once when
failures start; this gate lets the exporter's first record of an episode
through (it carries the reason) and drops the rest until an export succeeds.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["LogGate", "gate_for"]

_GATES: dict[str, LogGate] = {}
_LOCK = threading.Lock()


class LogGate(logging.Filter):
    """Passes the first warning or error of each failure episode; debug and info always pass."""

    def __init__(self) -> None:
        super().__init__()
        self._passed = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if self._passed:
            return False
        self._passed = True
        return True

    def reset(self) -> None:
        """An export succeeded: the next failure is a new episode and is logged."""
        self._passed = False


def gate_for(*logger_names: str) -> LogGate:
    """The gate installed on these loggers (one shared gate per first name), reopened.

    Called when exporters are built, so each telemetry start begins a new episode.
    """
    with _LOCK:
        gate = _GATES.get(logger_names[0])
        if gate is None:
            gate = _GATES[logger_names[0]] = LogGate()
        for name in logger_names:
            logging.getLogger(name).addFilter(gate)  # no-op when already there
        gate.reset()
        return gate
