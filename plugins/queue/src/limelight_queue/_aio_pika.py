"""aio-pika: publish spans, process spans for every delivery path, settlements counted.

What is patched, all through :class:`~limelight.surface.Patches`:

- ``Exchange.publish``: a PRODUCER span, the context injected into ``message.headers``;
- ``Queue.consume``: the callback runs inside its delivery (the process span current);
- ``QueueIterator.__anext__`` (and the robust iterator's): each message of
  ``async for`` starts a delivery, current in the loop body until the message
  is settled or the next one is asked for;
- ``Queue.get``: the same for the message it returns;
- ``IncomingMessage.ack``, ``nack``, ``reject``: the settlement, once the broker
  was told (``multiple=True`` settles every open delivery of the channel up to the tag);
- ``ProcessContext``: ``message.process()`` makes the message's span current in its block.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aio_pika.message
import aio_pika.queue
import aio_pika.robust_queue

from limelight.surface import Patches, current_context

from ._amqp import DestinationCache, message_attributes
from ._core import (
    ACK,
    NACK,
    REJECT,
    Delivery,
    Instruments,
    _open,
    _pending,
    binding,
    end_channel,
    find,
    report,
    settle,
    settle_multiple,
)

__all__ = ["install"]

_get = binding.get
_installed = [False]
"""Whether the instrumentation is in place: callbacks and generators wrapped while
it was pass everything through once it is removed."""
_current: weakref.WeakKeyDictionary[Any, Delivery] = weakref.WeakKeyDictionary()
"""The delivery an iterator or a queue's ``get`` handed out last, by iterator or queue."""


def _url_server(url: Any) -> tuple[str | None, int | None]:
    try:
        return url.host, url.port
    except Exception:
        return None, None


def _compute_channel_server(channel: Any) -> tuple[str | None, int | None]:
    connection = getattr(channel, "_connection", None)
    return _url_server(getattr(connection, "url", None))


def _compute_message_server(amqp_channel: Any) -> tuple[str | None, int | None]:
    return _url_server(getattr(getattr(amqp_channel, "connection", None), "url", None))


_published = DestinationCache(_compute_channel_server)
"""The destinations of the messages published, by aio-pika channel."""
_consumed = DestinationCache(_compute_message_server)
"""The destinations of the messages delivered, by the aiormq channel they came on."""


# -- publishing -------------------------------------------------------------------------


def _begin_publish(inst: Instruments, exchange: Any, message: Any, routing_key: Any) -> Any:
    try:
        destination = _published.get(exchange.channel, exchange.name, routing_key, None)
        attributes = message_attributes(
            destination.attributes, message.message_id, message.correlation_id, message.body_size
        )
        return inst.publish(destination.name, destination.label, attributes, message.headers)
    except Exception as exc:
        report("aio-pika publish", exc)
        return None


