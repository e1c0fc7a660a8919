"""The generic API: the same spans and metrics for any transport that carries headers.

For a broker limelight does not instrument (SQS, Redis streams, an in-process
queue), wrap the send in :func:`publish` and the handling in :func:`process`::

    from limelight_queue import process, publish

    headers = {}
    with publish("orders", headers, system="redis"):
        redis.xadd("orders", {"body": body, **headers})

    with process("orders", entry_headers, system="redis") as delivery:
        handle(entry)
        delivery.ack()
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from limelight import semconv as sc

from ._core import Delivery, Publication, binding, report

__all__ = ["ProcessScope", "PublishScope", "messaging_attributes", "process", "publish"]

_attach = otel_context.attach
_detach = otel_context.detach
_INVALID_SPAN = trace.INVALID_SPAN
_EMPTY = Context()


def messaging_attributes(
    system: str,
    operation: str,
    operation_type: str,
    destination: str,
    *,
    message_id: str | None = None,
    body_size: int | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    extra: Mapping[str, AttributeValue] | None = None,
) -> dict[str, AttributeValue]:
    """The span attributes of one messaging operation, named as the conventions name them."""
    attributes: dict[str, AttributeValue] = {
        sc.MESSAGING_SYSTEM: system,
        sc.MESSAGING_OPERATION_NAME: operation,
        sc.MESSAGING_OPERATION_TYPE: operation_type,
        sc.MESSAGING_DESTINATION_NAME: destination,
    }
    if server_address:
        attributes[sc.SERVER_ADDRESS] = server_address
        if server_port is not None:
            attributes[sc.SERVER_PORT] = server_port
    if message_id:
        attributes[sc.MESSAGING_MESSAGE_ID] = message_id
    if body_size is not None:
        attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] = body_size
    if extra:
        attributes.update(extra)
    return attributes


def _span_name(operation: str, destination: str) -> str:
    return f"{operation} {destination}" if destination else operation


class PublishScope:
    """The context manager :func:`publish` returns; gives a :class:`Publication`."""

    __slots__ = ("_args", "_publication")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self._args = args
        self._publication: Publication | None = None

    def __enter__(self) -> Publication:
        destination, headers, system, queue, message_id, body_size, address, port, extra = (
            self._args
        )
        publication: Publication | None = None
        try:
            inst = binding.get()
            if inst.active:
                attributes = messaging_attributes(
                    system,
                    "publish",
                    "send",
                    destination,
                    message_id=message_id,
                    body_size=body_size,
                    server_address=address,
                    server_port=port,
                    extra=extra,
                )
                publication = inst.publish(
                    _span_name("publish", destination),
                    destination if queue is None else queue,
                    attributes,
                    headers,
                )
        except Exception as exc:
            report("publish", exc)
        if publication is None:
            publication = Publication(None, _INVALID_SPAN)
        self._publication = publication
        return publication

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        publication, self._publication = self._publication, None
        if publication is not None:
            publication.finish(exc)

    async def __aenter__(self) -> Publication:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def publish(
    destination: str,
    headers: MutableMapping[str, Any] | None,
    *,
    system: str,
    queue: str | None = None,
    message_id: str | None = None,
    body_size: int | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> PublishScope:
    """Record the publication of one message, sent inside the ``with`` block.

    On entry a PRODUCER span ``publish <destination>`` starts (a child of the
    current span) and the trace context is written into *headers* through the
    global propagator; send the message with those headers inside the block.
    On exit ``queue_published_total`` counts it, ``ok`` or, when the block
    raised, ``error`` (the exception propagates unchanged). Works in ``with``
    and ``async with``.

    :param destination: where the message goes (``messaging.destination.name``).
    :param headers: the message's header mapping, changed in place; ``None`` when
        the transport carries none (nothing is injected).
    :param system: ``messaging.system`` (``aws_sqs``, ``redis``, ...).
    :param queue: the ``queue`` label, when it should differ from *destination*.
    :param attributes: more span attributes.
    """
    return PublishScope(
        (
            destination,
            headers,
            system,
            queue,
            message_id,
            body_size,
            server_address,
            server_port,
            attributes,
        )
    )


class ProcessScope:
    """The context manager :func:`process` returns; gives a :class:`Delivery`."""

    __slots__ = ("_args", "_delivery", "_token")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self._args = args
        self._delivery: Delivery | None = None
        self._token: object = None

    def __enter__(self) -> Delivery:
        (
            destination,
            headers,
            system,
            queue,
            message_id,
            body_size,
            auto_ack,
            address,
            port,
            extra,
        ) = self._args
        delivery: Delivery | None = None
        try:
            inst = binding.get()
            if inst.active:
                attributes = messaging_attributes(
                    system,
                    "process",
                    "process",
                    destination,
                    message_id=message_id,
                    body_size=body_size,
                    server_address=address,
                    server_port=port,
                    extra=extra,
                )
                delivery = inst.deliver(
                    _span_name("process", destination),
                    destination if queue is None else queue,
                    attributes,
                    headers,
                    auto_ack,
                )
                self._token = _attach(delivery.context)
        except Exception as exc:
            report("process", exc)
        if delivery is None:
            delivery = Delivery(None, _INVALID_SPAN, _EMPTY, auto_ack)
        self._delivery = delivery
        return delivery

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        delivery, self._delivery = self._delivery, None
        token, self._token = self._token, None
        if token is not None:
            _detach(token)  # type: ignore[arg-type]
        if delivery is not None:
            delivery.finish(exc)

    async def __aenter__(self) -> Delivery:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def process(
    destination: str,
    headers: Mapping[str, Any] | None,
    *,
    system: str,
    queue: str | None = None,
    message_id: str | None = None,
    body_size: int | None = None,
    auto_ack: bool = False,
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> ProcessScope:
    """Record the processing of one delivered message, handled inside the ``with`` block.

    On entry a CONSUMER span ``process <destination>`` starts from the context
    in *headers*: a child of the producer's span, linked to it
    (``LIMELIGHT_QUEUE_PROCESS_PARENT=link`` makes it linked only); a root span
    when the headers carry no valid context. The span is current for the whole
    block, so work done there is its child, and ``queue_in_flight`` counts the
    message. Tell the returned :class:`Delivery` how the message was settled
    (``delivery.ack()``, ``.nack()``, ``.reject()``); on exit
    ``queue_messages_total`` and ``queue_process_duration_seconds`` record it
    with that result, or, when it was not settled, ``ack`` if *auto_ack* else
    ``nack``. An exception in the block marks the span failed and propagates.

    :param headers: the message's headers as received (bytes and non-string
        values are read as well); ``None`` when it has none.
    :param queue: the ``queue`` label, when it should differ from *destination*.
    """
    return ProcessScope(
        (
            destination,
            headers,
            system,
            queue,
            message_id,
            body_size,
            auto_ack,
            server_address,
            server_port,
            attributes,
        )
    )
