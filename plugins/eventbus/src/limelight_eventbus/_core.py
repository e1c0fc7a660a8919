"""What the instrumented buses share: topics, subscriber counts, rejections, dispatch spans.

Instruments are bound once per telemetry start (:data:`binding`); the bound
metric children once per topic, so a dispatch costs a dictionary lookup or two.

Subscribers are counted from the bus itself, never from the calls that changed
it: after anything that may have changed a bus (a connect, a disconnect, a weak
receiver collected, the bus itself collected), :func:`changed` asks for the bus
to be counted again, and the gauge moves by the difference between what the
bus holds now and what was counted for it. However a receiver came and went,
the gauge ends equal to what the buses hold.

A weak receiver is disconnected by the garbage collector, in the middle of
whatever code the collection interrupted, possibly this module's own. So a
count is never done under a lock that code could be holding: a request goes
into a queue, and whoever holds the one counting lock (taken without waiting)
works the queue off before letting go. A request made while the lock is held
elsewhere is counted by its holder a moment later; none waits or deadlocks.
"""

from __future__ import annotations

import collections
import importlib.metadata
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from limelight import Telemetry
from limelight import semconv as sc
from limelight.metrics import OVERFLOW_LABEL_VALUE
from limelight.surface import (
    SUPPRESS_INSTRUMENTATION_KEY,
    TelemetryBinding,
    current_context,
    error_type,
    report_failure,
)

from ._plugin import EVENTBUS_REJECTED, EVENTBUS_SUBSCRIBERS, LIMELIGHT_EVENTBUS_SPANS

__all__ = [
    "ALL",
    "ANONYMOUS_TOPIC",
    "ERROR",
    "MAX_TOPIC_LENGTH",
    "NO_RECEIVER",
    "REASONS",
    "TRACER_NAME",
    "BusKind",
    "Dispatch",
    "Instruments",
    "Topic",
    "binding",
    "changed",
    "forget",
    "observe",
    "report",
    "resync_all",
    "signal_name",
    "topic_label",
]

ERROR: Final = "error"
"""Reason: a receiver raised (or, for emitters that run receivers later, failed later)."""
NO_RECEIVER: Final = "no_receiver"
"""Reason: the event was sent and no receiver was called."""
REASONS: Final = (ERROR, NO_RECEIVER)
"""Every value of the ``reason`` label of ``eventbus_rejected_total``."""

ANONYMOUS_TOPIC: Final = "_anonymous"
"""The topic of a blinker ``Signal`` without a name, and of an empty event name."""
MAX_TOPIC_LENGTH: Final = 200
"""Characters of a signal or event name kept in the topic."""
TRACER_NAME: Final = "limelight.eventbus"
OPERATION_TYPE: Final = "process"
"""``messaging.operation.type`` of a dispatch span: the receivers run inside it."""

_CACHE_LIMIT = 1024

_attach = otel_context.attach
_detach = otel_context.detach
_set_span_in_context = trace.set_span_in_context
_get_current_span = trace.get_current_span
_CONSUMER = SpanKind.CONSUMER
_ERROR = StatusCode.ERROR


def report(where: str, exc: BaseException) -> None:
    """Log a failure of the instrumentation once per place; the bus is unaffected."""
    report_failure("eventbus", where, exc)


def _version() -> str | None:
    try:
        return importlib.metadata.version("limelight-eventbus")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return None


def topic_label(name: object) -> str:
    """The ``topic`` label of a signal or event name.

    A string is itself (a ``str`` subclass, a string enum member included, its
    string value), anything else its ``str()``; the empty name is
    :data:`ANONYMOUS_TOPIC`; at most :data:`MAX_TOPIC_LENGTH` characters are kept.
    """
    if type(name) is str:
        label = name
    else:
        try:
            label = str.__str__(name) if isinstance(name, str) else str(name)
        except Exception:  # a name whose str() raises: its type names it
            label = type(name).__name__
    if not label:
        return ANONYMOUS_TOPIC
    return label[:MAX_TOPIC_LENGTH]


