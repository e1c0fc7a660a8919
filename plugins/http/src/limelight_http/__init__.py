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

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
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
        LIMELIGHT_HTTP_METRICS_PATH,
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
    "LIMELIGHT_HTTP_METRICS_PATH",
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

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._asgi": (
            "EXCHANGE_KEY",
            "ASGIMiddleware",
            "RouteResolver",
        ),
        "._django": ("DjangoMiddleware",),
        "._exchange": (
            "CLIENT_CLOSED_STATUS",
            "OTHER_METHOD",
            "UNMATCHED_ROUTE",
            "AttributesHook",
            "Exchange",
        ),
        "._flask": ("instrument_flask",),
        "._instrumentation": (
            "instrument",
            "is_instrumented",
            "uninstrument",
        ),
        "._plugin": (
            "DEFAULT_KNOWN_METHODS",
            "HTTP_IN_FLIGHT",
            "HTTP_REQUEST_DURATION",
            "HTTP_REQUESTS",
            "LIMELIGHT_HTTP_EXCLUDED_PATHS",
            "LIMELIGHT_HTTP_METRICS_PATH",
            "LIMELIGHT_HTTP_RESPONSE_TRACEPARENT",
            "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
            "HttpPlugin",
            "plugin",
        ),
        "._starlette": (
            "instrument_fastapi",
            "instrument_starlette",
        ),
        "._wsgi": ("WSGIMiddleware",),
    },
    distribution="limelight-http",
)
