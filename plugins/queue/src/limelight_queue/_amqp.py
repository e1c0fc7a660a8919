"""What the AMQP clients (aio-pika, pika) share: destination names and span attributes.

RabbitMQ destinations follow the RabbitMQ page of the messaging conventions:
``{exchange}:{routing key}`` on the producer side (one of them when the other is
empty, ``amq.default`` when both are), ``{exchange}:{routing key}:{queue}`` on
the consumer side (empty parts left out, the queue left out when it equals the
routing key). Server-named queues (``amq.gen-...``) are anonymous: span names
leave them out and the metrics label them ``amq.gen``, so a consumer that
reconnects does not create a series per connection.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry.util.types import AttributeValue

from limelight import semconv as sc

__all__ = [
    "ANONYMOUS",
    "SYSTEM",
    "Destination",
    "DestinationCache",
    "consumer_destination",
    "message_attributes",
    "producer_destination",
]

SYSTEM = "rabbitmq"
"""``messaging.system`` of both AMQP clients."""
ANONYMOUS = "amq.gen"
"""The ``queue`` label of server-named (anonymous) queues and routing keys."""
_CACHE_LIMIT = 1024


def _anonymous(name: str) -> bool:
    return name.startswith("amq.gen-")


class Destination:
    """The span name, metric label and constant span attributes of one destination."""

    __slots__ = ("attributes", "label", "name")

    def __init__(self, name: str, label: str, attributes: dict[str, AttributeValue]) -> None:
        self.name = name
        self.label = label
        self.attributes = attributes


_producers: dict[tuple[Any, ...], Destination] = {}
_consumers: dict[tuple[Any, ...], Destination] = {}


def _server(attributes: dict[str, AttributeValue], address: str | None, port: int | None) -> None:
    if address:
        attributes[sc.SERVER_ADDRESS] = address
        if port:
            attributes[sc.SERVER_PORT] = port


def producer_destination(
    exchange: str, routing_key: str, address: str | None, port: int | None
) -> Destination:
    """The destination of a message published to *exchange* with *routing_key*."""
    key = (exchange, routing_key, address, port)
    found = _producers.get(key)
    if found is not None:
        return found
    anonymous = _anonymous(routing_key)
    if exchange and routing_key:
        name = f"{exchange}:{routing_key}"
    else:
        name = exchange or routing_key or "amq.default"
    attributes: dict[str, AttributeValue] = {
        sc.MESSAGING_SYSTEM: SYSTEM,
        sc.MESSAGING_OPERATION_NAME: "publish",
        sc.MESSAGING_OPERATION_TYPE: "send",
        sc.MESSAGING_DESTINATION_NAME: name,
    }
    if routing_key:
        attributes[sc.MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY] = routing_key
    _server(attributes, address, port)
    if anonymous:
        label = f"{exchange}:{ANONYMOUS}" if exchange else ANONYMOUS
        destination = Destination(
            f"publish {exchange}" if exchange else "publish", label, attributes
        )
    else:
        destination = Destination(f"publish {name}", name, attributes)
    if len(_producers) < _CACHE_LIMIT:
        _producers[key] = destination
    return destination


def consumer_destination(
    exchange: str, routing_key: str, queue: str, address: str | None, port: int | None
) -> Destination:
    """The destination of a message delivered from *queue* (published to
    *exchange* with *routing_key*); its metric label is the queue."""
    key = (exchange, routing_key, queue, address, port)
    found = _consumers.get(key)
    if found is not None:
        return found
    parts = [exchange, routing_key] if routing_key == queue else [exchange, routing_key, queue]
    name = ":".join(p for p in parts if p) or "amq.default"
    attributes: dict[str, AttributeValue] = {
        sc.MESSAGING_SYSTEM: SYSTEM,
        sc.MESSAGING_OPERATION_NAME: "process",
        sc.MESSAGING_OPERATION_TYPE: "process",
        sc.MESSAGING_DESTINATION_NAME: name,
    }
    if routing_key:
        attributes[sc.MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY] = routing_key
    _server(attributes, address, port)
    if _anonymous(queue) or _anonymous(routing_key):
        destination = Destination(
            f"process {exchange}" if exchange else "process", ANONYMOUS, attributes
        )
    else:
        destination = Destination(f"process {name}", queue or name, attributes)
    if len(_consumers) < _CACHE_LIMIT:
        _consumers[key] = destination
    return destination


class DestinationCache:
    """The destinations of the messages published or consumed on each channel.

    ``get(channel, exchange, routing_key, queue)`` costs one lookup for the
    destination and the broker's address together, keyed by ``id(channel)`` with
    a weak reference that tells a channel from a later one with the same id
    (nothing is created on a hit). Bounded: cleared when full.

    :param server: ``(address, port)`` of the broker of a channel, computed once per
        destination and channel.
    """

    __slots__ = ("_entries", "_limit", "_server")

    def __init__(
        self, server: Callable[[Any], tuple[str | None, int | None]], limit: int = 4096
    ) -> None:
        self._server = server
        self._entries: dict[tuple[int, str, str, str | None], tuple[Any, Destination]] = {}
        self._limit = limit

    def get(
        self, channel: object, exchange: object, routing_key: object, queue: str | None
    ) -> Destination:
        """The destination of a message published (*queue* ``None``) or consumed from
        *queue* on *channel*."""
        if type(exchange) is not str:
            exchange = str(exchange or "")
        if type(routing_key) is not str:
            routing_key = str(routing_key or "")
        key = (id(channel), exchange, routing_key, queue)
        found = self._entries.get(key)
        if found is not None and found[0]() is channel:
            return found[1]
        address, port = self._server(channel)
        if queue is None:
            destination = producer_destination(exchange, routing_key, address, port)
        else:
            destination = consumer_destination(exchange, routing_key, queue, address, port)
        try:
            ref: Any = weakref.ref(channel)
        except TypeError:
            ref = functools.partial(_same, channel)
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[key] = (ref, destination)
        return destination


def _same(channel: object) -> object:
    return channel


def message_attributes(
    base: dict[str, AttributeValue],
    message_id: object,
    correlation_id: object,
    body_size: int,
    delivery_tag: int | None = None,
) -> dict[str, AttributeValue]:
    """*base* with the attributes of one message."""
    attributes = base.copy()
    if message_id:
        attributes[sc.MESSAGING_MESSAGE_ID] = str(message_id)
    if correlation_id:
        attributes[sc.MESSAGING_MESSAGE_CONVERSATION_ID] = str(correlation_id)
    attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] = body_size
    if delivery_tag:
        attributes[sc.MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG] = delivery_tag
    return attributes
