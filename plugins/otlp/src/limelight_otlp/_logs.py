"""Keep the OTLP exporters' own failure logs to one per signal and failure episode.

The OpenTelemetry OTLP exporters log every failed attempt (and every retry).
With an endpoint down that is a warning per batch, forever. limelight counts
each failure in ``limelight_export_errors_total`` and warns once when
failures start; the gate of a signal lets its exporter's first record of an
episode through (it carries the reason) and drops the rest until an export of
that signal succeeds.

The two gRPC exporters log through one logger, their shared base module's, so
a record cannot be told apart by its logger. Each export runs under its
signal's gate (:meth:`LogGate.exporting`), and a router on every exporter
logger sends the records logged meanwhile in that thread to that gate: a span
export that succeeds reopens only the traces gate, and a span failure never
uses up the first metric warning. On the shared logger the router also takes
over OpenTelemetry's own ``DuplicateFilter``, which drops a record repeating
the previous one's message template whatever the signal (the second signal's
first failure, since both log the same template); it still applies to records
logged outside a limelight export.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = ["LogGate", "gate_for"]

_GATES: dict[str, LogGate] = {}
_ROUTERS: dict[str, _Router] = {}
_LOCK = threading.Lock()
_ACTIVE = threading.local()


class LogGate(logging.Filter):
    """One signal's gate: passes the first warning or error of each failure episode;
    debug and info always pass.

    :param signal: ``traces`` or ``metrics``.
    """

    def __init__(self, signal: str = "") -> None:
        super().__init__()
        self.signal = signal
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

    @contextmanager
    def exporting(self) -> Iterator[None]:
        """Route what the exporter logs in this thread meanwhile to this gate."""
        previous = getattr(_ACTIVE, "gate", None)
        _ACTIVE.gate = self
        try:
            yield
        finally:
            _ACTIVE.gate = previous


def _is_duplicate_filter(f: object) -> bool:
    kind = type(f)
    return kind.__name__ == "DuplicateFilter" and kind.__module__.startswith("opentelemetry")


class _Router(logging.Filter):
    """On one exporter logger: a record logged during a gated export goes to that gate.

    Other records go to *fallback* (the logger's own signal's gate), or, on a
    logger shared by signals, through the OpenTelemetry filters it took over.
    """

    def __init__(self, fallback: LogGate | None, taken: Sequence[logging.Filter]) -> None:
        super().__init__()
        self.fallback = fallback
        self._taken = tuple(taken)

    def filter(self, record: logging.LogRecord) -> bool:
        gate: LogGate | None = getattr(_ACTIVE, "gate", None) or self.fallback
        if gate is not None:
            return gate.filter(record)
        return all(f.filter(record) for f in self._taken)

    def take(self, logger: logging.Logger) -> None:
        """Take over the OpenTelemetry filters *logger* has now (an exporter module
        adds its own when it is imported, which may be after the router was put on)."""
        taken = [
            f for f in logger.filters if isinstance(f, logging.Filter) and _is_duplicate_filter(f)
        ]
        for f in taken:
            logger.removeFilter(f)
        self._taken = (*self._taken, *taken)


def _route(name: str, fallback: LogGate | None) -> None:
    router = _ROUTERS.get(name)
    logger = logging.getLogger(name)
    if router is None:
        router = _ROUTERS[name] = _Router(fallback, ())
        logger.addFilter(router)
    elif fallback is not None:
        router.fallback = fallback
    if router.fallback is None:
        router.take(logger)


def gate_for(signal: str, own: Sequence[str], shared: Sequence[str] = ()) -> LogGate:
    """The gate of *signal*, reopened, with routers on its exporter's loggers.

    :param signal: ``traces`` or ``metrics``: one gate per signal.
    :param own: loggers only this signal's exporter logs through; what they log
        outside an export goes to this gate too.
    :param shared: loggers the exporters of several signals log through.

    Called when exporters are set up and again when they are made (at their first
    export: the exporter modules add their own filters when imported), so each
    telemetry start begins a new episode.
    """
    with _LOCK:
        gate = _GATES.get(signal)
        if gate is None:
            gate = _GATES[signal] = LogGate(signal)
        for name in own:
            _route(name, gate)
        for name in shared:
            _route(name, None)
        gate.reset()
        return gate
