"""The Django middleware (works under WSGI and ASGI servers).

Django is imported only when Django instantiates the middleware, so importing
``limelight_http`` never needs Django.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.propagate import extract

from limelight.semconv import NETWORK_PROTOCOL_VERSION, URL_SCHEME

from ._asgi import EXCHANGE_KEY
from ._carriers import ENVIRON_GETTER, environ_attributes
from ._exchange import Exchange, Options, instruments, report_once, traceparent

__all__ = ["DjangoMiddleware"]

_attach = otel_context.attach
_detach = otel_context.detach
_OPTION_NAMES = frozenset(
    {"exclude_paths", "exclude", "request_attributes", "response_traceparent"}
)


def _find(request: Any) -> Exchange | None:
    """The exchange of an outer ASGI/WSGI middleware (or of this one)."""
    ex = request.META.get(EXCHANGE_KEY)
    if ex is None:
        scope = getattr(request, "scope", None)
        if scope is not None:
            ex = scope.get(EXCHANGE_KEY)
    return ex if isinstance(ex, Exchange) else None


class DjangoMiddleware:
    """Records every request of a Django project; put it first in ``MIDDLEWARE``::

        MIDDLEWARE = ["limelight_http.DjangoMiddleware", ...]

    The route is ``request.resolver_match.route`` with a leading ``/``
    (``/items/<int:item_id>/``, ``include()`` prefixes joined); an exception a
    view raised is recorded on the span; a streaming response ends the request
    with its last chunk. Options come from the ``LIMELIGHT_HTTP`` setting, a
    dict with the keyword arguments of :class:`WSGIMiddleware`
    (``exclude_paths``, ``exclude``, ``request_attributes``,
    ``response_traceparent``); the hooks receive the ``HttpRequest``.

    Under an outer :class:`ASGIMiddleware` or :class:`WSGIMiddleware` the
    request is already recorded there; this middleware then only adds the
    route and the view's exception.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction
        from django.conf import settings  # type: ignore[import-untyped]

        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)
        configured: Mapping[str, Any] = getattr(settings, "LIMELIGHT_HTTP", None) or {}
        unknown = set(configured) - _OPTION_NAMES
        if unknown:
            raise TypeError(
                f"LIMELIGHT_HTTP: unknown option(s) {sorted(unknown)}; "
                f"expected some of {sorted(_OPTION_NAMES)}"
            )
        self._options = Options(**configured)

    # -- Django middleware hooks -------------------------------------------------------

    def process_view(
        self,
        request: Any,
        view_func: Callable[..., Any],
        view_args: Iterable[Any],
        view_kwargs: Mapping[str, Any],
    ) -> None:
        ex = _find(request)
        match = getattr(request, "resolver_match", None)
        if ex is not None and match is not None and match.route:
            route = str(match.route)
            ex.set_route(route if route.startswith("/") else "/" + route)

    def process_exception(self, request: Any, exception: Exception) -> None:
        ex = _find(request)
        if ex is not None:
            ex.record_exception(exception)

    # -- recording -------------------------------------------------------------------

    def _begin(self, request: Any) -> Exchange | None:
        if _find(request) is not None:
            return None
        inst = instruments()
        if inst is None:
            return None
        options = self._options
        if options._bound_to is not inst:
            options.bind(inst)
        if options.filtering and options.excluded(request.path, request):
            return None
        try:
            meta = request.META
            parent = extract(meta, getter=ENVIRON_GETTER)
            attributes = environ_attributes(meta)
            scope = getattr(request, "scope", None)
            if scope is not None:
                attributes[URL_SCHEME] = request.scheme
                attributes[NETWORK_PROTOCOL_VERSION] = scope.get("http_version") or "1.1"
            ex = inst.begin(request.method or "GET", parent, attributes)
        except Exception as exc:  # telemetry never breaks the request
            report_once("begin", exc)
            return None
        ex.hook = options.request_attributes
        ex.request = request
        meta[EXCHANGE_KEY] = ex
        return ex

    def _end(self, ex: Exchange, request: Any, response: Any) -> Any:
        try:
            return self._end_unguarded(ex, request, response)
        except Exception as exc:  # telemetry never breaks the request
            report_once("end", exc)
            ex.finish()
            return response

    def _end_unguarded(self, ex: Exchange, request: Any, response: Any) -> Any:
        options = self._options
        ex.status = response.status_code
        if options.inject:
            value = traceparent(ex.span)
            if value is not None:
                response["traceparent"] = value
        if not getattr(response, "streaming", False):
            ex.finish()
            return response

        done = False

        def finish(*, error: BaseException | None = None, disconnected: bool = False) -> None:
            ex.finish(error=error, disconnected=disconnected)

        if getattr(response, "file_to_stream", None) is None:
            content = response.streaming_content
            if getattr(response, "is_async", False):

                async def chunks_async() -> AsyncIterator[bytes]:
                    nonlocal done
                    ex.sent = True  # Django's ASGI handler sent the status before the body
                    it = aiter(content)
                    while True:
                        # the request's context is current while each chunk is made (not
                        # across the yield: the consumer's context is its own)
                        token = _attach(ex.context)
                        try:
                            chunk = await anext(it)
                        except StopAsyncIteration:
                            break
                        except asyncio.CancelledError:
                            # Django's ASGI handler cancels the response when the client leaves
                            finish(disconnected=True)
                            raise
                        except BaseException as exc:
                            finish(error=exc)
                            raise
                        finally:
                            _detach(token)
                        yield chunk
                    done = True
                    finish()

                response.streaming_content = chunks_async()
            else:

                def chunks() -> Iterator[bytes]:
                    nonlocal done
                    it = iter(content)
                    while True:
                        token = _attach(ex.context)
                        try:
                            chunk = next(it)
                        except StopIteration:
                            break
                        except BaseException as exc:
                            finish(error=exc)
                            raise
                        finally:
                            _detach(token)
                        if chunk:
                            ex.sent = True  # the server sends the status with the first bytes
                        yield chunk
                    done = True
                    finish()

                response.streaming_content = chunks()
        else:
            done = True  # the server streams the file itself; close() ends the request

        original_close = response.close

        def close() -> None:
            try:
                original_close()
            finally:
                finish(disconnected=not done)

        response.close = close
        return response

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self.__acall__(request)
        ex = self._begin(request)
        if ex is None:
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            ex.finish(error=exc)
            raise
        else:
            return self._end(ex, request, response)
        finally:
            ex.detach()

    async def __acall__(self, request: Any) -> Any:
        ex = self._begin(request)
        if ex is None:
            return await self.get_response(request)
        try:
            response = await self.get_response(request)
        except asyncio.CancelledError:
            ex.finish(disconnected=True)  # the client left while the view ran
            raise
        except BaseException as exc:
            ex.finish(error=exc)
            raise
        else:
            return self._end(ex, request, response)
        finally:
            ex.detach()