class Topic:
    """The bound children and span settings of one topic of one library.

    :attr add: adds to ``eventbus_subscribers_active{topic}``.
    :attr error: counts ``eventbus_rejected_total{topic, reason="error"}``.
    :attr no_receiver: counts ``eventbus_rejected_total{topic, reason="no_receiver"}``.
    :attr meta: the library's own event (pyee's ``new_listener``): not recorded.
    :attr error_event: pyee's ``error`` event, raised at the caller when nobody listens.
    """

    __slots__ = (
        "add",
        "attributes",
        "error",
        "error_event",
        "label",
        "meta",
        "no_receiver",
        "span_name",
    )

    def __init__(
        self,
        label: str,
        add: Callable[[float], None],
        error: Callable[[], None],
        no_receiver: Callable[[], None],
        system: str,
        operation: str,
        *,
        meta: bool = False,
        error_event: bool = False,
    ) -> None:
        self.label = label
        self.add = add
        self.error = error
        self.no_receiver = no_receiver
        self.meta = meta
        self.error_event = error_event
        self.span_name = f"{operation} {label}"
        self.attributes: dict[str, str] = {
            sc.MESSAGING_SYSTEM: system,
            sc.MESSAGING_OPERATION_TYPE: OPERATION_TYPE,
            sc.MESSAGING_OPERATION_NAME: operation,
            sc.MESSAGING_DESTINATION_NAME: label,
        }


class Dispatch:
    """A dispatch span made current around the receivers (see :meth:`Instruments.start`)."""

    __slots__ = ("span", "token")

    def __init__(self, span: trace.Span, token: object) -> None:
        self.span = span
        self.token = token

    def end(self, error: BaseException | None = None) -> None:
        """Make the publisher's context current again and end the span; never raises."""
        try:
            _detach(self.token)  # type: ignore[arg-type]
        except Exception as exc:
            report("dispatch span", exc)
        try:
            if error is not None:
                fail(self.span, error)
            self.span.end()
        except Exception as exc:
            report("dispatch span", exc)


def fail(span: trace.Span, error: BaseException) -> None:
    """Mark *span* failed by *error* (``error.type``, the exception event, the status)."""
    kind = error_type(error)
    span.set_attribute(sc.ERROR_TYPE, kind)
    span.record_exception(error, escaped=True)
    span.set_status(Status(_ERROR, f"{kind}: {error}"))


