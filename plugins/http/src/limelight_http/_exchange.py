"""What every server integration shares: instruments bound once per telemetry start,
and one :class:`Exchange` per request that owns its span, its in-flight count and
its final metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from limelight import Telemetry
from limelight.metrics import OVERFLOW_LABEL_VALUE
from limelight.plugins import get_logger
from limelight.propagation import format_traceparent, unpack_span_context
from limelight.semconv import (
    ERROR_TYPE,
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from limelight.surface import TelemetryBinding, error_type, report_failure

from ._plugin import (
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    LIMELIGHT_HTTP_EXCLUDED_PATHS,
    LIMELIGHT_HTTP_METRICS_PATH,
    LIMELIGHT_HTTP_RESPONSE_TRACEPARENT,
    OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS,
)

__all__ = [
    "CLIENT_CLOSED_STATUS",
    "OTHER_METHOD",
    "UNMATCHED_ROUTE",
    "AttributesHook",
    "Exchange",
    "Instruments",
    "Options",
    "instruments",
]

_log = get_logger("limelight.http")

UNMATCHED_ROUTE = "_unmatched"
"""The ``route`` label of a request that matched no route (a 404 from the router,
a redirect to the slash-terminated path, ...): raw paths never become labels."""

OTHER_METHOD = "_OTHER"
"""``http.request.method`` and the ``method`` label of a method outside the known set."""

CLIENT_CLOSED_STATUS = "499"
"""The ``status_code`` label of a request whose client went away before the response
was complete (nginx's "client closed request")."""

_SERVER_ERROR = "500"
_DISCONNECT_DESCRIPTION = "client disconnected before the response was complete"
_INCOMPLETE_DESCRIPTION = "the application returned without completing the response"

AttributesHook = Callable[[Any], "Mapping[str, AttributeValue] | None"]
"""Called once per recorded request with the framework's request object (ASGI
scope, WSGI environ or Django ``HttpRequest``); returns extra span attributes."""

_perf_counter = time.perf_counter
_attach = otel_context.attach
_detach = otel_context.detach
_set_span_in_context = trace.set_span_in_context
_SERVER = SpanKind.SERVER
_STATUS_TEXT = {code: str(code) for code in range(100, 600)}


def report_once(what: str, exc: BaseException) -> None:
    """Log a failing step or user hook once per kind of failure; the request is unaffected."""
    report_failure("http", what, exc)


class Options:
    """Per-middleware settings, merged with the environment on each telemetry start.

    :param exclude_paths: paths served without telemetry; a path ending in ``*``
        excludes every path starting with what comes before it.
    :param exclude: called with the request object (ASGI scope, WSGI environ,
        Django request); true means serve it without telemetry.
    :param request_attributes: see :data:`AttributesHook`.
    :param response_traceparent: add ``traceparent`` to responses; ``None``
        means ``LIMELIGHT_HTTP_RESPONSE_TRACEPARENT`` (default true).
    """

    __slots__ = (
        "_bound_to",
        "exact",
        "exclude",
        "exclude_paths",
        "filtering",
        "inject",
        "prefixes",
        "request_attributes",
        "response_traceparent",
    )

    def __init__(
        self,
        exclude_paths: Iterable[str] = (),
        exclude: Callable[[Any], bool] | None = None,
        request_attributes: AttributesHook | None = None,
        response_traceparent: bool | None = None,
    ) -> None:
        if isinstance(exclude_paths, str):
            raise TypeError("exclude_paths takes a collection of paths, not one string")
        self.exclude_paths = tuple(exclude_paths)
        for path in self.exclude_paths:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"exclude_paths: {path!r} is not a path starting with '/'")
        self.exclude = exclude
        self.request_attributes = request_attributes
        self.response_traceparent = response_traceparent
        self._bound_to: Instruments | None = None
        self.exact: frozenset[str] = frozenset()
        self.prefixes: tuple[str, ...] = ()
        self.filtering = exclude is not None
        """Whether :meth:`excluded` can be true at all (else callers skip it)."""
        self.inject = True

    def bind(self, inst: Instruments) -> None:
        """Merge with the settings *inst* was built with (once per telemetry start)."""
        paths = (*inst.excluded_paths, *self.exclude_paths)
        self.exact = frozenset(p for p in paths if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))
        self.filtering = bool(self.exact or self.prefixes or self.exclude is not None)
        self.inject = (
            inst.response_traceparent
            if self.response_traceparent is None
            else self.response_traceparent
        )
        self._bound_to = inst

    def excluded(self, path: str, request: Any) -> bool:
        """Whether the request for *path* is served without telemetry."""
        if path in self.exact or (self.prefixes and path.startswith(self.prefixes)):
            return True
        exclude = self.exclude
        if exclude is None:
            return False
        try:
            return bool(exclude(request))
        except Exception as exc:
            report_once("exclude", exc)
            return False


