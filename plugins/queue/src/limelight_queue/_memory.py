"""An in-process asyncio message broker, instrumented through the generic API.

For demos, tests and single-process work queues that need no server: named
queues of messages with headers, published and consumed as with a real broker,
so the spans, the trace across the queue and the metrics are those of one.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from ._api import process, publish
from ._core import Delivery

__all__ = ["MemoryBroker", "MemoryMessage"]

SYSTEM = "memory"
"""The ``messaging.system`` of the in-memory broker."""


class MemoryMessage:
    """A message of a :class:`MemoryBroker` queue.

    Settle it once with :meth:`ack`, :meth:`nack` (``requeue=True`` puts it back
    at the end of its queue) or :meth:`reject`; a consumer's handler that
    returns without settling acknowledges it, one that raises rejects it.
    """

    __slots__ = ("_broker", "_delivery", "body", "headers", "message_id", "queue", "settled")

    def __init__(
        self,
        broker: MemoryBroker,
        queue: str,
        body: bytes,
        headers: dict[str, str],
        message_id: str,
    ) -> None:
        self._broker = broker
        self.queue = queue
        self.body = body
        self.headers = headers
        self.message_id = message_id
        self.settled: str | None = None
        self._delivery: Delivery | None = None

    def _settle(self, result: str) -> None:
        if self.settled is not None:
            raise RuntimeError(f"message {self.message_id} was already settled ({self.settled})")
        self.settled = result
        if self._delivery is not None:
            self._delivery.settle(result)

    def ack(self) -> None:
        """The message was processed."""
        self._settle("ack")

    def nack(self, requeue: bool = True) -> None:
        """The message was not processed; with *requeue* it is delivered again."""
        self._settle("nack")
        if requeue:
            self._broker._put(
                MemoryMessage(self._broker, self.queue, self.body, self.headers, self.message_id)
            )

    def reject(self) -> None:
        """The message is dropped."""
        self._settle("reject")


class MemoryBroker:
    """Named in-process queues with at-least-once delivery to consumers.

    ::

        broker = MemoryBroker()
        broker.consume("emails", send_email)      # async def send_email(message): ...
        await broker.publish("emails", b"hello")  # a PRODUCER span, context in the headers
        await broker.join("emails")               # until every message is settled

    Each delivery runs ``handler(message)`` inside a CONSUMER span ``process
    <queue>`` that continues the publisher's trace, counted in the queue metrics.
    """

    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[MemoryMessage]] = {}
        self._consumers: list[asyncio.Task[None]] = []
        self._ids = itertools.count(1)

    def _queue(self, name: str) -> asyncio.Queue[MemoryMessage]:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = asyncio.Queue()
        return queue

    def _put(self, message: MemoryMessage) -> None:
        self._queue(message.queue).put_nowait(message)

    async def publish(self, queue: str, body: bytes, headers: dict[str, str] | None = None) -> str:
        """Put a message on *queue*; returns its id."""
        message_id = str(next(self._ids))
        carried = dict(headers or {})
        with publish(queue, carried, system=SYSTEM, message_id=message_id, body_size=len(body)):
            self._put(MemoryMessage(self, queue, body, carried, message_id))
        return message_id

    def consume(
        self, queue: str, handler: Callable[[MemoryMessage], Awaitable[Any]]
    ) -> asyncio.Task[None]:
        """Deliver every message of *queue* to *handler*, one at a time, until
        :meth:`close`; returns the consumer task.

        The task runs in a fresh context, so its deliveries continue their
        publishers' traces, never the trace of whatever started the consumer.
        """
        task = asyncio.get_running_loop().create_task(
            self._run(queue, handler), context=contextvars.Context()
        )
        self._consumers.append(task)
        return task

    async def _run(self, name: str, handler: Callable[[MemoryMessage], Awaitable[Any]]) -> None:
        queue = self._queue(name)
        while True:
            message = await queue.get()
            try:
                with process(
                    name,
                    message.headers,
                    system=SYSTEM,
                    message_id=message.message_id,
                    body_size=len(message.body),
                ) as delivery:
                    message._delivery = delivery
                    try:
                        await handler(message)
                    except Exception:
                        if message.settled is None:
                            message.reject()
                        raise
                    if message.settled is None:
                        message.ack()
            except Exception:  # the handler's failure is on its span; the consumer goes on
                pass
            finally:
                queue.task_done()

    async def join(self, queue: str) -> None:
        """Wait until every message put on *queue* so far has been settled."""
        await self._queue(queue).join()

    def depth(self, queue: str) -> int:
        """Messages waiting on *queue*."""
        return self._queue(queue).qsize()

    async def close(self) -> None:
        """Stop every consumer (a delivery being processed is cancelled)."""
        consumers, self._consumers = self._consumers, []
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
