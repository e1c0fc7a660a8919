"""The core's built-in plugins: function metrics (order 50) and function tracing (order 100).

They are registered through the ``limelight.plugins`` entry points like any
other plugin, so ``limelight plugins`` lists them and
``LIMELIGHT_DISABLED_PLUGINS`` can turn either off.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from limelight_hookspecs import (
    CallHandler,
    Config,
    FunctionTarget,
    Interceptor,
    MetricDeclaration,
    MetricKind,
    SpanRole,
    TelemetryView,
    hookimpl,
)

from ._context import current_span
from ._spans import error_type
from ._store import MetricStore
from .semconv import ERROR_TYPE

__all__ = [
    "FUNCTION_CALLS",
    "FUNCTION_DURATION",
    "FUNCTION_IN_FLIGHT",
    "function_metrics",
    "function_tracing",
]

FUNCTION_CALLS = MetricDeclaration(
    "function_calls_total",
    MetricKind.COUNTER,
    "Calls of instrumented functions, by function and result (ok/error).",
    unit="1",
    label_names=("function", "result"),
)
FUNCTION_DURATION = MetricDeclaration(
    "function_duration_seconds",
    MetricKind.HISTOGRAM,
    "Duration of instrumented function calls in seconds, by function and result.",
    unit="s",
    label_names=("function", "result"),
)
FUNCTION_IN_FLIGHT = MetricDeclaration(
    "function_in_flight",
    MetricKind.GAUGE_ADD,
    "Calls of instrumented functions currently running, by function.",
    unit="1",
    label_names=("function",),
)

_perf_counter = time.perf_counter


class _MetricsHandler(CallHandler):
    """Times one function; every metric child is bound once, here."""

    __slots__ = ("_dec", "_err", "_err_observe", "_inc", "_ok", "_ok_observe")

    def __init__(self, store: MetricStore, target: FunctionTarget) -> None:
        calls = store.get(FUNCTION_CALLS.name)
        duration = store.get(FUNCTION_DURATION.name)
        in_flight = store.get(FUNCTION_IN_FLIGHT.name).labels(target.name)
        self._ok = calls.labels(target.name, "ok").inc
        self._err = calls.labels(target.name, "error").inc
        self._ok_observe = duration.labels(target.name, "ok").observe
        self._err_observe = duration.labels(target.name, "error").observe
        self._inc = in_flight.inc
        self._dec = in_flight.dec

    def enter(self) -> object:
        self._inc()
        return _perf_counter()

    def exit(self, state: object, error: BaseException | None) -> None:
        elapsed = _perf_counter() - state  # type: ignore[operator]
        self._dec()
        if error is None:
            self._ok()
            self._ok_observe(elapsed)
        else:
            self._err()
            self._err_observe(elapsed)


class FunctionMetricsPlugin:
    """Declares the function metrics and contributes the metrics interceptor (order 50)."""

    limelight_priority = 10
    limelight_name = "limelight.function_metrics"

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return (FUNCTION_CALLS, FUNCTION_DURATION, FUNCTION_IN_FLIGHT)

    @hookimpl
    def limelight_interceptors_provide(self, telemetry: TelemetryView) -> Sequence[Interceptor]:
        store = telemetry.store
        if not isinstance(store, MetricStore) or FUNCTION_CALLS.name not in store:
            return ()

        def bind(target: FunctionTarget) -> CallHandler:
            return _MetricsHandler(store, target)

        return (Interceptor("limelight.function_metrics", 50, bind),)


_ROLE_KIND = {
    SpanRole.SERVER: SpanKind.SERVER,
    SpanRole.INTERNAL: SpanKind.INTERNAL,
    SpanRole.CONSUMER: SpanKind.CONSUMER,
    SpanRole.PRODUCER: SpanKind.PRODUCER,
    SpanRole.CLIENT: SpanKind.CLIENT,
}

_set_span_in_context = trace.set_span_in_context
_attach = otel_context.attach
_detach = otel_context.detach


class _TracingHandler(CallHandler):
    """Starts a span per call; SERVER at the root and INTERNAL below unless a role is given."""

    __slots__ = ("_attributes", "_kind", "_name", "_start_span")
    activates = True

    def __init__(self, tracer: trace.Tracer, target: FunctionTarget) -> None:
        self._start_span = tracer.start_span
        self._name = target.name
        self._kind = _ROLE_KIND.get(target.role)
        self._attributes = {
            "code.function.name": f"{target.module}.{target.qualname}",
            **target.attributes,
        }

    def enter(self) -> object:
        kind = self._kind
        if kind is None:
            parent = current_span().get_span_context()
            kind = SpanKind.INTERNAL if parent.is_valid else SpanKind.SERVER
        return self._start_span(
            self._name,
            kind=kind,
            attributes=self._attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    def activate(self, state: object) -> object:
        return _attach(_set_span_in_context(state))  # type: ignore[arg-type]

    def deactivate(self, token: object) -> None:
        _detach(token)  # type: ignore[arg-type]

    def exit(self, state: object, error: BaseException | None) -> None:
        span: trace.Span = state  # type: ignore[assignment]
        if error is not None and not isinstance(error, (GeneratorExit,)):
            span.set_attribute(ERROR_TYPE, error_type(error))
            span.record_exception(error, escaped=True)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()


class FunctionTracingPlugin:
    """Contributes the tracing interceptor (order 100, inside the metrics one)."""

    limelight_priority = 11
    limelight_name = "limelight.function_tracing"

    @hookimpl
    def limelight_interceptors_provide(self, telemetry: TelemetryView) -> Sequence[Interceptor]:
        tracer = telemetry.tracer_provider.get_tracer("limelight.function")

        def bind(target: FunctionTarget) -> CallHandler:
            return _TracingHandler(tracer, target)

        return (Interceptor("limelight.function_tracing", 100, bind),)


function_metrics = FunctionMetricsPlugin()
function_tracing = FunctionTracingPlugin()
