"""Per-slot instruments, bound once per telemetry start, and the one place errors are counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from opentelemetry import trace

from limelight import Telemetry
from limelight.surface import TelemetryBinding
from limelight.surface import report_failure as _report_failure

from ._plugin import CDC_CHANGES, CDC_ERRORS, CDC_LAST_FEEDBACK, ERROR_KINDS, LIMELIGHT_CDC_SPANS

__all__ = ["SlotInstruments", "count_error", "report_failure", "slot_binding"]

_now = time.time


def report_failure(where: str, exc: BaseException) -> None:
    """Log, once per place and exception type, that recording failed; the stream is unaffected."""
    _report_failure("cdc", where, exc)


def _noop(amount: float = 1) -> None:
    return None


class SlotInstruments:
    """The bound metric children of one slot for one telemetry start.

    ``active`` is false when telemetry is not running (or disabled) or the cdc
    plugin is not loaded; every method then does nothing.
    """

    __slots__ = (
        "_errors",
        "_feedback",
        "active",
        "delete",
        "insert",
        "slot",
        "spans",
        "tracer",
        "truncate",
        "update",
    )

    def __init__(self, slot: str, telemetry: Telemetry | None) -> None:
        self.slot = slot
        store = telemetry.store if telemetry is not None else None
        self.active = bool(
            telemetry is not None
            and telemetry.enabled
            and store is not None
            and CDC_CHANGES.name in store
        )
        self.insert: Callable[..., None] = _noop
        self.update: Callable[..., None] = _noop
        self.delete: Callable[..., None] = _noop
        self.truncate: Callable[..., None] = _noop
        self._errors: dict[str, Callable[..., None]] = {}
        self._feedback: Callable[[float], None] | None = None
        self.spans = False
        self.tracer: trace.Tracer | None = None
        if not self.active or telemetry is None or store is None:
            return
        changes = store.get(CDC_CHANGES.name)
        self.insert = changes.labels(slot, "insert").inc
        self.update = changes.labels(slot, "update").inc
        self.delete = changes.labels(slot, "delete").inc
        self.truncate = changes.labels(slot, "truncate").inc
        errors = store.get(CDC_ERRORS.name)
        # every kind exists from the start, so an error rate is defined before the first error
        self._errors = {kind: errors.labels(slot, kind).inc for kind in ERROR_KINDS}
        self._feedback = store.get(CDC_LAST_FEEDBACK.name).labels(slot).set
        self.spans = bool(telemetry.config.get(LIMELIGHT_CDC_SPANS))
        self.tracer = telemetry.tracer("limelight_cdc")

    def error(self, kind: str) -> None:
        """Count one failure of *kind* (one of :data:`~limelight_cdc.ERROR_KINDS`)."""
        inc = self._errors.get(kind)
        if inc is not None:
            inc()

    def feedback(self) -> None:
        """Record that the consumer sent feedback now."""
        if self._feedback is not None:
            self._feedback(_now())


_SLOTS: dict[str, TelemetryBinding[SlotInstruments]] = {}
_SLOTS_LOCK = threading.Lock()


def _build(slot: str) -> Callable[[Telemetry], SlotInstruments]:
    def build(telemetry: Telemetry) -> SlotInstruments:
        try:
            return SlotInstruments(slot, telemetry)
        except Exception as exc:  # never let instrumentation break the stream
            report_failure("cdc binding", exc)
            return SlotInstruments(slot, None)

    return build


def slot_binding(slot: str) -> TelemetryBinding[SlotInstruments]:
    """The process-wide binding of *slot*'s instruments (shared by every stream of the slot)."""
    binding = _SLOTS.get(slot)
    if binding is None:
        with _SLOTS_LOCK:
            binding = _SLOTS.get(slot)
            if binding is None:
                binding = TelemetryBinding(_build(slot))
                _SLOTS[slot] = binding
    return binding


def count_error(slot: str, kind: str) -> None:
    """Count one failure in ``cdc_errors_total``: the one place every failing path goes through.

    Never raises: a failure to count is reported once and swallowed.
    """
    try:
        slot_binding(slot).get().error(kind)
    except Exception as exc:
        report_failure("cdc errors", exc)
