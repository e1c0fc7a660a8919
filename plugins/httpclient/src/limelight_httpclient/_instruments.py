"""What one outbound request records: the CLIENT span, the metrics, the injected context.

Instruments are bound once per telemetry start (:data:`binding`); a request
costs one integer comparison to find them. :class:`Call` follows one request
from the moment it is sent to the moment its body is finished (read to the
end, closed, or failed), which is when the span ends and the duration is
observed.
"""

from __future__ import annotations

import contextvars
import importlib.metadata
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from limelight import Telemetry
from limelight.http import OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS
from limelight.metrics import OVERFLOW_LABEL_VALUE
from limelight.plugins import get_logger
from limelight.propagation import inject_span
from limelight.semconv import (
    ERROR_TYPE,
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE,
    NETWORK_PROTOCOL_VERSION,
    SERVER_ADDRESS,
    SERVER_PORT,
    URL_FULL,
)
from limelight.surface import (
    SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    SUPPRESS_INSTRUMENTATION_KEY,
    TelemetryBinding,
    current_context,
    error_type,
    report_failure,
)

from ._env import LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS, LIMELIGHT_HTTPCLIENT_ROOT_SPANS
from ._metrics import HTTP_CLIENT_DURATION, HTTP_CLIENT_IN_FLIGHT, HTTP_CLIENT_REQUESTS
from ._url import DEFAULT_PORTS, redacted_names, url_redactor

__all__ = ["ERROR_STATUS", "Call", "Instruments", "binding", "instrumenting"]

_log = get_logger("limelight.httpclient")

ERROR_STATUS = "error"
"""The ``status_code`` label of a request that got no response."""

TRACER_NAME = "limelight.httpclient"
_CACHE_LIMIT = 1024

_SUPPRESS = SUPPRESS_INSTRUMENTATION_KEY
_SUPPRESS_HTTP = SUPPRESS_HTTP_INSTRUMENTATION_KEY
_current_context = current_context
_get_current_span = trace.get_current_span
_inject_span = inject_span
_INVALID_SPAN = trace.INVALID_SPAN
_perf_counter = time.perf_counter
_CLIENT = SpanKind.CLIENT
_OTHER = "_OTHER"

instrumenting: contextvars.ContextVar[object] = contextvars.ContextVar(
    "limelight_httpclient_instrumenting", default=None
)
"""The request an explicit wrapper (transport or adapter) is sending, while it
sends. A limelight layer below it that gets *that same request* (the globally
instrumented transport the wrapper delegates to) passes it straight through, so
a request is recorded once. Any other request made meanwhile (an app behind a
wrapped ``ASGITransport`` calling out) is recorded as usual."""


def _version() -> str | None:
    try:
        return importlib.metadata.version("limelight-httpclient")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return None


def report(where: str, exc: BaseException) -> None:
    """Log a failure of the instrumentation once per place; the request is unaffected."""
    report_failure("httpclient", where, exc)


_STATUS_TEXT = {code: str(code) for code in range(100, 600)}
_ERROR = Status(StatusCode.ERROR)


class Call:
    """One request in flight: ends its span and records its metrics exactly once."""

    __slots__ = ("_add", "_inst", "done", "host", "method", "span", "start", "status")

    def __init__(
        self,
        inst: Instruments,
        span: trace.Span | None,
        method: str,
        host: str,
        add: Callable[[float], None],
    ) -> None:
        self._inst = inst
        self.span = span
        self.method = method
        self.host = host
        self._add = add
        self.status = ERROR_STATUS
        self.done = False
        self.start = _perf_counter()

    def response(self, status_code: int, http_version: str | None = None) -> None:
        """The response headers arrived with *status_code*."""
        status = _STATUS_TEXT.get(status_code) or str(status_code)
        self.status = status
        span = self.span
        if span is None:
            return
        attributes: dict[str, Any] = (
            {HTTP_RESPONSE_STATUS_CODE: status_code, NETWORK_PROTOCOL_VERSION: http_version}
            if http_version
            else {HTTP_RESPONSE_STATUS_CODE: status_code}
        )
        if status_code >= 400:
            attributes[ERROR_TYPE] = status
            span.set_status(_ERROR)
        span.set_attributes(attributes)

    def finish(self, error: BaseException | None = None) -> None:
        """The body is finished (or the request failed with *error*); idempotent."""
        if self.done:
            return
        self.done = True
        try:
            elapsed = _perf_counter() - self.start
            self._add(-1)
            inst = self._inst
            key = (self.method, self.host, self.status)
            inc, observe = inst._finished.get(key) or inst.finished(*key)
            inc()
            observe(elapsed)
            span = self.span
            if span is None:
                return
            if error is not None and not isinstance(error, GeneratorExit):
                kind = error_type(error)
                span.set_attribute(ERROR_TYPE, kind)
                span.record_exception(error, escaped=True)
                span.set_status(Status(StatusCode.ERROR, f"{kind}: {error}"))
            span.end()
        except Exception as exc:
            report("finish", exc)


