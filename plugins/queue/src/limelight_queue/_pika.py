"""pika: publish spans, process spans for every delivery path, settlements counted.

What is patched, all through :class:`~limelight.surface.Patches`:

- ``BlockingChannel.basic_publish`` and, for the asynchronous adapters,
  ``pika.channel.Channel.basic_publish``: a PRODUCER span, the context injected
  into ``properties.headers`` (publisher-confirm failures count as errors);
- ``BlockingChannel.basic_consume`` and ``Channel.basic_consume``: the callback
  runs inside its delivery (the process span current);
- ``BlockingChannel.consume``: each message the generator yields starts a
  delivery, current in the loop body until the message is settled or the next
  one is asked for (or the generator is closed, the consumer cancelled, the
  channel closed);
- ``BlockingChannel.basic_get``: the same for the message it returns;
- ``basic_ack``, ``basic_nack``, ``basic_reject`` of both channel classes: the
  settlement (``multiple=True`` settles every open delivery of the channel up
  to the tag, a tag of 0 every one).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pika  # type: ignore[import-untyped]
import pika.channel  # type: ignore[import-untyped]
from opentelemetry import context as otel_context
from pika.adapters.blocking_connection import BlockingChannel  # type: ignore[import-untyped]

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
    report,
    settle,
    settle_multiple,
)

__all__ = ["install"]

_get = binding.get
_installed = [False]
"""Whether the instrumentation is in place: callbacks and generators wrapped while
it was pass everything through once it is removed."""
_attach = otel_context.attach
_detach = otel_context.detach
_current: weakref.WeakKeyDictionary[Any, Delivery] = weakref.WeakKeyDictionary()
"""The delivery the consume generator or ``basic_get`` of a channel handed out last."""
_publishing: set[int] = set()
"""The channel implementations (by id) whose ``BlockingChannel.basic_publish`` records
the message being published, so that the implementation's own ``basic_publish``,
which it delegates to in the same thread, does not record it again. (A set: adding
and discarding are one step each, where a context variable copies the context.)"""


def _compute_server(channel: Any) -> tuple[str | None, int | None]:
    try:
        connection = channel.connection
        params = getattr(getattr(connection, "_impl", connection), "params", None)
        if params is not None:
            return str(params.host), int(params.port)
    except Exception:
        pass
    return None, None


_destinations = DestinationCache(_compute_server)


# -- publishing -------------------------------------------------------------------------


_PUBLISH_ARGUMENTS = ("exchange", "routing_key", "body", "properties")
_SIZED = (bytes, bytearray, str)
_BINARY = (bytes, bytearray)


def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(exchange, routing_key, body, properties) of a ``basic_publish`` call."""
    if len(args) >= 3 and not kwargs:  # the usual positional call: no list to build
        return args[0], args[1], args[2], args[3] if len(args) > 3 else None
    names = _PUBLISH_ARGUMENTS
    values = [args[i] if i < len(args) else kwargs.get(name) for i, name in enumerate(names)]
    return values[0], values[1], values[2], values[3]


