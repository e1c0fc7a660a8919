"""The ASGI middleware (pure ASGI: no request objects, no buffering)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from opentelemetry.propagate import get_global_textmap

from ._carriers import ASGI_GETTER, asgi_attributes
from ._exchange import (
    AttributesHook,
    Exchange,
    Options,
    instruments,
    report_once,
    status_text,
    traceparent_bytes,
)
from ._routes import StarletteRoutes

__all__ = ["EXCHANGE_KEY", "ASGIMiddleware", "RouteResolver"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteResolver = Callable[[Scope], "str | None"]
"""Returns the route template of a routed request (``None``: no route matched)."""

EXCHANGE_KEY = "limelight.http"
"""Where the request's :class:`~limelight_http.Exchange` is kept in the ASGI scope
and the WSGI environ (and how nested middleware knows a request is already
recorded)."""

FASTAPI_TELEMETRY_KEY = "fastapi.telemetry"
"""The scope key through which FastAPI's built-in telemetry marks a request as already
recorded: a FastAPI app (mounted anywhere below) that finds it records nothing."""

_DISCONNECTS = frozenset({"ClientDisconnect", "ClientDisconnected", "WebSocketDisconnect"})
_BODY_TYPES = frozenset({"http.response.body", "http.response.zerocopysend"})


def _is_disconnect(exc: BaseException) -> bool:
    """A client that went away (an OSError counts only when raised by ``send``)."""
    return isinstance(exc, asyncio.CancelledError) or type(exc).__name__ in _DISCONNECTS


class ASGIMiddleware:
    """Records every HTTP request and WebSocket connection of an ASGI app.

    One SERVER span per request named ``"{method} {route}"``, continuing the
    trace of the incoming headers (global propagator), ``traceparent`` added to
    the response, and ``http_requests_total``, ``http_request_duration_seconds``
    and ``http_requests_in_flight``. Streaming responses pass through chunk by
    chunk; the span and the duration end with the last chunk. A WebSocket
    connection gets one span for its lifetime; its handshake is counted in the
    metrics (status 101 when accepted). Lifespan events pass through.

    With telemetry not running (or the http plugin not loaded) every request
    passes straight through.

    :param app: the ASGI application.
    :param exclude_paths: paths served without telemetry (``"/healthz"``); a
        trailing ``*`` makes a prefix (``"/internal/*"``).
    :param exclude: ``exclude(scope) -> bool``: true serves the request
        without telemetry.
    :param request_attributes: ``request_attributes(scope) -> mapping``: extra
        span attributes, called once per recorded request after the response.
    :param response_traceparent: add the ``traceparent`` response header
        (default: ``LIMELIGHT_HTTP_RESPONSE_TRACEPARENT``, true).
    :param route_resolver: ``route_resolver(scope) -> str | None``, for
        frameworks other than Starlette and FastAPI (which are resolved
        without it): the route template once routing is done.

    :param quiet_fastapi: keep FastAPI apps inside *app* from recording
        requests a second time (default true; also the ``quiet_fastapi``
        attribute).

    A FastAPI application mounted anywhere inside *app* would record each
    request a second time with its built-in telemetry (a second SERVER span in a
    trace of its own, operation spans, ``http.server.*`` metrics). While
    telemetry runs, every request marks its scope the way FastAPI marks a
    request it already records, so mounted FastAPI apps stay quiet whenever
    they were mounted; *quiet_fastapi* false keeps their telemetry.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        exclude_paths: Iterable[str] = (),
        exclude: Callable[[Scope], bool] | None = None,
        request_attributes: AttributesHook | None = None,
        response_traceparent: bool | None = None,
        route_resolver: RouteResolver | None = None,
        quiet_fastapi: bool = True,
    ) -> None:
        self.app = app
        self.quiet_fastapi = quiet_fastapi
        self._options = Options(exclude_paths, exclude, request_attributes, response_traceparent)
        self._starlette = StarletteRoutes()
        self._resolver = route_resolver

    def _route(self, scope: Scope, root_path: str) -> str | None:
        resolver = self._resolver
        try:
            if resolver is not None:
                return resolver(scope)
            return self._starlette(scope, root_path)
        except Exception as exc:
            report_once("route_resolver", exc)
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                return await self._websocket(scope, receive, send)
            return await self.app(scope, receive, send)
        inst = instruments()
        if inst is None or EXCHANGE_KEY in scope:
            return await self.app(scope, receive, send)
        if self.quiet_fastapi:
            scope.setdefault(FASTAPI_TELEMETRY_KEY, None)
        options = self._options
        if options._bound_to is not inst:
            options.bind(inst)
        if options.filtering and options.excluded(scope["path"], scope):
            return await self.app(scope, receive, send)

        try:
            headers = scope.get("headers") or ()
            index = dict(headers)
            parent = get_global_textmap().extract((headers, index), getter=ASGI_GETTER)
            ex: Exchange = inst.begin(
                scope.get("method") or "GET",
                parent,
                asgi_attributes(scope, index, scope.get("scheme") or "http"),
            )
        except Exception as exc:  # telemetry never breaks the request
            report_once("begin", exc)
            return await self.app(scope, receive, send)
        scope[EXCHANGE_KEY] = ex
        ex.hook = options.request_attributes
        ex.request = scope
        root_path = scope.get("root_path", "")
        inject = options.inject
        complete = False
        disconnected = False
        trailers = False

        async def send_wrapper(message: Message) -> None:
            nonlocal complete, disconnected, trailers
            kind = message["type"]
            last = False
            if kind in _BODY_TYPES:
                last = not trailers and not message.get("more_body", False)
            elif kind == "http.response.start":
                ex.status = message["status"]
                ex.sent = True  # a failed send is a disconnect
                trailers = bool(message.get("trailers", False))
                if ex.route is None:
                    ex.route = self._route(scope, root_path)
                if inject:
                    value = traceparent_bytes(ex.span)
                    if value is not None:
                        message = dict(message)
                        message["headers"] = [*message.get("headers", ()), (b"traceparent", value)]
            elif kind == "http.response.trailers":
                last = not message.get("more_trailers", False)
            elif kind == "http.response.pathsend":
                last = True
            try:
                await send(message)
            except OSError:
                disconnected = True
                raise
            if last:
                complete = True
                status = ex.status
                if status is None:
                    ex.finish(incomplete=True)
                elif status < 500:
                    ex.complete()
                else:
                    # Starlette's error middleware sends the 500 and then re-raises:
                    # the span waits for the exception, the duration does not
                    ex.finish_metrics(status_text(status))

        async def receive_wrapper() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect" and not complete:
                disconnected = True
            return message

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except BaseException as exc:
            if not ex.span_done:
                if ex.route is None:
                    ex.route = self._route(scope, root_path)
                if disconnected or _is_disconnect(exc):
                    ex.finish(disconnected=True)
                else:
                    ex.finish(error=exc)
            raise
        else:
            if not ex.span_done:
                if ex.route is None:
                    ex.route = self._route(scope, root_path)
                ex.finish(disconnected=disconnected, incomplete=not complete and not disconnected)
        finally:
            ex.detach()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        inst = instruments()
        if inst is None or EXCHANGE_KEY in scope:
            return await self.app(scope, receive, send)
        if self.quiet_fastapi:
            scope.setdefault(FASTAPI_TELEMETRY_KEY, None)
        options = self._options
        if options._bound_to is not inst:
            options.bind(inst)
        if options.filtering and options.excluded(scope["path"], scope):
            return await self.app(scope, receive, send)
        try:
            headers = scope.get("headers") or ()
            index = dict(headers)
            parent = get_global_textmap().extract((headers, index), getter=ASGI_GETTER)
            ex: Exchange = inst.begin(
                "GET", parent, asgi_attributes(scope, index, scope.get("scheme") or "ws")
            )
        except Exception as exc:  # telemetry never breaks the connection
            report_once("begin", exc)
            return await self.app(scope, receive, send)
        scope[EXCHANGE_KEY] = ex
        ex.hook = options.request_attributes
        ex.request = scope
        root_path = scope.get("root_path", "")
        inject = options.inject

        async def send_wrapper(message: Message) -> None:
            if not ex.metrics_done:
                kind = message["type"]
                status = None
                if kind == "websocket.accept":
                    status = 101
                    if inject:
                        value = traceparent_bytes(ex.span)
                        if value is not None:
                            message = {
                                **message,
                                "headers": [*message.get("headers", ()), (b"traceparent", value)],
                            }
                elif kind == "websocket.close":
                    status = 403
                elif kind == "websocket.http.response.start":
                    status = message["status"]
                if status is not None:
                    ex.status = status
                    ex.sent = True
                    ex.route = self._route(scope, root_path)
                    ex.finish_metrics(status_text(status))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            if ex.route is None:
                ex.route = self._route(scope, root_path)
            if _is_disconnect(exc):
                ex.finish(disconnected=not ex.metrics_done)
            else:
                ex.finish(error=exc)
            raise
        else:
            if ex.route is None:
                ex.route = self._route(scope, root_path)
            ex.finish()
        finally:
            ex.detach()