class Instruments:
    """The bound metrics, tracer and settings of one telemetry start.

    ``enabled`` is false when telemetry is not running (or disabled) or the
    eventbus plugin is not loaded: instrumented buses then pass every call through.
    """

    __slots__ = (
        "__weakref__",
        "_events",
        "_rejected",
        "_signals",
        "_subscribers",
        "_telemetry",
        "enabled",
        "spans",
        "tracer",
    )

    def __init__(self, telemetry: Telemetry | None = None) -> None:
        self.enabled = False
        self.spans = False
        self.tracer: trace.Tracer = trace.NoOpTracer()
        self._telemetry: Callable[[], Telemetry | None] = (
            weakref.ref(telemetry) if telemetry is not None else _none
        )
        self._signals: dict[str | None, Topic] = {}
        self._events: dict[object, Topic] = {}
        if telemetry is None or not telemetry.enabled:
            return
        store = telemetry.store
        if EVENTBUS_SUBSCRIBERS.name not in store or EVENTBUS_REJECTED.name not in store:
            return  # the plugin is not loaded
        self._subscribers = store.get(EVENTBUS_SUBSCRIBERS.name)
        self._rejected = store.get(EVENTBUS_REJECTED.name)
        self.spans = bool(telemetry.config.get(LIMELIGHT_EVENTBUS_SPANS))
        if self.spans:
            self.tracer = telemetry.tracer(TRACER_NAME, _version())
        self.enabled = True

    def live(self) -> bool:
        """Whether the telemetry these instruments record into still runs."""
        telemetry = self._telemetry()
        return self.enabled and telemetry is not None and telemetry.enabled

    # -- topics ------------------------------------------------------------------------

    def _topic(
        self, label: str, system: str, operation: str, *, meta: bool, error_event: bool
    ) -> tuple[Topic, bool]:
        gauge = self._subscribers.labels(label)
        rejected = self._rejected
        topic = Topic(
            label,
            gauge.add,
            rejected.labels(label, ERROR).inc,
            rejected.labels(label, NO_RECEIVER).inc,
            system,
            operation,
            meta=meta,
            error_event=error_event,
        )
        # the store applies the series limit; the caches never keep the overflow series,
        # so every lookup that lands there is counted in limelight_series_overflow_total
        keep = gauge.labels["topic"] != OVERFLOW_LABEL_VALUE
        return topic, keep

    def signal_topic(self, name: str | None) -> Topic:
        """The topic of a blinker signal called *name* (see :func:`signal_name`)."""
        found = self._signals.get(name)
        if found is not None:
            return found
        label = ANONYMOUS_TOPIC if name is None else topic_label(name)
        topic, keep = self._topic(label, "blinker", "send", meta=False, error_event=False)
        if keep and len(self._signals) < _CACHE_LIMIT:
            self._signals[name] = topic
        return topic

    def event_topic(self, event: object) -> Topic:
        """The topic of a pyee event name (raises ``TypeError`` for an unhashable one)."""
        found = self._events.get(event)
        if found is not None:
            return found
        own = isinstance(event, str)
        if own and event == "new_listener":
            return _NEW_LISTENER
        topic, keep = self._topic(
            topic_label(event), "pyee", "emit", meta=False, error_event=own and event == "error"
        )
        if keep and len(self._events) < _CACHE_LIMIT:
            self._events[event] = topic
        return topic

    # -- spans -------------------------------------------------------------------------

    def start(self, topic: Topic) -> Dispatch | None:
        """Start the CONSUMER span of one dispatch and make it current.

        A child of the publisher's span (the span current where the event was
        sent), with a link to it; a root span when none is current. ``None`` when
        instrumentation is suppressed for the current context.
        """
        ctx = current_context()
        if ctx.get(SUPPRESS_INSTRUMENTATION_KEY):
            return None
        publisher = _get_current_span(ctx).get_span_context()
        links = (Link(publisher),) if publisher.is_valid else None
        span = self.tracer.start_span(topic.span_name, ctx, _CONSUMER, topic.attributes, links)
        return Dispatch(span, _attach(_set_span_in_context(span, ctx)))


def _ignore(*args: object) -> None:
    pass


_NEW_LISTENER = Topic("new_listener", _ignore, _ignore, _ignore, "pyee", "emit", meta=True)
"""pyee's own ``new_listener`` event: emitted at every ``on``, neither recorded nor counted."""


def signal_name(signal: object) -> str | None:
    """A blinker signal's ``name`` (a ``NamedSignal``), ``None`` for one without."""
    name = getattr(signal, "name", None)
    return name if type(name) is str else None


def _none() -> None:
    return None


_by_telemetry: weakref.WeakKeyDictionary[Telemetry, Instruments] = weakref.WeakKeyDictionary()


def instruments_for(telemetry: Telemetry) -> Instruments:
    """The instruments of *telemetry*, the same object each time it is asked for."""
    found = _by_telemetry.get(telemetry)
    if found is None:
        found = _by_telemetry.setdefault(telemetry, Instruments(telemetry))
    return found


binding: TelemetryBinding[Instruments] = TelemetryBinding(instruments_for)
"""The instruments of the running telemetry (disabled when none runs)."""


# -- subscriber counts -----------------------------------------------------------------

ALL: Final = object()
"""Count every topic of a bus again (rather than one)."""
_FORGET: Final = object()


class BusKind:
    """How to read one library's buses.

    :param name: the library (``blinker``, ``pyee``).
    :param keys: the topic keys a bus currently has receivers for.
    :param count: how many receivers a bus has for a key.
    :param topic: the :class:`Topic` of a key.
    """

    __slots__ = ("count", "keys", "name", "topic")

    def __init__(
        self,
        name: str,
        keys: Callable[[Any], Iterable[object]],
        count: Callable[[Any, object], int],
        topic: Callable[[Instruments, object], Topic],
    ) -> None:
        self.name = name
        self.keys = keys
        self.count = count
        self.topic = topic


