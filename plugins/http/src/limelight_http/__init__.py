"""limelight-http: the HTTP server surface of limelight.

Middleware for any ASGI app (:class:`ASGIMiddleware`) and any WSGI app
(:class:`WSGIMiddleware`), a Django middleware (:class:`DjangoMiddleware`) and
one-call setup for Starlette, FastAPI and Flask::

    import limelight
    from limelight_http import instrument_fastapi

    limelight.start(service_name="shop")
    app = instrument_fastapi(FastAPI())

Every request gets a SERVER span named ``"{method} {route}"`` and counts in
``http_requests_total``, ``http_request_duration_seconds`` and
``http_requests_in_flight``.

Or every application, with no call in its code, through the instrument
contract every limelight surface follows (before or after the framework is
imported)::

    import limelight_http

    limelight_http.instrument()      # Starlette, FastAPI, Flask, Django: those installed
    limelight_http.uninstrument()    # the frameworks exactly as they were

See docs/plugins/http.md.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("limelight-http")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from ._asgi import EXCHANGE_KEY, ASGIMiddleware, RouteResolver
from ._django import DjangoMiddleware
from ._exchange import (
    CLIENT_CLOSED_STATUS,
    OTHER_METHOD,
    UNMATCHED_ROUTE,
    AttributesHook,
    Exchange,
)
from ._flask import instrument_flask
from ._instrumentation import instrument, is_instrumented, uninstrument
from ._plugin import (
    DEFAULT_KNOWN_METHODS,
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    LIMELIGHT_HTTP_EXCLUDED_PATHS,
    LIMELIGHT_HTTP_RESPONSE_TRACEPARENT,
    OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS,
    HttpPlugin,
    plugin,
)
from ._starlette import instrument_fastapi, instrument_starlette
from ._wsgi import WSGIMiddleware

__all__ = [
    "CLIENT_CLOSED_STATUS",
    "DEFAULT_KNOWN_METHODS",
    "EXCHANGE_KEY",
    "HTTP_IN_FLIGHT",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "LIMELIGHT_HTTP_EXCLUDED_PATHS",
    "LIMELIGHT_HTTP_RESPONSE_TRACEPARENT",
    "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
    "OTHER_METHOD",
    "UNMATCHED_ROUTE",
    "ASGIMiddleware",
    "AttributesHook",
    "DjangoMiddleware",
    "Exchange",
    "HttpPlugin",
    "RouteResolver",
    "WSGIMiddleware",
    "__version__",
    "instrument",
    "instrument_fastapi",
    "instrument_flask",
    "instrument_starlette",
    "is_instrumented",
    "plugin",
    "uninstrument",
]
