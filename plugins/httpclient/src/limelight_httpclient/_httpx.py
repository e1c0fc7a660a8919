"""httpx: instrumented transports (sync and async) and the global installation.

Explicitly::

    client = httpx.Client(transport=InstrumentedTransport(httpx.HTTPTransport(retries=2)))
    client = httpx.AsyncClient(transport=AsyncInstrumentedTransport())

Globally (what the plugin does at start unless told otherwise)::

    limelight_httpclient.instrument("httpx")   # every httpx.HTTPTransport / AsyncHTTPTransport

The wrapped transport keeps its connection pool and is closed with the
wrapper. The span ends when the response body has been read to the end or
the response is closed, not when the headers arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import TypeVar

import httpx

from limelight.surface import Patches

from ._instrumentation import instrumentation
from ._instruments import Call, Instruments, binding, instrumenting, report

__all__ = [
    "AsyncInstrumentedTransport",
    "InstrumentedTransport",
    "instrument_httpx",
    "uninstrument_httpx",
]

_get = binding.get
_instrumenting_get = instrumenting.get
_instrumenting_set = instrumenting.set
_instrumenting_reset = instrumenting.reset
_C = TypeVar("_C", bound=Call)


_VERSIONS = {b"HTTP/1.1": "1.1", b"HTTP/2": "2", b"HTTP/1.0": "1.0", b"HTTP/3": "3"}


def _http_version(version: object) -> str | None:
    """The ``network.protocol.version`` of an ``http_version`` extension not in ``_VERSIONS``."""
    if not version:
        return None
    text = version.decode("ascii", "replace") if isinstance(version, bytes) else str(version)
    return text.removeprefix("HTTP/")


class _SyncCall(Call, httpx.SyncByteStream):
    """A request in flight, and the response body it wraps once the headers arrived:
    finishing the body (end, close or error) finishes the call."""

    __slots__ = ("stream",)

    stream: httpx.SyncByteStream

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.stream
        except BaseException as exc:
            self.finish(exc)
            raise
        self.finish()

    def close(self) -> None:
        try:
            self.stream.close()
        except BaseException as exc:
            self.finish(exc)
            raise
        self.finish()


class _AsyncCall(Call, httpx.AsyncByteStream):
    """The async :class:`_SyncCall`."""

    __slots__ = ("stream",)

    stream: httpx.AsyncByteStream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.stream:
                yield chunk
        except BaseException as exc:
            self.finish(exc)
            raise
        self.finish()

    async def aclose(self) -> None:
        try:
            await self.stream.aclose()
        except BaseException as exc:
            self.finish(exc)
            raise
        self.finish()


def _begin(
    inst: Instruments, request: httpx.Request, root_spans: bool | None, call_type: type[_C]
) -> _C | None:
    """Start recording *request* as a *call_type*; ``None`` when it is not recorded."""
    try:
        url = request.url
        return inst.begin(
            request.method,
            url,
            url.scheme,
            url.host,
            url.port,
            request.headers,
            root_spans,
            call_type,
        )
    except Exception as exc:
        report("httpx request", exc)
        return None


def _received(call: _SyncCall | _AsyncCall, response: httpx.Response) -> None:
    """The response headers arrived: the call now ends with the body."""
    try:
        if call.span is None:
            version = None
        else:
            raw = response.extensions.get("http_version")
            known = _VERSIONS.get(raw) if isinstance(raw, bytes) else None
            version = known if known is not None or not raw else _http_version(raw)
        call.response(response.status_code, version)
        if response.is_closed:  # a body given as bytes was read already
            call.finish()
        else:
            call.stream = response.stream
            response.stream = call
    except Exception as exc:
        report("httpx response", exc)
        call.finish()


def _handle(
    send: Callable[[httpx.Request], httpx.Response],
    request: httpx.Request,
    root_spans: bool | None,
    guard: bool,
) -> httpx.Response:
    """``send(request)``, recorded (*guard*: an explicit wrapper, with a limelight
    layer possibly below it)."""
    inst = _get()
    if not inst.active or _instrumenting_get() is request:
        return send(request)
    call = _begin(inst, request, root_spans, _SyncCall)
    if call is None:
        return send(request)
    # an explicit wrapper marks this request so a globally instrumented transport
    # below it passes it straight through (the patched transport has nothing below)
    token = _instrumenting_set(request) if guard else None
    try:
        response = send(request)
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        if token is not None:
            _instrumenting_reset(token)
    _received(call, response)
    return response


async def _handle_async(
    send: Callable[[httpx.Request], Awaitable[httpx.Response]],
    request: httpx.Request,
    root_spans: bool | None,
    guard: bool,
) -> httpx.Response:
    """The async :func:`_handle`."""
    inst = _get()
    if not inst.active or _instrumenting_get() is request:
        return await send(request)
    call = _begin(inst, request, root_spans, _AsyncCall)
    if call is None:
        return await send(request)
    token = _instrumenting_set(request) if guard else None
    try:
        response = await send(request)
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        if token is not None:
            _instrumenting_reset(token)
    _received(call, response)
    return response


class InstrumentedTransport(httpx.BaseTransport):
    """An httpx transport that records every request it sends, then delegates.

    :param transport: the transport doing the work (default
        ``httpx.HTTPTransport()``); its connection pool, retries and TLS
        settings are untouched, and closing this transport closes it.
    :param root_spans: whether a request made outside any span gets its own
        span; ``None`` follows ``LIMELIGHT_HTTPCLIENT_ROOT_SPANS``.
    """

    def __init__(
        self, transport: httpx.BaseTransport | None = None, *, root_spans: bool | None = None
    ) -> None:
        self.transport = transport if transport is not None else httpx.HTTPTransport()
        self.root_spans = root_spans

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through the wrapped transport, recording it."""
        return _handle(self.transport.handle_request, request, self.root_spans, True)

    def close(self) -> None:
        """Close the wrapped transport (and its connection pool)."""
        self.transport.close()

    def __enter__(self) -> InstrumentedTransport:
        self.transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.transport.__exit__(exc_type, exc_value, traceback)