class _Route:
    """One (method, route) pair: its span name (built once, not per request) and its
    bound metric children by status label."""

    __slots__ = ("key", "name", "outcomes")

    def __init__(self, span_name: str, method: str, route: str | None) -> None:
        self.name = span_name if route is None else f"{span_name} {route}"
        self.key = (method, route or UNMATCHED_ROUTE)
        self.outcomes: dict[str, tuple[Callable[[], None], Callable[[float], None]]] = {}


_MAX_ROUTES = 10_000
"""Routes kept per method (route templates are few; a resolver returning raw paths
would otherwise grow the table without bound)."""


class _Method:
    """What every request of one method shares: its ``method`` label, its span name
    before routing, its in-flight gauge's ``add`` (bound on first use) and its routes."""

    __slots__ = ("gauge", "method", "routes", "span_name")

    def __init__(self, method: str, span_name: str) -> None:
        self.method = method
        self.span_name = span_name
        self.gauge: Any = None
        self.routes: dict[str | None, _Route] = {}

    def route(self, route: str | None) -> _Route:
        """The entry of *route* (built on first use)."""
        entry = self.routes.get(route)
        if entry is None:
            entry = _Route(self.span_name, self.method, route)
            if len(self.routes) < _MAX_ROUTES:
                entry = self.routes.setdefault(route, entry)
        return entry


