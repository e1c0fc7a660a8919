"""Every environment variable the plugin reads, declared once."""

from __future__ import annotations

from typing import Any

from limelight_hookspecs import EnvVar, parse_list

__all__ = [
    "LIBRARIES",
    "LIMELIGHT_QUEUE_INSTRUMENT",
    "LIMELIGHT_QUEUE_PROCESS_PARENT",
    "PARENT_LINK",
    "PARENT_PRODUCER",
    "VARIABLES",
]

LIBRARIES: tuple[str, ...] = ("aio_pika", "pika", "nats")
"""The broker client libraries the plugin can instrument, by import name."""

PARENT_PRODUCER = "producer"
"""The process span is a child of the producer's span (one trace) and links to it."""
PARENT_LINK = "link"
"""The process span only links to the producer's span (a trace of its own)."""


def _parse_libraries(raw: str) -> tuple[str, ...]:
    names = tuple(name.lower().replace("-", "_") for name in parse_list(raw))
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in LIBRARIES]
    if unknown:
        raise ValueError(f"unknown library {unknown[0]!r}; expected {', '.join(LIBRARIES)} or none")
    return names


def _parse_parent(raw: str) -> str:
    value = raw.strip().lower()
    if value not in (PARENT_PRODUCER, PARENT_LINK):
        raise ValueError(f"expected {PARENT_PRODUCER} or {PARENT_LINK}")
    return value


LIMELIGHT_QUEUE_INSTRUMENT = EnvVar[tuple[str, ...]](
    "LIMELIGHT_QUEUE_INSTRUMENT",
    LIBRARIES,
    _parse_libraries,
    "Broker client libraries instrumented from telemetry start, each when the application "
    "imports it (among aio_pika, pika, nats); none to instrument nothing (call "
    "limelight_queue.instrument() yourself).",
    "aio_pika,nats",
)
LIMELIGHT_QUEUE_PROCESS_PARENT = EnvVar(
    "LIMELIGHT_QUEUE_PROCESS_PARENT",
    PARENT_PRODUCER,
    _parse_parent,
    "What the process span of a delivered message hangs from: producer (a child of the "
    "publish span, so publisher and consumer share one trace; it also links to it) or link "
    "(a trace of its own with a link to the publish span, as the conventions recommend for "
    "batch consumers).",
    "link",
)

VARIABLES: tuple[EnvVar[Any], ...] = (LIMELIGHT_QUEUE_INSTRUMENT, LIMELIGHT_QUEUE_PROCESS_PARENT)
"""Every variable the plugin reads, in documentation order."""
