"""What one published or delivered message records: its span, its metrics, its context.

Everything the library integrations and the generic API share lives here.
Instruments are bound once per telemetry start (:data:`binding`), and the
bound metric children once per destination, so a message costs a dictionary
lookup to find them.

A :class:`Publication` follows one publish from the moment the client is
asked to send to the moment it returned or raised. A :class:`Delivery`
follows one message handed to the application: it starts its CONSUMER span
(a child of the producer's span and linked to it, or linked only), counts it
in flight, remembers how the application settled it, and records the result
once when its processing ends.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import itertools
import time
import weakref
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from limelight import Telemetry
from limelight import semconv as sc
from limelight.metrics import OVERFLOW_LABEL_VALUE
from limelight.propagation import HeaderGetter, extract_headers, inject_span
from limelight.surface import (
    SUPPRESS_INSTRUMENTATION_KEY,
    TelemetryBinding,
    current_context,
    error_type,
    report_failure,
    span_in,
    with_span,
)

from ._env import LIMELIGHT_QUEUE_PROCESS_PARENT, PARENT_LINK
from ._metrics import QUEUE_IN_FLIGHT, QUEUE_MESSAGES, QUEUE_PROCESS_DURATION, QUEUE_PUBLISHED

__all__ = [
    "ACK",
    "NACK",
    "REJECT",
    "RESULTS",
    "TRACER_NAME",
    "ChannelCache",
    "Delivery",
    "Instruments",
    "Publication",
    "binding",
    "end_channel",
    "extract",
    "find",
    "inject",
    "report",
    "settle",
    "settle_multiple",
    "sweep",
]

ACK: Final = "ack"
"""The message was acknowledged (or delivered in an auto-ack mode)."""
NACK: Final = "nack"
"""The message was negatively acknowledged, or left for the broker to deliver again."""
REJECT: Final = "reject"
"""The message was rejected (RabbitMQ ``basic.reject``, JetStream ``term``)."""
RESULTS: Final = (ACK, NACK, REJECT)
"""Every value of the ``result`` label of ``queue_messages_total``."""

TRACER_NAME = "limelight.queue"
_CACHE_LIMIT = 1024

_perf_counter = time.perf_counter
_attach = otel_context.attach
_detach = otel_context.detach
_extract_headers = extract_headers
_inject_span = inject_span
_current_task = asyncio.current_task
_span_in = span_in
_with_span = with_span
_PRODUCER = SpanKind.PRODUCER
_CONSUMER = SpanKind.CONSUMER
_EMPTY = Context()


_ERROR = StatusCode.ERROR


def report(where: str, exc: BaseException) -> None:
    """Log a failure of the instrumentation once per place; the message is unaffected."""
    report_failure("queue", where, exc)


def _version() -> str | None:
    try:
        return importlib.metadata.version("limelight-queue")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return None


class _Getter(HeaderGetter):
    """:class:`~limelight.propagation.HeaderGetter` that never raises, with a fast
    path for the ``dict`` header tables the broker clients decode.

    Message header tables come from other programs: values may be bytes,
    numbers, nested tables or anything a broker client decodes, and the table
    itself may be something other than a mapping. What cannot be read is
    reported once and treated as absent, so the delivery starts a new trace.
    Names are matched in any case, as for HTTP headers.
    """

    def get(self, carrier: Any, key: str) -> list[str] | None:
        if type(carrier) is dict:
            value = carrier.get(key)
            if value is None:
                for name in carrier:
                    if type(name) is str and name != key and name.lower() == key:
                        break
                else:
                    return None  # absent in every spelling
            elif type(value) is str:
                return [value]
        try:
            return super().get(carrier, key)
        except Exception as exc:
            report("read headers", exc)
            return None

    def keys(self, carrier: Any) -> list[str]:
        try:
            return super().keys(carrier)
        except Exception as exc:
            report("read headers", exc)
            return []


_getter = _Getter()


def extract(headers: object) -> Context:
    """The context carried by *headers* (through the global propagator), from an empty one.

    Never raises: headers that are missing, not a table, or garbled give an
    empty context (the problem reported once). With the default propagators
    a header table decoded as a plain ``dict`` takes the fast path of
    :func:`limelight.propagation.extract_headers`.
    """
    if not headers:
        return _EMPTY
    try:
        return _extract_headers(headers, _EMPTY, _getter)
    except Exception as exc:  # a propagator that fails loses the context, not the message
        report("extract", exc)
        return _EMPTY


def inject(headers: object, span: trace.Span, ctx: Context) -> None:
    """Write *span* as the parent of the consumer into *headers*; never raises."""
    if type(headers) is not dict and not isinstance(headers, MutableMapping):
        report(
            "inject",
            TypeError(
                f"message headers are a {type(headers).__name__}, not a mapping: "
                "the trace context is not sent with the message"
            ),
        )
        return
    try:
        _inject_span(headers, span, ctx)
    except Exception as exc:
        report("inject", exc)


def _fail(span: trace.Span, error: BaseException) -> None:
    kind = error_type(error)
    span.set_attribute(sc.ERROR_TYPE, kind)
    span.record_exception(error, escaped=True)
    span.set_status(Status(_ERROR, f"{kind}: {error}"))


class ChannelCache:
    """What was worked out once for a channel (its broker's address), by channel.

    Looked up by ``id`` with an identity check, so a lookup creates nothing (a
    ``WeakKeyDictionary`` makes a weak reference per lookup); entries hold the
    channel weakly where it allows it, and the cache is bounded.
    """

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int = 1024) -> None:
        self._entries: dict[int, tuple[Callable[[], object], Any]] = {}
        self._limit = limit

    def get(self, channel: object, compute: Callable[[object], Any]) -> Any:
        """The value for *channel*, from ``compute(channel)`` the first time."""
        found = self._entries.get(id(channel))
        if found is not None and found[0]() is channel:
            return found[1]
        value = compute(channel)
        try:
            ref: Callable[[], object] = weakref.ref(channel)
        except TypeError:
            ref = functools.partial(_same, channel)
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[id(channel)] = (ref, value)
        return value


def _same(channel: object) -> object:
    return channel


class _Producer:
    """The bound ``queue_published_total`` children of one destination."""

    __slots__ = ("error", "ok")

    def __init__(self, ok: Callable[[], None], error: Callable[[], None]) -> None:
        self.ok = ok
        self.error = error


class _Consumer:
    """The bound children of one queue: in flight, and count and duration per result."""

    __slots__ = ("add", "results")

    def __init__(
        self,
        add: Callable[[float], None],
        results: dict[str, tuple[Callable[[], None], Callable[[float], None]]],
    ) -> None:
        self.add = add
        self.results = results


class Instruments:
    """The tracer, metrics and settings of one telemetry start.

    ``active`` is false when telemetry is not running (or disabled) or the
    queue plugin is not loaded: instrumented clients then pass every call through.
    """

    __slots__ = (
        "_consumers",
        "_durations",
        "_in_flight",
        "_messages",
        "_producers",
        "_published",
        "active",
        "link_only",
        "tracer",
    )

    def __init__(self, telemetry: Telemetry | None = None) -> None:
        self.active = False
        self.link_only = False
        self.tracer: trace.Tracer = trace.NoOpTracer()
        if telemetry is None or not telemetry.enabled:
            return
        store = telemetry.store
        if QUEUE_PUBLISHED.name not in store:  # the plugin is not loaded
            return
        self.tracer = telemetry.tracer(TRACER_NAME, _version())
        self.link_only = telemetry.config.get(LIMELIGHT_QUEUE_PROCESS_PARENT) == PARENT_LINK
        self._published = store.get(QUEUE_PUBLISHED.name)
        self._messages = store.get(QUEUE_MESSAGES.name)
        self._durations = store.get(QUEUE_PROCESS_DURATION.name)
        self._in_flight = store.get(QUEUE_IN_FLIGHT.name)
        # the store applies the series limit; these caches only save its lookups and
        # never keep the overflow series, so every message that falls into it is
        # counted in limelight_series_overflow_total
        self._producers: dict[str, _Producer] = {}
        self._consumers: dict[str, _Consumer] = {}
        self.active = True

    def producer(self, label: str) -> _Producer:
        """The bound children of destination *label* on the publishing side."""
        found = self._producers.get(label)
        if found is not None:
            return found
        ok = self._published.labels(label, "ok")
        error = self._published.labels(label, "error")
        producer = _Producer(ok.inc, error.inc)
        if ok.labels["queue"] != OVERFLOW_LABEL_VALUE and len(self._producers) < _CACHE_LIMIT:
            self._producers[label] = producer
        return producer

    def consumer(self, label: str) -> _Consumer:
        """The bound children of queue *label* on the consuming side."""
        found = self._consumers.get(label)
        if found is not None:
            return found
        flight = self._in_flight.labels(label)
        results = {
            result: (
                self._messages.labels(label, result).inc,
                self._durations.labels(label, result).observe,
            )
            for result in RESULTS
        }
        consumer = _Consumer(flight.add, results)
        if flight.labels["queue"] != OVERFLOW_LABEL_VALUE and len(self._consumers) < _CACHE_LIMIT:
            self._consumers[label] = consumer
        return consumer

    # -- publishing -----------------------------------------------------------------------

    def publish(
        self,
        name: str,
        label: str,
        attributes: Mapping[str, AttributeValue],
        headers: object,
    ) -> Publication | None:
        """Start the PRODUCER span of one message and inject it into *headers*.

        Returns ``None`` when instrumentation is suppressed for the current context.
        """
        ctx = current_context()
        if ctx.get(SUPPRESS_INSTRUMENTATION_KEY):
            return None
        span = self.tracer.start_span(name, ctx, _PRODUCER, attributes)
        if type(headers) is dict:  # what the clients give: inject() without its checks
            try:
                _inject_span(headers, span, ctx)
            except Exception as exc:
                report("inject", exc)
        else:
            inject(headers, span, ctx)
        return Publication(self._producers.get(label) or self.producer(label), span)

    # -- consuming ------------------------------------------------------------------------

    def deliver(
        self,
        name: str,
        label: str,
        attributes: Mapping[str, AttributeValue],
        headers: object,
        auto_ack: bool,
        ambient: Context | None = None,
    ) -> Delivery:
        """Start the CONSUMER span of one message handed to the application.

        :param auto_ack: the broker considers the message settled once sent (its
            result is ``ack`` unless the application settles it otherwise).
        :param ambient: for a message the application asked for (a get, an
            iterator), the context it asked in: the span links to its span, if any.
            Messages pushed to a callback have none.
        """
        extracted = _EMPTY
        if headers:  # extract(), inline
            try:
                extracted = _extract_headers(headers, _EMPTY, _getter)
            except Exception as exc:  # a propagator that fails loses the context, not the message
                report("extract", exc)
        parent = extracted
        links: list[Link] | None = None
        if extracted is not _EMPTY:  # something was extracted: a remote parent, maybe
            remote = _span_in(extracted).get_span_context()
            if remote.is_valid:
                links = [Link(remote)]
                if self.link_only:
                    parent = ambient or _EMPTY
        if ambient is not None:
            around = _span_in(ambient).get_span_context()
            if around.is_valid and parent is not ambient:
                if links is None:
                    links = [Link(around)]
                else:
                    links.append(Link(around))
        span = self.tracer.start_span(name, parent, _CONSUMER, attributes, links)
        consumer = self._consumers.get(label) or self.consumer(label)
        consumer.add(1)
        return Delivery(consumer, span, _with_span(span, extracted), auto_ack)


binding: TelemetryBinding[Instruments] = TelemetryBinding(Instruments)
"""The instruments of the running telemetry (inactive when none runs)."""


class Publication:
    """One message being published: ends its span and counts it exactly once.

    :attr span: the PRODUCER span (a non-recording one when nothing is recorded).
    """

    __slots__ = ("_producer", "done", "span")

    def __init__(self, producer: _Producer | None, span: trace.Span) -> None:
        self._producer = producer
        self.span = span
        self.done = False

    def finish(self, error: BaseException | None = None) -> None:
        """The client returned (or raised *error*); idempotent, never raises."""
        if self.done:
            return
        self.done = True
        producer = self._producer
        if producer is None:
            return
        try:
            span = self.span
            if error is None:
                producer.ok()
            else:
                producer.error()
                _fail(span, error)
            span.end()
        except Exception as exc:
            report("publish", exc)


_open: dict[object, Delivery] = {}
"""Deliveries whose processing has not ended, by their settlement key (see
:func:`settle`): how a settlement made through the library finds its delivery."""
_pending: dict[object, Delivery] = {}
"""Deliveries whose processing ended before the application settled their message
(a deferred or batched acknowledgement), by settlement key: counted when the
message is settled, or as ``nack`` when its channel closes first."""
MAX_PENDING = 65536
"""Unsettled messages remembered after their processing ended; past this, a message
left unsettled counts as ``nack`` as soon as its processing ends."""
_SWEEP_EVERY = 256
_sweep = itertools.count()


def _closed(channel: object) -> bool:
    try:
        return bool(getattr(channel, "is_closed", False))
    except Exception:
        return True


class Delivery:
    """One message handed to the application, until its processing ends.

    The application's settlement is remembered with :meth:`ack`, :meth:`nack`
    or :meth:`reject` (the first one counts); :meth:`finish` ends the span and
    the in-flight count, and records the message with that result. A message
    that needs no settlement (an auto-ack mode) counts as ``ack``. One that the
    application has not settled yet when its processing ends is counted when it
    is settled through the library (a deferred or ``multiple`` acknowledgement),
    or as ``nack`` when its channel closes first (the broker delivers it again);
    without a channel to watch (the generic API) it counts as ``nack`` at once.

    :attr span: the CONSUMER span (a non-recording one when nothing is recorded).
    :attr context: the context the processing runs in (the span current in it).
    """

    __slots__ = (
        "_consumer",
        "_previous",
        "_task",
        "auto_ack",
        "channel",
        "context",
        "done",
        "elapsed",
        "key",
        "message",
        "result",
        "scoped",
        "span",
        "start",
        "tag",
    )

    def __init__(
        self,
        consumer: _Consumer | None,
        span: trace.Span,
        context: Context,
        auto_ack: bool,
    ) -> None:
        self._consumer = consumer
        self.span = span
        self.context = context
        self.auto_ack = auto_ack
        self.result: str | None = None
        self.done = False
        self.scoped = False
        self.key: object = None
        self.channel: object = None
        self.tag = 0
        self.message: object = None
        self.elapsed = 0.0
        self._previous: Context | None = None
        self._task: asyncio.Task[Any] | None = None
        self.start = _perf_counter()

    # -- settlement -----------------------------------------------------------------------

    def settle(self, result: str) -> None:
        """Remember that the application settled the message with *result*
        (``ack``, ``nack`` or ``reject``); only the first settlement counts."""
        if self.result is None:
            self.result = result

    def ack(self) -> None:
        """The message was acknowledged."""
        self.settle(ACK)

    def nack(self) -> None:
        """The message was negatively acknowledged (to be delivered again, or dead-lettered)."""
        self.settle(NACK)

    def reject(self) -> None:
        """The message was rejected."""
        self.settle(REJECT)

    # -- lifetime -------------------------------------------------------------------------

    def track(
        self, key: object, channel: object = None, tag: int = 0, message: object = None
    ) -> None:
        """Let settlements made through the library find this delivery by *key*.

        :param channel: what the message is settled on (an AMQP channel, a NATS
            connection): ``multiple`` settlements are scoped to it, and when it
            closes, the messages left unsettled count as ``nack``.
        :param tag: the delivery tag on that channel.
        :param message: kept with the delivery, so that a key made of ids stays unique.
        """
        self.key = key
        self.channel = channel
        self.tag = tag
        self.message = message
        _open[key] = self
        if _pending and next(_sweep) % _SWEEP_EVERY == 0:
            sweep()

    def enter(self, current: bool = True) -> None:
        """Make the span current in the caller's context until the delivery ends
        (for messages the application asked for: a get, an iterator, a generator).

        The delivery then also ends when the message is settled, and, under
        asyncio, at the latest when the task that asked for it finishes. With
        *current* false (one of several messages handed over at once) the span
        is not made current.
        """
        self.scoped = True
        if current:
            self._previous = current_context()
            _attach(self.context)
        try:
            task = _current_task()
        except RuntimeError:  # no event loop in this thread
            task = None
        if task is not None:
            self._task = task
            task.add_done_callback(self._task_done)

    def _task_done(self, task: object) -> None:
        self._task = None
        self.finish()

    def leave(self) -> None:
        """Give the caller back the context it had before :meth:`enter`, if the
        delivery's own context is still the current one."""
        previous = self._previous
        if previous is not None and current_context() is self.context:
            self._previous = None
            _attach(previous)

    def finish(self, error: BaseException | None = None) -> None:
        """The processing ended (with *error* when it raised); idempotent, never raises."""
        if self.done:
            return
        self.done = True
        key = self.key
        if key is not None and _open.get(key) is self:
            del _open[key]
        consumer = self._consumer
        if consumer is None:
            return
        try:
            task = self._task
            if task is not None:
                self._task = None
                task.remove_done_callback(self._task_done)
            self.elapsed = _perf_counter() - self.start
            consumer.add(-1)
            span = self.span
            if error is not None and not isinstance(error, GeneratorExit):
                _fail(span, error)
            span.end()
            if (
                self.result is None
                and not self.auto_ack
                and key is not None
                and len(_pending) < MAX_PENDING
                and not _closed(self.channel)
            ):
                _pending[key] = self  # the application may still settle it
            else:  # _record, inline
                inc, observe = consumer.results[self.result or (ACK if self.auto_ack else NACK)]
                inc()
                observe(self.elapsed)
        except Exception as exc:
            report("process", exc)
        if self.scoped:
            self.leave()

    def _record(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        result = self.result or (ACK if self.auto_ack else NACK)
        inc, observe = consumer.results[result]
        inc()
        observe(self.elapsed)


def _settled(delivery: Delivery, result: str) -> None:
    if not delivery.done:
        if delivery.result is None:  # Delivery.settle, inline
            delivery.result = result
        if delivery.scoped:
            delivery.finish()
        return
    key = delivery.key
    if key is not None and _pending.get(key) is delivery:
        del _pending[key]
        delivery.settle(result)
        delivery._record()


def find(key: object, message: object = None) -> Delivery | None:
    """The open delivery tracked under *key* (and holding *message*, when given)."""
    found = _open.get(key)
    if found is None or (message is not None and found.message is not message):
        return None
    return found


def settle(key: object, result: str) -> None:
    """The library settled the message of the delivery tracked under *key* with *result*.

    A delivery the application asked for (see :meth:`Delivery.enter`) ends there.
    """
    delivery = _open.get(key) or _pending.get(key)
    if delivery is not None:
        _settled(delivery, result)


def settle_multiple(channel: object, tag: int, result: str) -> None:
    """A settlement of every message of *channel* up to delivery tag *tag*
    (AMQP ``multiple``; a tag of 0 means every outstanding one)."""
    for table in (_open, _pending):
        # list() copies the values in one step (other threads may change the table)
        for delivery in [d for d in list(table.values()) if d.channel is channel]:
            if tag == 0 or delivery.tag <= tag:
                _settled(delivery, result)


def end_channel(channel: object) -> None:
    """*channel* closed: its deliveries still open end, and its messages left
    unsettled count as ``nack`` (the broker delivers them again)."""
    for delivery in [d for d in list(_open.values()) if d.channel is channel]:
        delivery.finish()
    for key, delivery in [(k, d) for k, d in list(_pending.items()) if d.channel is channel]:
        if _pending.get(key) is delivery:
            del _pending[key]
            delivery._record()


def sweep() -> None:
    """Count the unsettled messages of every channel that closed meanwhile as ``nack``."""
    for key, delivery in list(_pending.items()):
        if _closed(delivery.channel) and _pending.get(key) is delivery:
            del _pending[key]
            delivery._record()
