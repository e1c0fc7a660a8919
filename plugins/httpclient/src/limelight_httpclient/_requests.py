"""requests: an instrumented adapter, a session helper and the global installation.

Explicitly::

    session = instrument_session(requests.Session())   # wraps each mounted adapter
    session.mount("https://", InstrumentedAdapter(HTTPAdapter(max_retries=3)))

Globally (what the plugin does at start unless told otherwise)::

    limelight_httpclient.instrument("requests")   # every requests.adapters.HTTPAdapter

The span ends when the response body has been read to the end (``stream=False``
reads it before ``send`` returns) or the response is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from limelight.surface import Patches

from ._instrumentation import instrumentation
from ._instruments import Call, binding, instrumenting, report

__all__ = [
    "InstrumentedAdapter",
    "instrument_requests",
    "instrument_session",
    "uninstrument_requests",
]

_get = binding.get
_instrumenting_get = instrumenting.get
_instrumenting_set = instrumenting.set
_instrumenting_reset = instrumenting.reset
_VERSIONS = {9: "0.9", 10: "1.0", 11: "1.1", 20: "2", 30: "3"}


class _Raw:
    """The urllib3 response behind ``Response.raw``; finishing its body finishes the call.

    Everything else is delegated to the wrapped object, attributes set on it
    included (``response.raw.decode_content = True``).
    """

    __slots__ = ("_call", "_raw")

    def __init__(self, raw: Any, call: Call) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_call", call)

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Iterator[bytes]:
        raw = self._raw
        try:
            if hasattr(raw, "stream"):
                yield from raw.stream(amt, decode_content=decode_content)
            else:
                while chunk := raw.read(amt):
                    yield chunk
        except BaseException as exc:
            self._call.finish(exc)
            raise
        self._call.finish()

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        raw = self._raw
        try:
            data: bytes = raw.read(amt, *args, **kwargs)
        except BaseException as exc:
            self._call.finish(exc)
            raise
        if amt is None or not data or getattr(raw, "closed", False):
            self._call.finish()
        return data

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._raw
        except BaseException as exc:
            self._call.finish(exc)
            raise
        self._call.finish()

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            self._call.finish()

    def release_conn(self) -> None:
        try:
            release = getattr(self._raw, "release_conn", None)
            if release is not None:
                release()
        finally:
            self._call.finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)


def _send(
    send: Callable[..., requests.Response],
    target: BaseAdapter,
    request: requests.PreparedRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    root_spans: bool | None,
    connection: BaseAdapter | None,
    guard: bool,
) -> requests.Response:
    """``send(target, request, *args, **kwargs)``, recorded (*guard*: an explicit
    wrapper, with a limelight layer possibly below it)."""
    inst = _get()
    if not inst.active or _instrumenting_get() is request:
        return send(target, request, *args, **kwargs)
    call: Call | None = None
    try:
        url = request.url or ""
        parts = urlsplit(url)
        call = inst.begin(
            request.method or "GET",
            url,
            parts.scheme,
            parts.hostname or "",
            parts.port,
            request.headers,
            root_spans,
        )
    except Exception as exc:
        report("requests request", exc)
    if call is None:
        return send(target, request, *args, **kwargs)
    token = _instrumenting_set(request) if guard else None
    try:
        response = send(target, request, *args, **kwargs)
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        if token is not None:
            _instrumenting_reset(token)
    try:
        raw = response.raw
        call.response(
            response.status_code,
            _VERSIONS.get(getattr(raw, "version", None) or 0) if call.span is not None else None,
        )
        if raw is None:
            call.finish()
        else:
            response.raw = _Raw(raw, call)
        if connection is not None:
            response.connection = connection  # type: ignore[assignment]
    except Exception as exc:
        report("requests response", exc)
        call.finish()
    return response


def _adapter_send(
    adapter: BaseAdapter, request: requests.PreparedRequest, **kwargs: Any
) -> requests.Response:
    return adapter.send(request, **kwargs)


class InstrumentedAdapter(BaseAdapter):
    """A requests transport adapter that records every request, then delegates.

    :param adapter: the adapter doing the work (default ``HTTPAdapter()``);
        its pool, retries and TLS settings are untouched, its attributes are
        reachable through this one, and closing this adapter closes it.
    :param root_spans: whether a request made outside any span gets its own
        span; ``None`` follows ``LIMELIGHT_HTTPCLIENT_ROOT_SPANS``.
    """

    def __init__(
        self, adapter: BaseAdapter | None = None, *, root_spans: bool | None = None
    ) -> None:
        super().__init__()
        self.adapter = adapter if adapter is not None else HTTPAdapter()
        self.root_spans = root_spans

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send *request* through the wrapped adapter, recording it."""
        return _send(
            _adapter_send,
            self.adapter,
            request,
            (),
            {
                "stream": stream,
                "timeout": timeout,
                "verify": verify,
                "cert": cert,
                "proxies": proxies,
            },
            self.root_spans,
            self,
            True,
        )

    def close(self) -> None:
        """Close the wrapped adapter (and its connection pools)."""
        self.adapter.close()

    def __getattr__(self, name: str) -> Any:
        if name == "adapter":
            raise AttributeError(name)
        return getattr(self.adapter, name)


def instrument_session(
    session: requests.Session, *, root_spans: bool | None = None
) -> requests.Session:
    """Wrap every adapter mounted on *session* (idempotent) and return it.

    Adapters mounted later are not wrapped: mount an :class:`InstrumentedAdapter`.
    """
    for prefix, adapter in list(session.adapters.items()):
        if not isinstance(adapter, InstrumentedAdapter):
            session.mount(prefix, InstrumentedAdapter(adapter, root_spans=root_spans))
    return session


def install(patches: Patches) -> None:
    """Record every request sent by a ``requests.adapters.HTTPAdapter``.

    The instrument contract's install step for ``"requests"``:
    ``HTTPAdapter.send`` is replaced through *patches*. That covers every
    session's default adapters, sessions created before and ``requests.get``
    included.
    """
    original = HTTPAdapter.send

    def send(
        self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        return _send(original, self, request, args, kwargs, None, None, False)

    send.__wrapped__ = original  # type: ignore[attr-defined]
    patches.wrap(HTTPAdapter, "send", send)


def instrument_requests() -> bool:
    """Record every request sent by a ``requests.adapters.HTTPAdapter``.

    ``limelight_httpclient.instrument("requests")`` as a boolean: every
    session's default adapters, sessions created before this call and
    ``requests.get`` included. Other adapters are recorded when wrapped in
    :class:`InstrumentedAdapter`. Idempotent: a second call changes nothing.
    Returns whether this call installed it.
    """
    return bool(instrumentation.instrument("requests"))


def uninstrument_requests() -> bool:
    """Undo :func:`instrument_requests`; returns whether it was installed."""
    return bool(instrumentation.uninstrument("requests"))


def requests_instrumented() -> bool:
    """Whether :func:`instrument_requests` is in effect."""
    return instrumentation.is_instrumented("requests")
