"""The metrics of the queue surface (the catalog in the design)."""

from __future__ import annotations

from limelight_hookspecs import MetricDeclaration, MetricKind

__all__ = [
    "ALL_METRICS",
    "QUEUE_BUCKETS",
    "QUEUE_IN_FLIGHT",
    "QUEUE_MESSAGES",
    "QUEUE_PROCESS_DURATION",
    "QUEUE_PUBLISHED",
]

QUEUE_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
"""Bucket bounds of ``queue_process_duration_seconds`` (seconds).

Handlers range from a sub-millisecond update to jobs of minutes, so the buckets
start at 500 µs (the Prometheus default starts at 5 ms) and go on to 2 minutes
(the default stops at 10 s).
"""

QUEUE_PUBLISHED = MetricDeclaration(
    "queue_published_total",
    MetricKind.COUNTER,
    "Messages published, by destination (exchange:routing key for AMQP, subject for NATS) "
    "and result (ok, or error when the client raised).",
    unit="1",
    label_names=("queue", "result"),
)
QUEUE_MESSAGES = MetricDeclaration(
    "queue_messages_total",
    MetricKind.COUNTER,
    "Messages delivered to the application and processed, by queue (the AMQP queue, the NATS "
    "subject) and how they were settled (ack, nack, reject).",
    unit="1",
    label_names=("queue", "result"),
)
QUEUE_PROCESS_DURATION = MetricDeclaration(
    "queue_process_duration_seconds",
    MetricKind.HISTOGRAM,
    "Time from a message being handed to the application to the end of its processing, "
    "in seconds, by queue and settlement (ack, nack, reject).",
    unit="s",
    label_names=("queue", "result"),
    buckets=QUEUE_BUCKETS,
)
QUEUE_IN_FLIGHT = MetricDeclaration(
    "queue_in_flight",
    MetricKind.GAUGE_ADD,
    "Messages handed to the application whose processing has not ended yet, by queue.",
    unit="1",
    label_names=("queue",),
)

ALL_METRICS = (QUEUE_PUBLISHED, QUEUE_MESSAGES, QUEUE_PROCESS_DURATION, QUEUE_IN_FLIGHT)
"""Every metric the plugin declares, in catalog order."""