C = TypeVar("C", bound=Call)


class Instruments:
    """The tracer, metrics and settings of one telemetry start."""

    __slots__ = (
        "_finished",
        "_flights",
        "active",
        "durations",
        "in_flight",
        "known_methods",
        "redact_url",
        "requests",
        "root_spans",
        "tracer",
    )

    def __init__(self, telemetry: Telemetry | None = None) -> None:
        self.active = False
        if telemetry is None or not telemetry.enabled:
            return
        store = telemetry.store
        if HTTP_CLIENT_REQUESTS.name not in store:  # the plugin is not loaded
            return
        config = telemetry.config
        self.tracer = telemetry.tracer(TRACER_NAME, _version())
        self.requests = store.get(HTTP_CLIENT_REQUESTS.name)
        self.durations = store.get(HTTP_CLIENT_DURATION.name)
        self.in_flight = store.get(HTTP_CLIENT_IN_FLIGHT.name)
        self.root_spans = config.get(LIMELIGHT_HTTPCLIENT_ROOT_SPANS)
        known: tuple[str, ...] = config.get(OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS)
        self.known_methods = frozenset(known)
        extra: tuple[str, ...] = config.get(LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS)
        self.redact_url = url_redactor(redacted_names(extra))
        # bound children by label values; the store applies the series limit,
        # these caches only save its lookups and stay small. The overflow series
        # is never cached: every request that falls into it goes back to the
        # store, which counts it in limelight_series_overflow_total (one count
        # per label-set lookup, as for every other metric)
        self._flights: dict[str, Callable[[float], None]] = {}
        self._finished: dict[
            tuple[str, str, str], tuple[Callable[[], None], Callable[[float], None]]
        ] = {}
        self.active = True

    def flight(self, host: str) -> Callable[[float], None]:
        """``add`` of the in-flight gauge for *host* (``add(1)``, then ``add(-1)``)."""
        add = self._flights.get(host)
        if add is None:
            child = self.in_flight.labels(host)
            add = child.add
            if child.labels["host"] != OVERFLOW_LABEL_VALUE and len(self._flights) < _CACHE_LIMIT:
                self._flights[host] = add
        return add

    def finished(
        self, method: str, host: str, status: str
    ) -> tuple[Callable[[], None], Callable[[float], None]]:
        """``(inc, observe)`` of the request counter and duration for these labels."""
        key = (method, host, status)
        pair = self._finished.get(key)
        if pair is None:
            counter = self.requests.labels(*key)
            histogram = self.durations.labels(*key)
            pair = (counter.inc, histogram.observe)
            # a method is never "_overflow" (it is normalised first)
            overflowed = OVERFLOW_LABEL_VALUE in (
                counter.labels["method"],
                histogram.labels["method"],
            )
            if not overflowed and len(self._finished) < _CACHE_LIMIT:
                self._finished[key] = pair
        return pair

    def begin(
        self,
        method: str,
        url: object,
        scheme: str,
        host: str,
        port: int | None,
        headers: MutableMapping[str, Any],
        root_spans: bool | None = None,
        call_type: type[C] = Call,  # type: ignore[assignment]
    ) -> C | None:
        """Start recording a request and inject the context into *headers*.

        *url* is rendered with ``str`` and redacted only when a span is
        started. Returns ``None`` when instrumentation is suppressed for this
        context (telemetry's own exports run that way), else a *call_type*.
        """
        ctx = _current_context()
        if ctx.get(_SUPPRESS) or ctx.get(_SUPPRESS_HTTP):
            return None
        label = method if method in self.known_methods else _OTHER
        span: trace.Span | None
        if (self.root_spans if root_spans is None else root_spans) or _get_current_span(
            ctx
        ).get_span_context().is_valid:
            attributes: dict[str, Any] = {
                HTTP_REQUEST_METHOD: label,
                URL_FULL: self.redact_url(str(url)),
                SERVER_ADDRESS: host,
            }
            if port is None:
                port = DEFAULT_PORTS.get(scheme)
            if port is not None:
                attributes[SERVER_PORT] = port
            if label is _OTHER:
                attributes[HTTP_REQUEST_METHOD_ORIGINAL] = method
            started = self.tracer.start_span(
                "HTTP" if label is _OTHER else label, ctx, _CLIENT, attributes
            )
            # a span the sampler dropped is not recording: the response attributes
            # are not worked out for it
            span = started if started.is_recording() else None
        else:
            # no span here and none current: nothing to carry but baggage (and whatever
            # another propagator reads from the context)
            span = None
            started = _INVALID_SPAN
        try:
            _inject_span(headers, started, ctx)
        except Exception as exc:  # a broken propagator loses the context, not the request
            report("inject", exc)
        add = self._flights.get(host) or self.flight(host)
        add(1)
        return call_type(self, span, label, host, add)


binding: TelemetryBinding[Instruments] = TelemetryBinding(Instruments)
"""The instruments of the running telemetry (inactive when none runs)."""
