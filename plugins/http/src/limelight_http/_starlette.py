"""One-call setup for Starlette and FastAPI applications."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._asgi import ASGIApp, ASGIMiddleware, RouteResolver, Scope
from ._exchange import AttributesHook

__all__ = [
    "AUTO",
    "EXPLICIT",
    "instrument_fastapi",
    "instrument_starlette",
    "loud_fastapi",
    "quiet_fastapi",
    "quieted",
]

App = TypeVar("App")

EXPLICIT = "_limelight_http_instrumented"
"""Set on an application :func:`instrument_starlette` or :func:`instrument_fastapi`
instrumented."""
AUTO = "_limelight_http_auto"
"""Marks what the instrument contract made: the :class:`ASGIMiddleware` around an
application's stack, the :class:`WSGIMiddleware` of a Flask application (kept
under this attribute), and, on a FastAPI application whose built-in telemetry it
turned off, the settings it replaced."""
_MARKER = EXPLICIT

quieted: weakref.WeakSet[Any] = weakref.WeakSet()
"""FastAPI applications whose built-in telemetry :func:`quiet_fastapi` turned off."""


def quiet_fastapi(app: Any) -> None:
    """Turn FastAPI's built-in request tracing and metrics off for *app*, remembering
    what they were (for :func:`loud_fastapi`); nothing for a release without them."""
    settings = getattr(app, "_telemetry", None)
    if not isinstance(settings, dict) or AUTO in vars(app):
        return
    vars(app)[AUTO] = (settings.get("tracing"), settings.get("metrics"))
    settings["tracing"] = False
    settings["metrics"] = False
    quieted.add(app)


def loud_fastapi(app: Any) -> None:
    """Give *app* back the built-in telemetry settings :func:`quiet_fastapi` replaced."""
    previous = vars(app).pop(AUTO, None)
    quieted.discard(app)
    settings = getattr(app, "_telemetry", None)
    if previous is None or not isinstance(settings, dict):
        return
    settings["tracing"], settings["metrics"] = previous


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
    # from now on the instrument contract leaves the application alone
    setattr(target, _MARKER, True)
    build: Callable[[], ASGIApp] = target.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return ASGIMiddleware(build(), **options)

    target.build_middleware_stack = build_middleware_stack
    stack = target.middleware_stack
    if stack is not None:  # already serving: wrap the built stack
        if getattr(stack, AUTO, False):  # in the contract's middleware: this one replaces it
            stack = stack.app
        target.middleware_stack = ASGIMiddleware(stack, **options)
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
    if native_telemetry:
        loud_fastapi(app)  # as the application made it, if the instrument contract changed it
        return app
    settings = getattr(app, "_telemetry", None)
    if isinstance(settings, dict):
        settings["tracing"] = False
        settings["metrics"] = False
    return app
