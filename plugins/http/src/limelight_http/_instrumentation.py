"""The instrument contract: every Starlette, FastAPI, Flask and Django application.

``instrument()`` puts limelight's middleware into applications without a call
in the application's code, at each framework's own seam, patched through
:class:`limelight.surface.Patches` so ``uninstrument()`` puts the very
functions back:

- ``starlette``: ``Starlette.build_middleware_stack``, which Starlette calls
  when an application serves its first request, returns the stack inside an
  :class:`ASGIMiddleware`, outside every other middleware (as
  :func:`instrument_starlette` does);
- ``fastapi``: the same for ``FastAPI.build_middleware_stack`` (FastAPI builds
  its own stack), and ``FastAPI.__init__`` turns FastAPI's built-in request
  tracing and metrics off for each new application (as
  :func:`instrument_fastapi` does), so a request is recorded once;
- ``flask``: ``Flask.wsgi_app`` goes through a :class:`WSGIMiddleware` of
  the application's own, and Flask's ``request_started`` and
  ``got_request_exception`` signals give the route and the exception (as
  :func:`instrument_flask` does);
- ``django``: ``BaseHandler.load_middleware``, which every Django handler
  (WSGI, ASGI, the test client, ``runserver``) calls to build its middleware
  chain, first puts ``"limelight_http.DjangoMiddleware"`` at the head of the
  ``MIDDLEWARE`` setting when no entry there is that middleware.

Applications made before the call are covered too if they have not served a
request yet (Starlette and FastAPI build their stack on the first one; Flask
looks the method up on every request). An application instrumented
explicitly (:func:`instrument_starlette`, :func:`instrument_fastapi`,
:func:`instrument_flask`, an :class:`ASGIMiddleware` in its middleware, a
``DjangoMiddleware`` in ``MIDDLEWARE``) is left as the application set it
up; a request is never recorded twice. A framework is imported only when it
is instrumented, and only if it is installed, so ``instrument()`` can run
before the application imports its framework.
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Callable
from typing import Any

from limelight.surface import Instrumentation, Instrumentor, Patches

from ._asgi import ASGIApp, ASGIMiddleware
from ._exchange import report_once
from ._flask import FLASK_EXTENSION
from ._flask import _on_exception as _record_exception
from ._flask import _on_request_started as _record_route
from ._starlette import AUTO, EXPLICIT, loud_fastapi, quiet_fastapi
from ._wsgi import WSGIMiddleware

__all__ = [
    "DJANGO_MIDDLEWARE",
    "instrument",
    "instrumentation",
    "is_instrumented",
    "uninstrument",
]

DJANGO_MIDDLEWARE = "limelight_http.DjangoMiddleware"
"""The ``MIDDLEWARE`` entry ``instrument("django")`` adds."""


# -- Starlette and FastAPI ---------------------------------------------------------------------

_asgi_apps: weakref.WeakSet[Any] = weakref.WeakSet()
"""Applications whose built stack the contract wrapped, for ``uninstrument`` to unwrap."""


def _has_own_middleware(app: Any) -> bool:
    """Whether the application put an :class:`ASGIMiddleware` in its own middleware."""
    for entry in getattr(app, "user_middleware", None) or ():
        cls = getattr(entry, "cls", None)
        if isinstance(cls, type) and issubclass(cls, ASGIMiddleware):
            return True
    return False


def _wrap_stack(app: Any, stack: ASGIApp, *, fastapi: bool) -> ASGIApp:
    """*stack*, the application's middleware stack just built, in an :class:`ASGIMiddleware`
    unless the application is instrumented otherwise; never raises."""
    try:
        if getattr(app, EXPLICIT, False) or _has_own_middleware(app):
            return stack
        if fastapi:
            quiet_fastapi(app)
        if getattr(stack, AUTO, False):  # a release whose build calls Starlette's, patched
            return stack
        wrapped = ASGIMiddleware(stack)
        setattr(wrapped, AUTO, True)
        _asgi_apps.add(app)
        return wrapped
    except Exception as exc:  # the application serves as it would without limelight
        report_once("instrument", exc)
        return stack


def _wrapped_build(original: Callable[[Any], ASGIApp], *, fastapi: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    def build_middleware_stack(self: Any) -> ASGIApp:
        return _wrap_stack(self, original(self), fastapi=fastapi)

    return build_middleware_stack


def _install_starlette(patches: Patches) -> None:
    from starlette.applications import Starlette

    original = vars(Starlette)["build_middleware_stack"]
    patches.wrap(Starlette, "build_middleware_stack", _wrapped_build(original, fastapi=False))


def _install_fastapi(patches: Patches) -> None:
    from fastapi import FastAPI

    # FastAPI builds its own stack; where a release does not, it inherits Starlette's
    # (patched or not), and the stack is still wrapped once
    build = FastAPI.build_middleware_stack
    patches.wrap(FastAPI, "build_middleware_stack", _wrapped_build(build, fastapi=True))
    init = FastAPI.__init__

    @functools.wraps(init)
    def fastapi_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        try:
            quiet_fastapi(self)
        except Exception as exc:
            report_once("instrument", exc)

    patches.wrap(FastAPI, "__init__", fastapi_init)


def _unwrap(*, fastapi: bool) -> None:
    """Take the contract's middleware out of the stacks it wrapped, of FastAPI
    applications or of the others."""
    module = sys.modules.get("fastapi")  # not imported: no application is a FastAPI one
    fastapi_class = getattr(module, "FastAPI", None)
    for app in list(_asgi_apps):
        if (fastapi_class is not None and isinstance(app, fastapi_class)) != fastapi:
            continue
        _asgi_apps.discard(app)
        stack: Any = getattr(app, "middleware_stack", None)
        if getattr(stack, AUTO, False):
            app.middleware_stack = stack.app


def _remove_starlette() -> None:
    _unwrap(fastapi=False)


def _remove_fastapi() -> None:
    from ._starlette import quieted

    _unwrap(fastapi=True)
    for app in list(quieted):
        loud_fastapi(app)


# -- Flask -------------------------------------------------------------------------------------

_flask_apps: weakref.WeakSet[Any] = weakref.WeakSet()


def _flask_explicit(app: Any) -> bool:
    extensions = getattr(app, "extensions", None)
    return isinstance(extensions, dict) and FLASK_EXTENSION in extensions


def _on_request_started(sender: Any, **extra: Any) -> None:
    if not _flask_explicit(sender):  # instrument_flask's own receivers do it for those
        _record_route(sender, **extra)


def _on_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
    if not _flask_explicit(sender):
        _record_exception(sender, exception, **extra)


def _install_flask(patches: Patches) -> None:
    from flask import Flask, signals

    original = vars(Flask)["wsgi_app"]

    @functools.wraps(original)
    def wsgi_app(self: Any, environ: Any, start_response: Any) -> Any:
        if _flask_explicit(self):
            return original(self, environ, start_response)
        middleware = vars(self).get(AUTO)
        if middleware is None:
            middleware = _flask_middleware(self, original)
        return middleware(environ, start_response)

    patches.wrap(Flask, "wsgi_app", wsgi_app)
    signals.request_started.connect(_on_request_started, weak=False)
    signals.got_request_exception.connect(_on_exception, weak=False)


def _flask_middleware(app: Any, original: Callable[..., Any]) -> Any:
    """The :class:`WSGIMiddleware` of one application (made on its first request)."""
    try:
        middleware = WSGIMiddleware(functools.partial(original, app))
        vars(app)[AUTO] = middleware
        _flask_apps.add(app)
    except Exception as exc:
        report_once("instrument", exc)
        return functools.partial(original, app)
    return middleware


def _remove_flask() -> None:
    from flask import signals

    signals.request_started.disconnect(_on_request_started)
    signals.got_request_exception.disconnect(_on_exception)
    for app in list(_flask_apps):
        vars(app).pop(AUTO, None)
    _flask_apps.clear()


# -- Django ------------------------------------------------------------------------------------

_OUR_PATHS = frozenset({DJANGO_MIDDLEWARE, "limelight_http._django.DjangoMiddleware"})
_django_inserted: list[tuple[Any, Any]] = []
"""(the ``MIDDLEWARE`` value set, the one it replaced), for ``uninstrument``."""


def _is_ours(path: object) -> bool:
    if path in _OUR_PATHS:
        return True
    if not isinstance(path, str) or "DjangoMiddleware" not in path:
        return False
    from django.utils.module_loading import import_string  # type: ignore[import-untyped]

    from ._django import DjangoMiddleware

    try:
        cls = import_string(path)
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, DjangoMiddleware)


def _ensure_listed() -> None:
    """Put :data:`DJANGO_MIDDLEWARE` first in ``settings.MIDDLEWARE`` unless it is there."""
    from django.conf import settings  # type: ignore[import-untyped]

    current = settings.MIDDLEWARE
    if any(_is_ours(path) for path in current):
        return
    listed = [DJANGO_MIDDLEWARE, *current]
    value = tuple(listed) if isinstance(current, tuple) else listed
    settings.MIDDLEWARE = value
    _django_inserted.append((value, current))


def _install_django(patches: Patches) -> None:
    from django.core.handlers.base import BaseHandler  # type: ignore[import-untyped]

    original = vars(BaseHandler)["load_middleware"]

    @functools.wraps(original)
    def load_middleware(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            _ensure_listed()
        except Exception as exc:  # Django builds its chain as it would without limelight
            report_once("instrument django", exc)
        return original(self, *args, **kwargs)

    patches.wrap(BaseHandler, "load_middleware", load_middleware)


def _remove_django() -> None:
    from django.conf import settings

    inserted = list(_django_inserted)
    _django_inserted.clear()
    if not settings.configured:
        return
    for value, previous in reversed(inserted):
        if settings.MIDDLEWARE is value:
            settings.MIDDLEWARE = previous


# -- the contract ------------------------------------------------------------------------------

instrumentation = Instrumentation(
    "http",
    [
        Instrumentor("starlette", _install_starlette, remove=_remove_starlette),
        Instrumentor("fastapi", _install_fastapi, remove=_remove_fastapi),
        Instrumentor("flask", _install_flask, remove=_remove_flask),
        Instrumentor("django", _install_django, remove=_remove_django),
    ],
)
"""The plugin's instrumentors, one per framework."""


def instrument(*libraries: str) -> tuple[str, ...]:
    """Record every request of every application of *libraries*, with no call in the
    application's code.

    The libraries are ``"starlette"``, ``"fastapi"``, ``"flask"`` and
    ``"django"``; with no name, every one installed (one that fails to
    instrument is reported once, the others still instrumented). A library
    named but not installed raises :class:`ImportError`. Idempotent. Returns
    the libraries this call instrumented. The middleware takes its options
    from the environment (``LIMELIGHT_HTTP_EXCLUDED_PATHS``, ...); for options
    in code, instrument the application explicitly, which it then keeps.
    """
    return instrumentation.instrument(*libraries)


def uninstrument(*libraries: str) -> tuple[str, ...]:
    """Put back what :func:`instrument` replaced in *libraries* (every one, with none
    given), and take its middleware out of the applications it put it in (Django:
    out of ``MIDDLEWARE``; a handler already built keeps its chain); return the
    libraries that were instrumented."""
    return instrumentation.uninstrument(*libraries)


def is_instrumented(library: str | None = None) -> bool:
    """Whether *library* (any of them, with none given) is instrumented."""
    return instrumentation.is_instrumented(library)
