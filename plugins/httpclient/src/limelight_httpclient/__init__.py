"""limelight-httpclient: outbound HTTP for limelight (httpx and requests).

Every request gets a CLIENT span named after its method, ending when the
response body has been read or closed, with the context injected through the
global propagator, and is counted in ``http_client_requests_total``,
``http_client_request_duration_seconds`` and ``http_client_requests_in_flight``.

Installed, the plugin instruments every httpx and requests client when
telemetry starts (``LIMELIGHT_HTTPCLIENT_INSTRUMENT``). The same, by hand,
through the instrument contract every limelight surface follows::

    import limelight_httpclient

    limelight_httpclient.instrument()            # httpx and requests, those installed
    limelight_httpclient.is_instrumented("httpx")
    limelight_httpclient.uninstrument()          # the libraries exactly as they were

To wrap a client yourself::

    import httpx
    from limelight_httpclient import InstrumentedTransport

    client = httpx.Client(transport=InstrumentedTransport(httpx.HTTPTransport(retries=2)))

The httpx and requests names are imported on first use, so either library can
be missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._env import (
        LIMELIGHT_HTTPCLIENT_INSTRUMENT,
        LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS,
        LIMELIGHT_HTTPCLIENT_ROOT_SPANS,
        VARIABLES,
    )
    from ._httpx import (
        AsyncInstrumentedTransport,
        InstrumentedTransport,
        instrument_httpx,
        uninstrument_httpx,
    )
    from ._instrumentation import instrument, instrument_libraries, is_instrumented, uninstrument
    from ._instruments import ERROR_STATUS, TRACER_NAME
    from ._metrics import (
        ALL_METRICS,
        HTTP_CLIENT_DURATION,
        HTTP_CLIENT_IN_FLIGHT,
        HTTP_CLIENT_REQUESTS,
    )
    from ._plugin import HttpClientPlugin, plugin
    from ._requests import (
        InstrumentedAdapter,
        instrument_requests,
        instrument_session,
        uninstrument_requests,
    )
    from ._url import DEFAULT_REDACTED_QUERY_PARAMS, REDACTED, redact_url

__all__ = [
    "ALL_METRICS",
    "DEFAULT_REDACTED_QUERY_PARAMS",
    "ERROR_STATUS",
    "HTTP_CLIENT_DURATION",
    "HTTP_CLIENT_IN_FLIGHT",
    "HTTP_CLIENT_REQUESTS",
    "LIMELIGHT_HTTPCLIENT_INSTRUMENT",
    "LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS",
    "LIMELIGHT_HTTPCLIENT_ROOT_SPANS",
    "REDACTED",
    "TRACER_NAME",
    "VARIABLES",
    "AsyncInstrumentedTransport",
    "HttpClientPlugin",
    "InstrumentedAdapter",
    "InstrumentedTransport",
    "instrument",
    "instrument_httpx",
    "instrument_libraries",
    "instrument_requests",
    "instrument_session",
    "is_instrumented",
    "plugin",
    "redact_url",
    "uninstrument",
    "uninstrument_httpx",
    "uninstrument_requests",
]

_LAZY = {
    "LIMELIGHT_HTTPCLIENT_INSTRUMENT": "_env",
    "LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS": "_env",
    "LIMELIGHT_HTTPCLIENT_ROOT_SPANS": "_env",
    "VARIABLES": "_env",
    "instrument": "_instrumentation",
    "instrument_libraries": "_instrumentation",
    "is_instrumented": "_instrumentation",
    "uninstrument": "_instrumentation",
    "ERROR_STATUS": "_instruments",
    "TRACER_NAME": "_instruments",
    "ALL_METRICS": "_metrics",
    "HTTP_CLIENT_DURATION": "_metrics",
    "HTTP_CLIENT_IN_FLIGHT": "_metrics",
    "HTTP_CLIENT_REQUESTS": "_metrics",
    "HttpClientPlugin": "_plugin",
    "plugin": "_plugin",
    "DEFAULT_REDACTED_QUERY_PARAMS": "_url",
    "REDACTED": "_url",
    "redact_url": "_url",
    "AsyncInstrumentedTransport": "_httpx",
    "InstrumentedTransport": "_httpx",
    "instrument_httpx": "_httpx",
    "uninstrument_httpx": "_httpx",
    "InstrumentedAdapter": "_requests",
    "instrument_requests": "_requests",
    "instrument_session": "_requests",
    "uninstrument_requests": "_requests",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
