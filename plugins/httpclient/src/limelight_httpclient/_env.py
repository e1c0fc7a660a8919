"""Every environment variable the plugin reads, declared once."""

from __future__ import annotations

from typing import Any

from limelight.http import OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS
from limelight_hookspecs import EnvVar, parse_bool, parse_list

__all__ = [
    "LIBRARIES",
    "LIMELIGHT_HTTPCLIENT_INSTRUMENT",
    "LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS",
    "LIMELIGHT_HTTPCLIENT_ROOT_SPANS",
    "VARIABLES",
]

LIBRARIES: tuple[str, ...] = ("httpx", "requests")
"""The client libraries the plugin can instrument globally."""


def _parse_libraries(raw: str) -> tuple[str, ...]:
    names = tuple(name.lower() for name in parse_list(raw))
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in LIBRARIES]
    if unknown:
        raise ValueError(f"unknown library {unknown[0]!r}; expected {', '.join(LIBRARIES)} or none")
    return names


LIMELIGHT_HTTPCLIENT_INSTRUMENT = EnvVar[tuple[str, ...]](
    "LIMELIGHT_HTTPCLIENT_INSTRUMENT",
    LIBRARIES,
    _parse_libraries,
    "Client libraries instrumented for every client from telemetry start, each when the "
    "application imports it (among httpx, requests); none to instrument only the clients you "
    "wrap yourself.",
    "httpx",
)
LIMELIGHT_HTTPCLIENT_ROOT_SPANS = EnvVar(
    "LIMELIGHT_HTTPCLIENT_ROOT_SPANS",
    True,
    parse_bool,
    "Give a request made outside any span its own client span (the root of a new trace). "
    "With false such requests are only counted in the metrics.",
    "false",
)
LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS = EnvVar[tuple[str, ...]](
    "LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS",
    (),
    parse_list,
    "Query parameter names (case-insensitive) whose values url.full shows as REDACTED, "
    "in addition to the built-in list of signatures, tokens, keys and passwords.",
    "session,ticket",
)

VARIABLES: tuple[EnvVar[Any], ...] = (
    OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS,
    LIMELIGHT_HTTPCLIENT_INSTRUMENT,
    LIMELIGHT_HTTPCLIENT_ROOT_SPANS,
    LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS,
)
"""Every variable the plugin reads, in documentation order."""