def _wrap_publish(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def publish(self: Any, message: Any, routing_key: Any, *args: Any, **kwargs: Any) -> Any:
        inst = _get()
        if not inst.active:
            return await original(self, message, routing_key, *args, **kwargs)
        publication = _begin_publish(inst, self, message, routing_key)
        if publication is None:
            return await original(self, message, routing_key, *args, **kwargs)
        try:
            result = await original(self, message, routing_key, *args, **kwargs)
        except BaseException as exc:
            publication.finish(exc)
            raise
        publication.finish()
        return result

    return publish


# -- deliveries -------------------------------------------------------------------------


def _deliver(
    inst: Instruments, message: Any, queue_name: str, no_ack: bool, pulled: bool
) -> Delivery | None:
    """Start the delivery of *message* (from the queue called *queue_name*)."""
    try:
        try:
            channel = message.channel
        except Exception:  # closed already: nothing can be settled on it
            channel = None
        destination = _consumed.get(channel, message.exchange, message.routing_key, queue_name)
        tag = message.delivery_tag or 0
        attributes = message_attributes(
            destination.attributes,
            message.message_id,
            message.correlation_id,
            message.body_size,
            tag,
        )
        delivery = inst.deliver(
            destination.name,
            destination.label,
            attributes,
            message.headers,
            no_ack,
            current_context() if pulled else None,
        )
        if not no_ack and channel is not None:
            delivery.track((id(channel), tag), channel, tag, message)
            _watch(channel)
        return delivery
    except Exception as exc:
        report("aio-pika delivery", exc)
        return None


def _wrap_consume(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def consume(self: Any, callback: Any, *args: Any, **kwargs: Any) -> Any:
        # the queue iterator consumes through its own callback: its messages are
        # delivered when the loop asks for them, not when they arrive
        if isinstance(getattr(callback, "__self__", None), aio_pika.queue.QueueIterator):
            return await original(self, callback, *args, **kwargs)
        no_ack = bool(args[0] if args else kwargs.get("no_ack", False))
        return await original(self, _traced_callback(self, callback, no_ack), *args, **kwargs)

    return consume


_watched: set[int] = set()
"""The aiormq channels whose closing ends their deliveries, by id."""


def _watch(channel: Any) -> None:
    """When *channel* closes, its unsettled messages count as ``nack``."""
    key = id(channel)
    if key in _watched:
        return
    _watched.add(key)

    def closed(_: object) -> None:
        _watched.discard(key)
        end_channel(channel)

    channel.closing.add_done_callback(closed)


def _traced_callback(
    queue: Any, callback: Callable[[Any], Any], no_ack: bool
) -> Callable[[Any], Awaitable[Any]]:
    from opentelemetry import context as otel_context

    attach, detach = otel_context.attach, otel_context.detach

    async def on_message(message: Any) -> Any:
        inst = _get()
        delivery = (
            _deliver(inst, message, queue.name, no_ack, False)
            if inst.active and _installed[0]
            else None
        )
        if delivery is None:
            result = callback(message)
            return await result if hasattr(result, "__await__") else result
        token = attach(delivery.context)
        try:
            result = callback(message)
            if hasattr(result, "__await__"):
                result = await result
        except BaseException as exc:
            detach(token)
            delivery.finish(exc)
            raise
        detach(token)
        delivery.finish()
        return result

    on_message.__wrapped__ = callback  # type: ignore[attr-defined]
    return on_message


def _pulled(owner: Any, message: Any, queue_name: str, no_ack: bool) -> None:
    """*message* was handed to the caller by *owner* (an iterator or a queue's get)."""
    previous = _current.pop(owner, None)
    if previous is not None:
        previous.finish()
    if message is None:
        return
    inst = _get()
    if not inst.active:
        return
    delivery = _deliver(inst, message, queue_name, no_ack, True)
    if delivery is None:
        return
    delivery.enter()
    with contextlib.suppress(TypeError):
        _current[owner] = delivery


def _end_current(owner: Any) -> None:
    previous = _current.pop(owner, None)
    if previous is not None:
        previous.finish()


def _wrap_anext(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def anext(self: Any) -> Any:
        _end_current(self)
        message = await original(self)
        try:
            no_ack = bool(self._consume_kwargs.get("no_ack", False))
            _pulled(self, message, self._amqp_queue.name, no_ack)
        except Exception as exc:
            report("aio-pika iterator", exc)
        return message

    return anext


def _wrap_close(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        _end_current(self)
        return await original(self, *args, **kwargs)

    return close


def _wrap_get(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def get(self: Any, *args: Any, **kwargs: Any) -> Any:
        _end_current(self)
        message = await original(self, *args, **kwargs)
        try:
            _pulled(self, message, self.name, bool(kwargs.get("no_ack", False)))
        except Exception as exc:
            report("aio-pika get", exc)
        return message

    return get


# -- settlements ------------------------------------------------------------------------


def _settled(message: Any, result: str, multiple: bool) -> None:
    if not (_open or _pending):  # nothing is tracked: nothing to settle
        return
    try:
        channel = message.channel
        tag = message.delivery_tag or 0
        if multiple:
            settle_multiple(channel, tag, result)
        else:
            settle((id(channel), tag), result)
    except Exception as exc:
        report("aio-pika settle", exc)


def _wrap_ack(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def ack(self: Any, multiple: bool = False) -> Any:
        result = await original(self, multiple)
        _settled(self, ACK, multiple)
        return result

    return ack


def _wrap_nack(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def nack(self: Any, multiple: bool = False, requeue: bool = True) -> Any:
        result = await original(self, multiple, requeue)
        _settled(self, NACK, multiple)
        return result

    return nack


def _wrap_reject(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def reject(self: Any, requeue: bool = False) -> Any:
        result = await original(self, requeue)
        _settled(self, REJECT, False)
        return result

    return reject


_scopes: weakref.WeakKeyDictionary[Any, tuple[Delivery | None, Any]] = weakref.WeakKeyDictionary()


def _open_delivery(message: Any) -> Delivery | None:
    try:
        return find((id(message.channel), message.delivery_tag or 0), message)
    except Exception:
        return None


def _wrap_process_enter(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    from opentelemetry import context as otel_context

    @functools.wraps(original)
    async def aenter(self: Any) -> Any:
        message = await original(self)
        try:
            inst = _get()
            if inst.active:
                delivery = _open_delivery(self.message)
                began = None
                if delivery is None:  # a message received before instrumenting, or elsewhere
                    delivery = began = _deliver(inst, self.message, "", False, True)
                token = None
                if delivery is not None and current_context() is not delivery.context:
                    token = otel_context.attach(delivery.context)
                _scopes[self] = (began, token)
        except Exception as exc:
            report("aio-pika process", exc)
        return message

    return aenter


def _wrap_process_exit(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    from opentelemetry import context as otel_context

    @functools.wraps(original)
    async def aexit(self: Any, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await original(self, exc_type, exc, tb)
        finally:
            began, token = _scopes.pop(self, (None, None))
            if token is not None:
                try:
                    otel_context.detach(token)
                except Exception as failure:
                    report("aio-pika process", failure)
            if began is not None:
                began.finish(exc)

    return aexit


def remove() -> None:
    """The instrumentation is being removed: what it wrapped passes through from now on."""
    _installed[0] = False


def install(patches: Patches) -> None:
    """Instrument aio-pika through *patches*."""
    exchange = aio_pika.Exchange
    patches.wrap(exchange, "publish", _wrap_publish(exchange.publish))
    queue = aio_pika.queue.Queue
    patches.wrap(queue, "consume", _wrap_consume(queue.consume))
    patches.wrap(queue, "get", _wrap_get(queue.get))
    for iterator in (aio_pika.queue.QueueIterator, aio_pika.robust_queue.RobustQueueIterator):
        if "__anext__" in vars(iterator):
            patches.wrap(iterator, "__anext__", _wrap_anext(iterator.__anext__))
    iterator_base = aio_pika.queue.QueueIterator
    patches.wrap(iterator_base, "close", _wrap_close(iterator_base.close))
    incoming = aio_pika.IncomingMessage
    patches.wrap(incoming, "ack", _wrap_ack(incoming.ack))
    patches.wrap(incoming, "nack", _wrap_nack(incoming.nack))
    patches.wrap(incoming, "reject", _wrap_reject(incoming.reject))
    process = aio_pika.message.ProcessContext
    patches.wrap(process, "__aenter__", _wrap_process_enter(process.__aenter__))
    patches.wrap(process, "__aexit__", _wrap_process_exit(process.__aexit__))
    _installed[0] = True
