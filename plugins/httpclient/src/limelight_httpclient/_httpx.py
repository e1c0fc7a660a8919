"""httpx: instrumented transports (sync and async) and the global installation.

Explicitly::

    client = httpx.Client(transport=InstrumentedTransport(httpx.HTTPTransport(retries=2)))
    client = httpx.AsyncClient(transport=AsyncInstrumentedTransport())

Globally (what the plugin does at start unless told otherwise)::

    instrument_httpx()   # every httpx.HTTPTransport / AsyncHTTPTransport, existing clients included

The wrapped transport keeps its connection pool and is closed with the
wrapper. The span ends when the response body has been read to the end or
the response is closed, not when the headers arrive.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any

import httpx

from ._instruments import Call, Instruments, binding, instrumenting, report

__all__ = [
    "AsyncInstrumentedTransport",
    "InstrumentedTransport",
    "instrument_httpx",
    "uninstrument_httpx",
]

_get = binding.get
_instrumenting_get = instrumenting.get


def _begin(inst: Instruments, request: httpx.Request, root_spans: bool | None) -> Call | None:
    url = request.url
    return inst.begin(
        request.method,
        str(url),
        url.scheme,
        url.host,
        url.port,
        request.headers,
        root_spans,
    )


def _http_version(response: httpx.Response) -> str | None:
    version = response.extensions.get("http_version")
    if not version:
        return None
    text = version.decode("ascii", "replace") if isinstance(version, bytes) else str(version)
    return text.removeprefix("HTTP/")


class _SyncStream(httpx.SyncByteStream):
    """The response body; finishing it (end, close or error) finishes the call."""

    __slots__ = ("_call", "_stream")

    def __init__(self, stream: httpx.SyncByteStream, call: Call) -> None:
        self._stream = stream
        self._call = call

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except BaseException as exc:
            self._call.finish(exc)
            raise
        self._call.finish()

    def close(self) -> None:
        try:
            self._stream.close()
        except BaseException as exc:
            self._call.finish(exc)
            raise
        self._call.finish()


class _AsyncStream(httpx.AsyncByteStream):
    """The async response body; finishing it finishes the call."""

    __slots__ = ("_call", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, call: Call) -> None:
        self._stream = stream
        self._call = call

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except BaseException as exc:
            self._call.finish(exc)
            raise
        self._call.finish()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        except BaseException as exc:
            self._call.finish(exc)
            raise
        self._call.finish()


def _handle(
    send: Callable[[httpx.Request], httpx.Response],
    request: httpx.Request,
    root_spans: bool | None = None,
    guard: bool = True,
) -> httpx.Response:
    inst = _get()
    if not inst.active or _instrumenting_get() is request:
        return send(request)
    try:
        call = _begin(inst, request, root_spans)
    except Exception as exc:
        report("httpx request", exc)
        call = None
    if call is None:
        return send(request)
    # an explicit wrapper marks this request so a globally instrumented transport
    # below it passes it straight through (the patched transport has nothing below)
    token = instrumenting.set(request) if guard else None
    try:
        response = send(request)
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        if token is not None:
            instrumenting.reset(token)
    try:
        call.response(response.status_code, _http_version(response))
        if response.is_closed:  # a body given as bytes was read already
            call.finish()
        else:
            response.stream = _SyncStream(response.stream, call)  # type: ignore[arg-type]
    except Exception as exc:
        report("httpx response", exc)
        call.finish()
    return response


async def _handle_async(
    send: Callable[[httpx.Request], Awaitable[httpx.Response]],
    request: httpx.Request,
    root_spans: bool | None = None,
    guard: bool = True,
) -> httpx.Response:
    inst = _get()
    if not inst.active or _instrumenting_get() is request:
        return await send(request)
    try:
        call = _begin(inst, request, root_spans)
    except Exception as exc:
        report("httpx request", exc)
        call = None
    if call is None:
        return await send(request)
    token = instrumenting.set(request) if guard else None
    try:
        response = await send(request)
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        if token is not None:
            instrumenting.reset(token)
    try:
        call.response(response.status_code, _http_version(response))
        if response.is_closed:
            call.finish()
        else:
            response.stream = _AsyncStream(response.stream, call)  # type: ignore[arg-type]
    except Exception as exc:
        report("httpx response", exc)
        call.finish()
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
        self._send = self.transport.handle_request

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through the wrapped transport, recording it."""
        return _handle(self._send, request, self.root_spans)

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
        self._send = self.transport.handle_async_request

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through the wrapped transport, recording it."""
        return await _handle_async(self._send, request, self.root_spans)

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

_lock = threading.Lock()
_originals: dict[str, Any] = {}


def instrument_httpx() -> bool:
    """Record every request of every ``httpx.HTTPTransport`` and ``AsyncHTTPTransport``.

    That is the transport of every client that was not given a custom one,
    clients created before this call included. Custom transports (a mock, a
    SOCKS proxy) are recorded when wrapped in :class:`InstrumentedTransport`.
    Idempotent: a second call changes nothing. Returns whether this call
    installed it.
    """
    with _lock:
        if _originals:
            return False
        sync_send = httpx.HTTPTransport.handle_request
        async_send = httpx.AsyncHTTPTransport.handle_async_request

        def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            return _handle(lambda r: sync_send(self, r), request, None, False)

        async def handle_async_request(
            self: httpx.AsyncHTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            return await _handle_async(lambda r: async_send(self, r), request, None, False)

        handle_request.__wrapped__ = sync_send  # type: ignore[attr-defined]
        handle_async_request.__wrapped__ = async_send  # type: ignore[attr-defined]
        _originals["sync"] = sync_send
        _originals["async"] = async_send
        httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
        httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]
        return True


def uninstrument_httpx() -> bool:
    """Undo :func:`instrument_httpx`; returns whether it was installed."""
    with _lock:
        if not _originals:
            return False
        httpx.HTTPTransport.handle_request = _originals.pop("sync")  # type: ignore[method-assign]
        httpx.AsyncHTTPTransport.handle_async_request = _originals.pop("async")  # type: ignore[method-assign]
        return True


def httpx_instrumented() -> bool:
    """Whether :func:`instrument_httpx` is in effect."""
    return bool(_originals)
