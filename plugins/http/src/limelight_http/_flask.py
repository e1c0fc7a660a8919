"""One-call setup for Flask applications."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._asgi import EXCHANGE_KEY
from ._exchange import AttributesHook, Exchange, report_once
from ._starlette import AUTO
from ._wsgi import Environ, WSGIMiddleware

__all__ = ["FLASK_EXTENSION", "instrument_flask"]

App = TypeVar("App")

FLASK_EXTENSION = "limelight_http"
"""The ``app.extensions`` key of an application :func:`instrument_flask` instrumented."""
_EXTENSION = FLASK_EXTENSION


def _exchange() -> Exchange | None:
    from flask import request

    ex = request.environ.get(EXCHANGE_KEY)
    return ex if isinstance(ex, Exchange) else None


def _on_request_started(sender: Any, **extra: Any) -> None:
    """Routing is done: record ``url_rule.rule`` (``None`` for a 404 or 405)."""
    from flask import request

    try:
        ex = _exchange()
        if ex is not None:
            rule = request.url_rule
            ex.set_route(rule.rule if rule is not None else None)
    except Exception as exc:  # a signal receiver that raises would fail the request
        report_once("flask request_started", exc)


def _on_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
    """Flask turned *exception* into a 500 response: keep it on the span."""
    try:
        ex = _exchange()
        if ex is not None:
            ex.record_exception(exception)
    except Exception as exc:
        report_once("flask got_request_exception", exc)


def instrument_flask(
    app: App,
    *,
    exclude_paths: Iterable[str] = (),
    exclude: Callable[[Environ], bool] | None = None,
    request_attributes: AttributesHook | None = None,
    response_traceparent: bool | None = None,
) -> App:
    """Wrap ``app.wsgi_app`` in :class:`WSGIMiddleware` (idempotent).

    The route is the matched rule (``/items/<int:item_id>``, blueprint prefix
    included), taken from Flask's ``request_started`` signal; an exception that
    Flask turns into a 500 response is recorded on the span through
    ``got_request_exception``. The keyword arguments are those of
    :class:`WSGIMiddleware`. Returns *app*.
    """
    from flask import signals

    extensions: dict[str, Any] = app.extensions  # type: ignore[attr-defined]
    if _EXTENSION in extensions:
        return app
    app.wsgi_app = WSGIMiddleware(  # type: ignore[attr-defined]
        app.wsgi_app,  # type: ignore[attr-defined]
        exclude_paths=exclude_paths,
        exclude=exclude,
        request_attributes=request_attributes,
        response_traceparent=response_traceparent,
    )
    signals.request_started.connect(_on_request_started, app, weak=False)
    signals.got_request_exception.connect(_on_exception, app, weak=False)
    extensions[_EXTENSION] = app.wsgi_app  # type: ignore[attr-defined]
    vars(app).pop(AUTO, None)  # the instrument contract's middleware: this one replaces it
    return app