class _Bus:
    """What was counted for one bus (a signal, an emitter), per telemetry."""

    __slots__ = ("counts", "forgotten", "id", "kind", "ref", "synced", "topic", "topic_for")

    def __init__(self, bus: object, kind: BusKind) -> None:
        self.kind = kind
        self.id = id(bus)
        self.counts: dict[Instruments, dict[object, tuple[Callable[[float], None], int]]] = {}
        self.synced: Instruments | None = None
        self.forgotten = False
        self.topic: Topic | None = None  # a bus of one topic (a signal): its topic, once looked up
        self.topic_for: Instruments | None = None
        self.ref: weakref.ref[Any] = weakref.ref(bus, self._collected)

    def _collected(self, ref: object) -> None:
        # the bus is gone, with whatever receivers it still had
        _request(self, ALL, None)

    def sync(self, key: object, extra: Instruments | None) -> None:
        counts = self.counts
        bus = None if self.forgotten else self.ref()
        if bus is None or key is _FORGET:
            for inst, counted in counts.items():
                if inst.live():
                    for add, n in counted.values():
                        add(-n)
            counts.clear()
            self.forgotten = True
            if _buses.get(self.id) is self:
                del _buses[self.id]
            return
        current = binding.get()
        targets = [current] if current.enabled else []
        if extra is not None and extra.enabled and extra is not current:
            targets.append(extra)
        for inst in list(counts):
            if inst in targets:
                continue
            if inst.live():
                targets.append(inst)  # a telemetry still running keeps following the bus
            else:
                del counts[inst]
        self.synced = current
        kind = self.kind
        for inst in targets:
            counted = counts.setdefault(inst, {})
            keys = (key,) if key is not ALL else {*counted, *kind.keys(bus)}
            for k in keys:
                n = kind.count(bus, k)
                found = counted.get(k)
                old = 0 if found is None else found[1]
                if n == old:
                    continue
                add = kind.topic(inst, k).add if found is None else found[0]
                add(n - old)
                if n:
                    counted[k] = (add, n)
                else:
                    del counted[k]


_buses: dict[int, _Bus] = {}
"""The buses seen while instrumented, by ``id`` (each entry checks its bus by identity)."""
_pending: collections.deque[tuple[_Bus, object, Instruments | None]] = collections.deque()
_lock = threading.Lock()


def _request(state: _Bus, key: object, extra: Instruments | None) -> None:
    _pending.append((state, key, extra))
    _drain()


def _drain() -> None:
    while _pending:
        # never wait: the holder may be this very thread, interrupted by the collector
        if not _lock.acquire(blocking=False):
            return  # the holder works the queue off before it lets go
        try:
            while _pending:
                state, key, extra = _pending.popleft()
                try:
                    state.sync(key, extra)
                except Exception as exc:
                    report("count subscribers", exc)
        finally:
            _lock.release()


def _state(bus: object, kind: BusKind) -> _Bus:
    state = _buses.get(id(bus))
    if state is None or state.ref() is not bus:
        new = _Bus(bus, kind)
        state = _buses.setdefault(id(bus), new)  # a racing thread's entry wins
        if state.ref() is not bus:  # one left by a bus collected a moment ago
            _buses[id(bus)] = state = new
    return state


def changed(bus: object, kind: BusKind, key: object = ALL) -> None:
    """Count the receivers of *bus* for *key* (every topic: :data:`ALL`) again; never raises."""
    try:
        _request(_state(bus, kind), key, None)
    except Exception as exc:
        report("count subscribers", exc)


def observe(bus: object, kind: BusKind, inst: Instruments) -> _Bus | None:
    """At a dispatch: count *bus* if it was not counted for *inst* yet (its first use);
    return what is kept for it."""
    state = _buses.get(id(bus))
    if state is None or state.synced is not inst or state.ref() is not bus:
        changed(bus, kind, ALL)
        state = _buses.get(id(bus))
    return state


def resync_all(telemetry: object) -> None:
    """Count every known bus into *telemetry*'s store (called as it starts)."""
    if not isinstance(telemetry, Telemetry):
        return
    inst = instruments_for(telemetry)
    if not inst.enabled:
        return
    for state in list(_buses.values()):
        _pending.append((state, ALL, inst))
    _drain()


def forget(kind: BusKind) -> None:
    """Stop following the buses of *kind*: take their receivers out of the gauge."""
    for state in list(_buses.values()):
        if state.kind is kind:
            _pending.append((state, _FORGET, None))
    _drain()