class AsyncInstrumentedTransport(httpx.AsyncBaseTransport):
    """An httpx async transport that records every request it sends, then delegates.

    :param transport: the transport doing the work (default
        ``httpx.AsyncHTTPTransport()``); ``aclose`` closes it.
    :param root_spans: as for :class:`InstrumentedTransport`.
    """

    def __init__(
        self, transport: httpx.AsyncBaseTransport | None = None, *, root_spans: bool | None = None
    ) -> None:
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()
        self.root_spans = root_spans

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through the wrapped transport, recording it."""
        return await _handle_async(
            self.transport.handle_async_request, request, self.root_spans, True
        )

    async def aclose(self) -> None:
        """Close the wrapped transport (and its connection pool)."""
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncInstrumentedTransport:
        await self.transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.transport.__aexit__(exc_type, exc_value, traceback)


# -- global installation -------------------------------------------------------------------


def install(patches: Patches) -> None:
    """Record every request of every ``httpx.HTTPTransport`` and ``AsyncHTTPTransport``.

    The instrument contract's install step for ``"httpx"``: the two send
    methods are replaced through *patches*, so removal puts back the very
    functions that were there. That covers the transport of every client not
    given a custom one, clients created before included.
    """
    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        return _handle(sync_send.__get__(self), request, None, False)

    async def handle_async_request(
        self: httpx.AsyncHTTPTransport, request: httpx.Request
    ) -> httpx.Response:
        return await _handle_async(async_send.__get__(self), request, None, False)

    handle_request.__wrapped__ = sync_send  # type: ignore[attr-defined]
    handle_async_request.__wrapped__ = async_send  # type: ignore[attr-defined]
    patches.wrap(httpx.HTTPTransport, "handle_request", handle_request)
    patches.wrap(httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request)


def instrument_httpx() -> bool:
    """Record every request of every ``httpx.HTTPTransport`` and ``AsyncHTTPTransport``.

    ``limelight_httpclient.instrument("httpx")`` as a boolean: that is the
    transport of every client that was not given a custom one, clients
    created before this call included. Custom transports (a mock, a SOCKS
    proxy) are recorded when wrapped in :class:`InstrumentedTransport`.
    Idempotent: a second call changes nothing. Returns whether this call
    installed it.
    """
    return bool(instrumentation.instrument("httpx"))


def uninstrument_httpx() -> bool:
    """Undo :func:`instrument_httpx`; returns whether it was installed."""
    return bool(instrumentation.uninstrument("httpx"))


def httpx_instrumented() -> bool:
    """Whether :func:`instrument_httpx` is in effect."""
    return instrumentation.is_instrumented("httpx")
