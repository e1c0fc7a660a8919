"""The WSGI middleware."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.propagate import extract

from ._asgi import EXCHANGE_KEY
from ._carriers import ENVIRON_GETTER, environ_attributes
from ._exchange import AttributesHook, Exchange, Options, instruments, report_once, traceparent

__all__ = ["WSGIMiddleware"]

Environ = MutableMapping[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_attach = otel_context.attach
_detach = otel_context.detach


class _Body:
    """The response iterable: passes chunks through one by one, with the request's
    context current while the application produces each, and ends the request
    with the last one (or on ``close`` before it: the client went away).

    A caller that neither reads it to its end nor closes it (a test client, an
    application calling another in process) leaves it to the garbage collector:
    the request then ends when the body is collected, with the status the
    application gave (``incomplete_response`` when it never gave one), as if the
    caller had taken the rest of it.
    """

    __slots__ = ("_ex", "_finish", "_iter", "_result")

    def __init__(self, result: Iterable[bytes], ex: Exchange, finish: Callable[..., None]) -> None:
        self._result = result
        self._ex = ex
        self._finish = finish
        self._iter: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        ex = self._ex
        token = _attach(ex.context)
        try:
            it = self._iter
            if it is None:
                it = self._iter = iter(self._result)
            chunk = next(it)
            if chunk and not ex.sent:
                ex.sent = True  # the server sends the status line with the first bytes
            return chunk
        except StopIteration:
            self._finish()
            raise
        except BaseException as exc:
            self._finish(error=exc)
            raise
        finally:
            _detach(token)

    def __del__(self) -> None:
        try:
            if not self._ex.span_done:
                self._finish()
        except Exception:  # a collector must not raise, not even at exit
            pass

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                token = _attach(self._ex.context)
                try:
                    close()
                finally:
                    _detach(token)
        finally:
            if not self._ex.span_done:
                self._finish(disconnected=True)


class WSGIMiddleware:
    """Records every request of a WSGI app.

    The same span, metrics and header handling as :class:`ASGIMiddleware`. The
    request ends when the server has taken the last chunk of the response
    body; a server closing the body before that (the client went away) ends it
    as a disconnect; a body that is neither read to its end nor closed ends it
    when it is garbage-collected, with the application's status. The route
    comes from the framework integration (:func:`instrument_flask`,
    :class:`DjangoMiddleware`) or *route_resolver*.

    :param app: the WSGI application.
    :param exclude_paths: paths served without telemetry; a trailing ``*``
        makes a prefix.
    :param exclude: ``exclude(environ) -> bool``.
    :param request_attributes: ``request_attributes(environ) -> mapping``.
    :param response_traceparent: add the ``traceparent`` response header.
    :param route_resolver: ``route_resolver(environ) -> str | None``, called
        after the application returned when no integration set the route.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        exclude_paths: Iterable[str] = (),
        exclude: Callable[[Environ], bool] | None = None,
        request_attributes: AttributesHook | None = None,
        response_traceparent: bool | None = None,
        route_resolver: Callable[[Environ], str | None] | None = None,
    ) -> None:
        self.app = app
        self._options = Options(exclude_paths, exclude, request_attributes, response_traceparent)
        self._resolver = route_resolver

    def _resolve(self, ex: Exchange, environ: Environ) -> None:
        resolver = self._resolver
        if ex.route is None and resolver is not None:
            try:
                ex.route = resolver(environ)
            except Exception as exc:
                report_once("route_resolver", exc)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        inst = instruments()
        if inst is None or EXCHANGE_KEY in environ:
            return self.app(environ, start_response)
        options = self._options
        if options._bound_to is not inst:
            options.bind(inst)
        script = environ.get("SCRIPT_NAME")
        path = environ.get("PATH_INFO", "")
        if options.filtering and options.excluded(script + path if script else path, environ):
            return self.app(environ, start_response)

        try:
            parent = extract(environ, getter=ENVIRON_GETTER)
            ex = inst.begin(
                environ.get("REQUEST_METHOD") or "GET", parent, environ_attributes(environ)
            )
        except Exception as exc:  # telemetry never breaks the request
            report_once("begin", exc)
            return self.app(environ, start_response)
        environ[EXCHANGE_KEY] = ex
        ex.hook = options.request_attributes
        ex.request = environ
        inject = options.inject

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            code = status[:3]
            if code.isdigit():
                ex.status = int(code)
            if inject:
                value = traceparent(ex.span)
                if value is not None:
                    headers = [*headers, ("traceparent", value)]
            return start_response(status, headers, exc_info)

        def finish(*, error: BaseException | None = None, disconnected: bool = False) -> None:
            ex.finish(error=error, disconnected=disconnected)

        try:
            result = self.app(environ, start)
        except BaseException as exc:
            self._resolve(ex, environ)
            finish(error=exc)
            ex.detach()
            raise
        self._resolve(ex, environ)
        ex.detach()
        return _Body(result, ex, finish)
