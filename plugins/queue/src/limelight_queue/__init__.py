"""limelight-queue: one trace from publish to process, and the queue metrics.

Every message published through aio-pika, pika or nats-py gets a PRODUCER span
``publish <destination>`` whose context travels in the message headers; every
message handed to the application gets a CONSUMER span ``process
<destination>``, a child of the producer's (and linked to it), current for the
whole handler. ``queue_published_total``, ``queue_messages_total``,
``queue_process_duration_seconds`` and ``queue_in_flight`` count them.

Installed, the plugin instruments every supported library that is installed
when telemetry starts (``LIMELIGHT_QUEUE_INSTRUMENT``). By hand::

    import limelight_queue

    limelight_queue.instrument()            # aio_pika, pika and nats, those installed
    limelight_queue.instrument("pika")
    limelight_queue.uninstrument()

For any other transport, :func:`publish` and :func:`process` give the same
spans and metrics around your own send and handling; :class:`MemoryBroker` is
an in-process broker built on them. See ``docs/plugins/queue.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._api import ProcessScope, PublishScope, messaging_attributes, process, publish
    from ._core import ACK, NACK, REJECT, RESULTS, TRACER_NAME, Delivery, Publication
    from ._env import (
        LIBRARIES,
        LIMELIGHT_QUEUE_INSTRUMENT,
        LIMELIGHT_QUEUE_PROCESS_PARENT,
        PARENT_LINK,
        PARENT_PRODUCER,
        VARIABLES,
    )
    from ._instrument import instrument, is_instrumented, uninstrument
    from ._memory import MemoryBroker, MemoryMessage
    from ._metrics import (
        ALL_METRICS,
        QUEUE_BUCKETS,
        QUEUE_IN_FLIGHT,
        QUEUE_MESSAGES,
        QUEUE_PROCESS_DURATION,
        QUEUE_PUBLISHED,
    )
    from ._plugin import QueuePlugin, plugin

__all__ = [
    "ACK",
    "ALL_METRICS",
    "LIBRARIES",
    "LIMELIGHT_QUEUE_INSTRUMENT",
    "LIMELIGHT_QUEUE_PROCESS_PARENT",
    "NACK",
    "PARENT_LINK",
    "PARENT_PRODUCER",
    "QUEUE_BUCKETS",
    "QUEUE_IN_FLIGHT",
    "QUEUE_MESSAGES",
    "QUEUE_PROCESS_DURATION",
    "QUEUE_PUBLISHED",
    "REJECT",
    "RESULTS",
    "TRACER_NAME",
    "VARIABLES",
    "Delivery",
    "MemoryBroker",
    "MemoryMessage",
    "ProcessScope",
    "Publication",
    "PublishScope",
    "QueuePlugin",
    "instrument",
    "is_instrumented",
    "messaging_attributes",
    "plugin",
    "process",
    "publish",
    "uninstrument",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._api": (
            "ProcessScope",
            "PublishScope",
            "messaging_attributes",
            "process",
            "publish",
        ),
        "._core": (
            "ACK",
            "NACK",
            "REJECT",
            "RESULTS",
            "TRACER_NAME",
            "Delivery",
            "Publication",
        ),
        "._env": (
            "LIBRARIES",
            "LIMELIGHT_QUEUE_INSTRUMENT",
            "LIMELIGHT_QUEUE_PROCESS_PARENT",
            "PARENT_LINK",
            "PARENT_PRODUCER",
            "VARIABLES",
        ),
        "._instrument": (
            "instrument",
            "is_instrumented",
            "uninstrument",
        ),
        "._memory": (
            "MemoryBroker",
            "MemoryMessage",
        ),
        "._metrics": (
            "ALL_METRICS",
            "QUEUE_BUCKETS",
            "QUEUE_IN_FLIGHT",
            "QUEUE_MESSAGES",
            "QUEUE_PROCESS_DURATION",
            "QUEUE_PUBLISHED",
        ),
        "._plugin": (
            "QueuePlugin",
            "plugin",
        ),
    },
)
