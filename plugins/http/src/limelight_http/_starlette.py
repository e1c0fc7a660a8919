"""One-call setup for Starlette and FastAPI applications."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._asgi import ASGIApp, ASGIMiddleware, RouteResolver, Scope
from ._exchange import AttributesHook

__all__ = ["instrument_fastapi", "instrument_starlette"]

App = TypeVar("App")

_MARKER = "_limelight_http_instrumented"


def instrument_starlette(
    app: App,
    *,
    exclude_paths: Iterable[str] = (),
    exclude: Callable[[Scope], bool] | None = None,
    request_attributes: AttributesHook | None = None,
    response_traceparent: bool | None = None,
    route_resolver: RouteResolver | None = None,
) -> App:
    """Put :class:`ASGIMiddleware` around a Starlette application's middleware stack.

    The middleware goes outside every other middleware, Starlette's own error
    handler included, so the span covers them and a 500 response carries the
    ``traceparent`` header too. Middleware added later with ``add_middleware``
    still goes inside. Idempotent; the keyword arguments are those of
    :class:`ASGIMiddleware`. Returns *app*.
    """
    return _instrument(
        app,
        exclude_paths=tuple(exclude_paths),
        exclude=exclude,
        request_attributes=request_attributes,
        response_traceparent=response_traceparent,
        route_resolver=route_resolver,
    )


def _instrument(app: App, **options: Any) -> App:
    """Put ``ASGIMiddleware(stack, **options)`` around *app*'s middleware stack, once."""
    target: Any = app
    if getattr(target, _MARKER, False):
        return app
    build: Callable[[], ASGIApp] = target.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return ASGIMiddleware(build(), **options)

    target.build_middleware_stack = build_middleware_stack
    if target.middleware_stack is not None:  # already serving: wrap the built stack
        target.middleware_stack = ASGIMiddleware(target.middleware_stack, **options)
    setattr(target, _MARKER, True)
    return app


def instrument_fastapi(
    app: App,
    *,
    exclude_paths: Iterable[str] = (),
    exclude: Callable[[Scope], bool] | None = None,
    request_attributes: AttributesHook | None = None,
    response_traceparent: bool | None = None,
    native_telemetry: bool = False,
) -> App:
    """:func:`instrument_starlette` for a FastAPI application.

    FastAPI releases with built-in OpenTelemetry support record their own
    request span, operation spans (``fastapi.endpoint``, ...) and
    ``http.server.*`` metrics whenever a global provider is set, which limelight
    does: the same request would be recorded twice. Unless *native_telemetry*
    is true, FastAPI's request tracing and metrics are turned off for *app*
    (its logs are left as they are), and every FastAPI app mounted inside it,
    whenever mounted and through included routers too, records nothing for the
    requests limelight records (see :class:`ASGIMiddleware`'s *quiet_fastapi*).
    """
    _instrument(
        app,
        exclude_paths=tuple(exclude_paths),
        exclude=exclude,
        request_attributes=request_attributes,
        response_traceparent=response_traceparent,
        quiet_fastapi=not native_telemetry,
    )
    settings = getattr(app, "_telemetry", None)
    if not native_telemetry and isinstance(settings, dict):
        settings["tracing"] = False
        settings["metrics"] = False
    return app