def _with_properties(
    args: tuple[Any, ...], kwargs: dict[str, Any], properties: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if len(args) > 3:
        return (*args[:3], properties, *args[4:]), kwargs
    return args, {**kwargs, "properties": properties}


def _begin_publish(
    inst: Instruments, channel: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """(publication, args, kwargs): the call to make, with the properties that carry the context."""
    try:
        if len(args) >= 3 and not kwargs:  # the usual positional call (_arguments, inline)
            exchange, routing_key, body = args[0], args[1], args[2]
            properties = args[3] if len(args) > 3 else None
        else:
            exchange, routing_key, body, properties = _arguments(args, kwargs)
        if properties is None:
            properties = pika.BasicProperties(headers={})
            args, kwargs = _with_properties(args, kwargs, properties)
        elif properties.headers is None:
            properties.headers = {}
        destination = _destinations.get(channel, exchange, routing_key, None)
        attributes = message_attributes(
            destination.attributes,
            properties.message_id,
            properties.correlation_id,
            len(body) if isinstance(body, _SIZED) else 0,
        )
        publication = inst.publish(
            destination.name, destination.label, attributes, properties.headers
        )
        return publication, args, kwargs
    except Exception as exc:
        report("pika publish", exc)
        return None, args, kwargs


def _wrap_blocking_publish(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def basic_publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        inst = _get()
        if not inst.active:
            return original(self, *args, **kwargs)
        publication, args, kwargs = _begin_publish(inst, self, args, kwargs)
        if publication is None:
            return original(self, *args, **kwargs)
        impl = id(getattr(self, "_impl", self))
        marked = impl not in _publishing
        if marked:
            _publishing.add(impl)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            publication.finish(exc)
            raise
        finally:
            if marked:
                _publishing.discard(impl)
        publication.finish()
        return result

    return basic_publish


def _wrap_publish(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def basic_publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        inst = _get()
        if not inst.active or (_publishing and id(self) in _publishing):
            return original(self, *args, **kwargs)
        publication, args, kwargs = _begin_publish(inst, self, args, kwargs)
        if publication is None:
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            publication.finish(exc)
            raise
        publication.finish()
        return result

    return basic_publish


# -- deliveries -------------------------------------------------------------------------


def _deliver(
    inst: Instruments,
    channel: Any,
    queue: str,
    method: Any,
    properties: Any,
    body: Any,
    auto_ack: bool,
    pulled: bool,
) -> Delivery | None:
    try:
        destination = _destinations.get(channel, method.exchange, method.routing_key, queue)
        tag = int(method.delivery_tag or 0)
        attributes = message_attributes(
            destination.attributes,
            getattr(properties, "message_id", None),
            getattr(properties, "correlation_id", None),
            len(body) if isinstance(body, _BINARY) else 0,
            tag,
        )
        delivery = inst.deliver(
            destination.name,
            destination.label,
            attributes,
            getattr(properties, "headers", None),
            auto_ack,
            current_context() if pulled else None,
        )
        if not auto_ack:
            delivery.track((id(channel), tag), channel, tag, method)
        return delivery
    except Exception as exc:
        report("pika delivery", exc)
        return None


def _traced_callback(
    queue: str, callback: Callable[..., Any], auto_ack: bool
) -> Callable[..., Any]:
    def on_message(channel: Any, method: Any, properties: Any, body: Any) -> Any:
        inst = _get()
        delivery = (
            _deliver(inst, channel, queue, method, properties, body, auto_ack, False)
            if inst.active and _installed[0]
            else None
        )
        if delivery is None:
            return callback(channel, method, properties, body)
        token = _attach(delivery.context)
        try:
            result = callback(channel, method, properties, body)
        except BaseException as exc:
            _detach(token)
            delivery.finish(exc)
            raise
        _detach(token)
        delivery.finish()
        return result

    on_message.__wrapped__ = callback  # type: ignore[attr-defined]
    return on_message


def _consume_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, bool]:
    names = ("queue", "on_message_callback", "auto_ack")
    values = [args[i] if i < len(args) else kwargs.get(name) for i, name in enumerate(names)]
    return values[0], values[1], bool(values[2])


def _wrap_basic_consume(original: Callable[..., Any], blocking: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    def basic_consume(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            queue, callback, auto_ack = _consume_arguments(args, kwargs)
            # a BlockingChannel consumes through the channel implementation with its
            # own callback, and dispatches to the application's later: only the
            # application's callback is a delivery
            if callable(callback) and (
                blocking or not isinstance(getattr(callback, "__self__", None), BlockingChannel)
            ):
                traced = _traced_callback(str(queue), callback, auto_ack)
                if len(args) > 1:
                    args = (args[0], traced, *args[2:])
                else:
                    kwargs = {**kwargs, "on_message_callback": traced}
        except Exception as exc:
            report("pika consume", exc)
        return original(self, *args, **kwargs)

    return basic_consume


def _end_current(channel: Any) -> None:
    previous = _current.pop(channel, None)
    if previous is not None:
        previous.finish()


def _pulled(
    channel: Any, queue: str, method: Any, properties: Any, body: Any, auto_ack: bool
) -> None:
    inst = _get()
    if not inst.active or not _installed[0]:
        return
    delivery = _deliver(inst, channel, queue, method, properties, body, auto_ack, True)
    if delivery is None:
        return
    delivery.enter()
    _current[channel] = delivery


def _traced_generator(
    channel: Any, generator: Iterator[Any], queue: str, auto_ack: bool
) -> Generator[Any, None, None]:
    try:
        while True:
            _end_current(channel)
            try:
                item = next(generator)
            except StopIteration:
                return
            try:
                method, properties, body = item
                if method is not None:
                    _pulled(channel, queue, method, properties, body, auto_ack)
            except Exception as exc:
                report("pika consume", exc)
            yield item
    finally:
        _end_current(channel)
        close = getattr(generator, "close", None)
        if close is not None:
            close()


def _wrap_consume(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def consume(self: Any, queue: str, auto_ack: bool = False, *args: Any, **kwargs: Any) -> Any:
        generator = original(self, queue, auto_ack, *args, **kwargs)
        return _traced_generator(self, generator, str(queue), bool(auto_ack))

    return consume


def _wrap_basic_get(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def basic_get(self: Any, queue: str, auto_ack: bool = False) -> Any:
        _end_current(self)
        result = original(self, queue, auto_ack)
        try:
            method, properties, body = result
            if method is not None:
                _pulled(self, str(queue), method, properties, body, bool(auto_ack))
        except Exception as exc:
            report("pika get", exc)
        return result

    return basic_get


def _wrap_ending(original: Callable[..., Any]) -> Callable[..., Any]:
    """``cancel`` or ``close`` of a blocking channel: its open deliveries end."""

    @functools.wraps(original)
    def ending(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            _end_current(self)
            if original.__name__ == "close":
                end_channel(self)

    return ending


# -- settlements ------------------------------------------------------------------------


def _wrap_settle(original: Callable[..., Any], result: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def settled(self: Any, delivery_tag: int = 0, *args: Any, **kwargs: Any) -> Any:
        outcome = original(self, delivery_tag, *args, **kwargs)
        if not (_open or _pending):  # nothing is tracked: nothing to settle
            return outcome
        try:
            multiple = bool(args[0] if args else kwargs.get("multiple", False))
            if result == REJECT:  # basic_reject(delivery_tag, requeue) has no multiple
                multiple = False
            if multiple:
                settle_multiple(self, int(delivery_tag or 0), result)
            else:
                settle((id(self), int(delivery_tag or 0)), result)
        except Exception as exc:
            report("pika settle", exc)
        return outcome

    return settled


def remove() -> None:
    """The instrumentation is being removed: what it wrapped passes through from now on."""
    _installed[0] = False


def install(patches: Patches) -> None:
    """Instrument pika through *patches*."""
    channel = pika.channel.Channel
    patches.wrap(
        BlockingChannel, "basic_publish", _wrap_blocking_publish(BlockingChannel.basic_publish)
    )
    patches.wrap(channel, "basic_publish", _wrap_publish(channel.basic_publish))
    patches.wrap(
        BlockingChannel, "basic_consume", _wrap_basic_consume(BlockingChannel.basic_consume, True)
    )
    patches.wrap(channel, "basic_consume", _wrap_basic_consume(channel.basic_consume, False))
    patches.wrap(BlockingChannel, "consume", _wrap_consume(BlockingChannel.consume))
    patches.wrap(BlockingChannel, "basic_get", _wrap_basic_get(BlockingChannel.basic_get))
    patches.wrap(BlockingChannel, "cancel", _wrap_ending(BlockingChannel.cancel))
    patches.wrap(BlockingChannel, "close", _wrap_ending(BlockingChannel.close))
    for owner in (BlockingChannel, channel):
        patches.wrap(owner, "basic_ack", _wrap_settle(owner.basic_ack, ACK))
        patches.wrap(owner, "basic_nack", _wrap_settle(owner.basic_nack, NACK))
        patches.wrap(owner, "basic_reject", _wrap_settle(owner.basic_reject, REJECT))
    _installed[0] = True