class Instruments:
    """The tracer and metric handles of one telemetry start (see :func:`instruments`)."""

    __slots__ = (
        "_in_flight_metric",
        "_methods",
        "_other",
        "duration",
        "excluded_paths",
        "requests",
        "response_traceparent",
        "start_span",
    )

    def __init__(self, telemetry: Telemetry) -> None:
        from . import __version__

        store = telemetry.store
        config = telemetry.config
        self.requests = store.get(HTTP_REQUESTS.name)
        self.duration = store.get(HTTP_REQUEST_DURATION.name)
        self._in_flight_metric = store.get(HTTP_IN_FLIGHT.name)
        known = config.get(OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS)
        self._methods: dict[str, _Method] = {m: _Method(m, m) for m in known}
        self._other = _Method(OTHER_METHOD, "HTTP")
        excluded: tuple[str, ...] = config.get(LIMELIGHT_HTTP_EXCLUDED_PATHS)
        metrics_path = config.get(LIMELIGHT_HTTP_METRICS_PATH)
        if metrics_path and metrics_path != "/":
            # Prometheus's scrapes are not the application's traffic
            excluded = (*excluded, metrics_path, metrics_path + "/*")
        self.excluded_paths = excluded
        self.response_traceparent: bool = config.get(LIMELIGHT_HTTP_RESPONSE_TRACEPARENT)
        self.start_span = telemetry.tracer("limelight.http", __version__).start_span

    def outcome(
        self, route: _Route, status_label: str
    ) -> tuple[Callable[[], None], Callable[[float], None]]:
        """The bound ``inc`` and ``observe`` of *route* under *status_label*.

        Children come from the store's label cache; they are kept on *route* too
        unless they are the overflow series (so every overflowing request is
        still counted in ``limelight_series_overflow_total``).
        """
        key = (*route.key, status_label)
        counter = self.requests.labels(*key)
        histogram = self.duration.labels(*key)
        outcome = (counter.inc, histogram.observe)
        overflowed = OVERFLOW_LABEL_VALUE in (
            counter.labels.get("method"),
            histogram.labels.get("method"),
        )
        if not overflowed and len(route.outcomes) < 1_000:
            route.outcomes[status_label] = outcome
        return outcome

    def begin(
        self, raw_method: str, parent: Context, attributes: dict[str, AttributeValue]
    ) -> Exchange:
        """Count the request in flight and start its SERVER span.

        :param raw_method: the request method as received.
        :param parent: the context extracted from the request headers.
        :param attributes: span attributes known before routing; the normalised
            ``http.request.method`` (and ``_original``) are added here.
        """
        method = self._methods.get(raw_method)
        if method is None:
            method = self._other
            attributes[HTTP_REQUEST_METHOD_ORIGINAL] = raw_method
        attributes[HTTP_REQUEST_METHOD] = method.method
        add = method.gauge
        if add is None:
            add = method.gauge = self._in_flight_metric.labels(method.method).add
        add(1)
        span = self.start_span(
            method.span_name,
            context=parent,
            kind=_SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        context = _set_span_in_context(span, parent)
        return Exchange(self, method, span, context, _attach(context))


def _build(telemetry: Telemetry) -> Instruments | None:
    if not telemetry.enabled or HTTP_REQUESTS.name not in telemetry.store:
        return None
    return Instruments(telemetry)


_BINDING: TelemetryBinding[Instruments | None] = TelemetryBinding(_build)

instruments: Callable[[], Instruments | None] = _BINDING.get
"""The instruments of the running telemetry, or ``None`` when telemetry is not
enabled or the http plugin is not loaded: then every integration passes straight
through."""


def status_text(status: int) -> str:
    """The ``status_code`` label of *status*."""
    return _STATUS_TEXT.get(status) or str(status)


def traceparent(span: Span) -> str | None:
    """The W3C ``traceparent`` value naming *span* (the core's
    :func:`~limelight.propagation.format_traceparent`), or ``None`` for an invalid span."""
    # the span context's fields in one call rather than through four properties
    trace_id, span_id, _, flags, _, is_valid = unpack_span_context(span.get_span_context())
    if not is_valid:
        return None
    return format_traceparent(trace_id, span_id, flags)


def traceparent_bytes(span: Span) -> bytes | None:
    """:func:`traceparent` as the bytes an ASGI header carries."""
    value = traceparent(span)
    return None if value is None else value.encode("ascii")


class Exchange:
    """One request: its span, its in-flight count, its route and its outcome.

    Integrations call :meth:`set_route` once routing is known,
    :meth:`record_exception` for an exception the framework turned into a
    response, and :meth:`finish` exactly when the last byte went out (or the
    request failed or the client left). :meth:`finish_metrics` may come earlier
    (a WebSocket handshake is over long before its connection span ends).
    ``status`` is the response status once known, and ``sent`` true once it
    went out: a request that fails after that keeps it as its ``status_code``.
    """

    __slots__ = (
        "_inst",
        "_method",
        "context",
        "error_recorded",
        "hook",
        "metrics_done",
        "request",
        "route",
        "sent",
        "span",
        "span_done",
        "start",
        "status",
        "token",
    )

    def __init__(
        self, inst: Instruments, method: _Method, span: Span, context: Context, token: object
    ) -> None:
        self._inst = inst
        self._method = method
        self.span = span
        self.context = context
        self.token = token
        self.route: str | None = None
        self.status: int | None = None
        self.sent = False
        self.hook: AttributesHook | None = None
        self.request: Any = None
        self.error_recorded = False
        self.metrics_done = False
        self.span_done = False
        self.start = _perf_counter()

    @property
    def method(self) -> str:
        """The ``method`` label: a known method or ``_OTHER``."""
        return self._method.method

    def detach(self) -> None:
        """Make the context that was current before the request current again."""
        token = self.token
        if token is not None:
            self.token = None
            _detach(token)  # type: ignore[arg-type]

    def set_route(self, route: str | None) -> None:
        """The route template, ``None`` when no route matched."""
        self.route = route

    def record_exception(self, exc: BaseException) -> None:
        """Record *exc* on the span (once), for an exception the framework handled."""
        try:
            if self.error_recorded:
                return
            self.error_recorded = True
            span = self.span
            if span.is_recording():
                span.record_exception(exc, escaped=False)
                span.set_attribute(ERROR_TYPE, error_type(exc))
        except Exception as failure:  # telemetry never breaks the request
            report_once("record_exception", failure)

    def finish_metrics(self, status_label: str) -> None:
        """Count the request and its duration under *status_label*; leave in-flight."""
        try:
            if self.metrics_done:
                return
            self.metrics_done = True
            elapsed = _perf_counter() - self.start
            method = self._method
            method.gauge(-1)
            route = method.routes.get(self.route) or method.route(self.route)
            outcome = route.outcomes.get(status_label) or self._inst.outcome(route, status_label)
            outcome[0]()
            outcome[1](elapsed)
        except Exception as exc:  # telemetry never breaks the request
            report_once("finish_metrics", exc)

    def complete(self) -> None:
        """The common ending: the whole response went out with a status below 500."""
        try:
            status: int = self.status  # type: ignore[assignment]
            if not self.metrics_done:
                self.finish_metrics(_STATUS_TEXT.get(status) or str(status))
            if self.span_done:
                return
            self.span_done = True
            span = self.span
            if span.is_recording():
                route = self.route
                if route is None:
                    attributes: dict[str, AttributeValue] = {HTTP_RESPONSE_STATUS_CODE: status}
                else:
                    attributes = {HTTP_ROUTE: route, HTTP_RESPONSE_STATUS_CODE: status}
                    method = self._method
                    span.update_name((method.routes.get(route) or method.route(route)).name)
                if self.hook is not None:
                    self._add_hook_attributes(attributes)
                span.set_attributes(attributes)
            self.request = None  # no cycle through the request: freed without the collector
            span.end()
        except Exception as exc:  # telemetry never breaks the request
            report_once("complete", exc)

    def _add_hook_attributes(self, attributes: dict[str, AttributeValue]) -> None:
        hook = self.hook
        assert hook is not None
        try:
            extra = hook(self.request)
        except Exception as exc:
            report_once("request_attributes", exc)
        else:
            if extra:
                attributes.update(extra)

    def finish(
        self,
        *,
        error: BaseException | None = None,
        disconnected: bool = False,
        incomplete: bool = False,
    ) -> None:
        """Record the outcome and end the span; idempotent.

        :param error: an exception that escaped the application.
        :param disconnected: the client left before the response was complete.
        :param incomplete: the application returned before completing its
            response (without an exception or a disconnect).
        """
        try:
            status = self.status
            sent = self.sent and status is not None
            if not self.metrics_done:
                if disconnected:
                    label = CLIENT_CLOSED_STATUS
                elif status is None or (not sent and (error is not None or incomplete)):
                    label = _SERVER_ERROR
                else:  # a response that started keeps the status it went out with
                    label = _STATUS_TEXT.get(status) or str(status)
                self.finish_metrics(label)
            if self.span_done:
                return
            self.span_done = True
            span = self.span
            if span.is_recording():
                attributes: dict[str, AttributeValue] = {}
                route = self.route
                if route is not None:
                    attributes[HTTP_ROUTE] = route
                    method = self._method
                    span.update_name((method.routes.get(route) or method.route(route)).name)
                if error is not None and not sent:
                    status = 500  # what the server sends in place of the response
                if status is not None:
                    attributes[HTTP_RESPONSE_STATUS_CODE] = status
                failed: str | None = None
                if error is not None and not disconnected:
                    attributes[ERROR_TYPE] = error_type(error)
                    if not self.error_recorded:
                        span.record_exception(error, escaped=True)
                    failed = f"{type(error).__name__}: {error}"
                elif disconnected:
                    attributes[ERROR_TYPE] = "client_disconnected"
                    failed = _DISCONNECT_DESCRIPTION
                elif incomplete or status is None:
                    attributes[ERROR_TYPE] = "incomplete_response"
                    failed = _INCOMPLETE_DESCRIPTION
                elif status >= 500:
                    if not self.error_recorded:
                        attributes[ERROR_TYPE] = _STATUS_TEXT.get(status) or str(status)
                    failed = ""
                if self.hook is not None:
                    self._add_hook_attributes(attributes)
                span.set_attributes(attributes)
                if failed is not None:
                    span.set_status(Status(StatusCode.ERROR, failed or None))
            self.request = None
            span.end()
        except Exception as exc:  # telemetry never breaks the request
            report_once("finish", exc)
