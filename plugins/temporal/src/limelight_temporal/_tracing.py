"""The tracing interceptor: client calls, workflows and activities as spans, the context
carried in Temporal headers through the global propagator.

Client calls and activity attempts are ordinary spans with real durations.
Workflow code is different: it runs in the workflow sandbox, must stay
deterministic, and is re-executed from its history whenever a worker rebuilds a
workflow (a cache eviction, a restart, another worker taking over). So the
workflow interceptor never creates a span itself: it calls out of the sandbox
(an extern function) with values taken from the workflow's history (its run id,
its workflow time, the headers it was started with), and spans are made there,
zero-duration at workflow time, only for code that is not being replayed.

The workflow's own span, ``RunWorkflow:<type>``, has a span id derived from the
run id, so a replaying worker derives the same parent for the spans it makes
after the replay (a later activity, a signal) without any state surviving the
replay; a workflow started without a trace context gets a trace id derived from
its run id the same way. The outcome of the run is the ``CompleteWorkflow:<type>``
span, with status Error and ``error.type`` when the workflow failed.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import temporalio.activity
import temporalio.api.common.v1
import temporalio.client
import temporalio.converter
import temporalio.exceptions
import temporalio.worker
import temporalio.workflow
from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from limelight import Telemetry
from limelight.propagation import inject_span
from limelight.semconv import ERROR_TYPE
from limelight.surface import TelemetryBinding, error_type, report_failure, start_span_with_id

__all__ = [
    "ACTIVITY_ATTEMPT",
    "ACTIVITY_ID",
    "ACTIVITY_LOCAL",
    "ACTIVITY_TYPE",
    "HEADER_KEY",
    "NAMESPACE",
    "TASK_QUEUE",
    "TRACER_NAME",
    "WORKFLOW_ID",
    "WORKFLOW_RUN_ID",
    "WORKFLOW_TYPE",
    "TracingInterceptor",
    "TracingSetupError",
    "temporal_error_type",
]

HEADER_KEY = "_tracer-data"
"""The Temporal header holding the propagator's fields, as a JSON object: the key and
format the other Temporal SDKs' OpenTelemetry interceptors use, so traces cross
workers written in other languages."""
TRACER_NAME = "limelight_temporal"

WORKFLOW_ID = "temporal.workflow.id"
WORKFLOW_RUN_ID = "temporal.workflow.run_id"
WORKFLOW_TYPE = "temporal.workflow.type"
ACTIVITY_ID = "temporal.activity.id"
ACTIVITY_TYPE = "temporal.activity.type"
ACTIVITY_ATTEMPT = "temporal.activity.attempt"
ACTIVITY_LOCAL = "temporal.activity.local"
TASK_QUEUE = "temporal.task_queue"
NAMESPACE = "temporal.namespace"

_EXTERN = "__limelight_temporal_spans"
_Carrier = dict[str, str]
_Headers = Mapping[str, temporalio.api.common.v1.Payload]
R = TypeVar("R")


class TracingSetupError(ValueError):
    """The tracing interceptor cannot work as configured (raised when it is built or
    given to a client or worker, never while work runs)."""


def temporal_error_type(exc: BaseException) -> str:
    """The ``error.type`` of a failure: an ``ApplicationError``'s own type when it has
    one (``PaymentDeclined``), the exception's qualified class name otherwise."""
    if isinstance(exc, temporalio.exceptions.ApplicationError) and exc.type:
        return exc.type
    return error_type(exc)


def _benign(exc: BaseException) -> bool:
    """Not a failure: a benign application error, or an activity completing asynchronously."""
    if isinstance(exc, temporalio.exceptions.ApplicationError):
        category = getattr(exc, "category", None)
        benign = getattr(temporalio.exceptions.ApplicationErrorCategory, "BENIGN", None)
        return benign is not None and category == benign
    return type(exc).__name__ == "_CompleteAsyncError"


def _fail(span: trace.Span, exc: BaseException) -> None:
    span.set_attribute(ERROR_TYPE, temporal_error_type(exc))
    span.set_status(Status(StatusCode.ERROR))


class _Instruments:
    __slots__ = ("enabled", "tracer")

    def __init__(self, telemetry: Telemetry) -> None:
        self.enabled = telemetry.enabled
        self.tracer: trace.Tracer = telemetry.tracer(TRACER_NAME)


_binding = TelemetryBinding(_Instruments)
_sample = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1))


def _check_propagator(converter: temporalio.converter.PayloadConverter) -> None:
    """Raise :class:`TracingSetupError` unless the global propagator's fields survive a
    Temporal header: text keys and values, through the payload converter and back."""
    propagator = propagate.get_global_textmap()
    carrier: dict[str, Any] = {}
    what = type(propagator).__qualname__
    try:
        propagator.inject(carrier, trace.set_span_in_context(trace.NonRecordingSpan(_sample)))
    except Exception as exc:
        raise TracingSetupError(f"the global propagator {what} failed to inject: {exc!r}") from exc
    if not carrier:  # OTEL_PROPAGATORS=none: nothing travels, which is a valid choice
        return
    bad = {k: v for k, v in carrier.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise TracingSetupError(
            f"the global propagator {what} writes fields that are not text ({bad!r}); "
            "a Temporal header carries text fields only"
        )
    try:
        [payload] = converter.to_payloads([carrier])
        [back] = converter.from_payloads([payload])
        extracted = trace.get_current_span(propagator.extract(back)).get_span_context()
    except Exception as exc:
        raise TracingSetupError(
            f"the global propagator {what}'s fields do not survive a Temporal header: {exc!r}"
        ) from exc
    if extracted.is_valid and extracted.trace_id != _sample.trace_id:
        raise TracingSetupError(
            f"the global propagator {what} does not read back the context it wrote"
        )


class TracingInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Spans for a Temporal client and the workers built on it, context in the headers.

    Give it to the client (workers inherit their client's interceptors)::

        client = await Client.connect(
            "localhost:7233",
            interceptors=[limelight_temporal.TracingInterceptor()],
            runtime=limelight_temporal.runtime(),
        )

    With the plugin loaded and ``LIMELIGHT_TEMPORAL_INSTRUMENT`` on (the default),
    every client created after telemetry starts gets one without asking. Spans
    are made by the running telemetry; with none running, calls pass through.

    :raises TracingSetupError: the global propagator's fields cannot travel in a
        Temporal header (checked again when a worker is built, since the
        propagator may have changed).
    """

    header_key = HEADER_KEY

    def __init__(self) -> None:
        self.converter = temporalio.converter.PayloadConverter.default
        _check_propagator(self.converter)
        self._spans = _WorkflowSpans(self)

    # -- temporalio interceptor contract ----------------------------------------------------

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        if isinstance(next, _ClientOutbound):  # traced already (the same chain twice)
            return next
        return _ClientOutbound(next, self)

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        if isinstance(next, _ActivityInbound):
            return next
        return _ActivityInbound(next, self)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        _check_propagator(self.converter)
        input.unsafe_extern_functions[_EXTERN] = self._spans
        return _WorkflowInbound

    # -- headers ------------------------------------------------------------------------

    def payload(self, carrier: _Carrier) -> temporalio.api.common.v1.Payload:
        """The header value of *carrier*."""
        return self.converter.to_payloads([carrier])[0]

    def inject(
        self, headers: _Headers, span: trace.Span, context: context_api.Context | None = None
    ) -> _Headers:
        """*headers* with *span* as the receiver's parent (unchanged when nothing is written)."""
        carrier: _Carrier = {}
        inject_span(carrier, span, context)
        if not carrier:
            return headers
        return {**headers, self.header_key: self.payload(carrier)}

    def carrier(self, headers: _Headers | None) -> _Carrier | None:
        """The fields in *headers*, ``None`` when there are none or they are unreadable."""
        if not headers:
            return None
        payload = headers.get(self.header_key)
        if payload is None:
            return None
        try:
            [value] = self.converter.from_payloads([payload])
        except Exception as exc:
            report_failure("temporal", "read header", exc)
            return None
        if not isinstance(value, dict):
            report_failure("temporal", "read header", TypeError(f"not an object: {value!r}"))
            return None
        return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}

    def extract(self, headers: _Headers | None) -> context_api.Context | None:
        """The context *headers* carry, ``None`` when they carry none."""
        carrier = self.carrier(headers)
        if carrier is None:
            return None
        try:
            return propagate.extract(carrier)
        except Exception as exc:
            report_failure("temporal", "extract", exc)
            return None

    # -- client calls -------------------------------------------------------------------

    async def client_call(
        self,
        name: str,
        attributes: dict[str, AttributeValue],
        inputs: tuple[Any, ...],
        call: Callable[[], Awaitable[R]],
    ) -> R:
        """Run *call* in a CLIENT span whose context the *inputs*' headers carry."""
        inst = _binding.get()
        if not inst.enabled:
            return await call()
        try:
            span = inst.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        except Exception as exc:
            report_failure("temporal", "client span", exc)
            return await call()
        try:
            for item in inputs:
                item.headers = self.inject(item.headers, span)
        except Exception as exc:
            report_failure("temporal", "inject", exc)
        token = context_api.attach(trace.set_span_in_context(span))
        try:
            return await call()
        except BaseException as exc:
            _fail(span, exc)
            raise
        finally:
            context_api.detach(token)
            span.end()


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    def __init__(self, next: temporalio.client.OutboundInterceptor, root: TracingInterceptor):
        super().__init__(next)
        self._root = root

    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        prefix = "SignalWithStartWorkflow" if input.start_signal else "StartWorkflow"
        return await self._root.client_call(
            f"{prefix}:{input.workflow}",
            {WORKFLOW_ID: input.id, WORKFLOW_TYPE: input.workflow, TASK_QUEUE: input.task_queue},
            (input,),
            lambda: super(_ClientOutbound, self).start_workflow(input),
        )

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        return await self._root.client_call(
            f"SignalWorkflow:{input.signal}",
            {WORKFLOW_ID: input.id},
            (input,),
            lambda: super(_ClientOutbound, self).signal_workflow(input),
        )

    async def query_workflow(self, input: temporalio.client.QueryWorkflowInput) -> Any:
        return await self._root.client_call(
            f"QueryWorkflow:{input.query}",
            {WORKFLOW_ID: input.id},
            (input,),
            lambda: super(_ClientOutbound, self).query_workflow(input),
        )

    async def start_workflow_update(
        self, input: temporalio.client.StartWorkflowUpdateInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        return await self._root.client_call(
            f"StartWorkflowUpdate:{input.update}",
            {WORKFLOW_ID: input.id},
            (input,),
            lambda: super(_ClientOutbound, self).start_workflow_update(input),
        )

    async def start_update_with_start_workflow(
        self, input: temporalio.client.StartWorkflowUpdateWithStartInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        start = input.start_workflow_input
        return await self._root.client_call(
            f"StartUpdateWithStartWorkflow:{start.workflow}",
            {WORKFLOW_ID: start.id, WORKFLOW_TYPE: start.workflow},
            (start, input.update_workflow_input),
            lambda: super(_ClientOutbound, self).start_update_with_start_workflow(input),
        )


class _InProcess:
    """A synchronous activity run in a process pool, under the context it was sent with.

    Picklable (a top-level class holding the function and the propagator's
    fields), so the child process re-creates the parent from the fields."""

    __slots__ = ("carrier", "fn")

    def __init__(self, fn: Callable[..., Any], carrier: _Carrier) -> None:
        self.fn = fn
        self.carrier = carrier

    def __call__(self, *args: Any) -> Any:
        token = context_api.attach(propagate.extract(self.carrier))
        try:
            return self.fn(*args)
        finally:
            context_api.detach(token)

    def __getstate__(self) -> tuple[Callable[..., Any], _Carrier]:
        return self.fn, self.carrier

    def __setstate__(self, state: tuple[Callable[..., Any], _Carrier]) -> None:
        self.fn, self.carrier = state


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    def __init__(
        self, next: temporalio.worker.ActivityInboundInterceptor, root: TracingInterceptor
    ) -> None:
        super().__init__(next)
        self._root = root

    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        inst = _binding.get()
        if not inst.enabled:
            return await super().execute_activity(input)
        try:
            info = temporalio.activity.info()
            parent = self._root.extract(input.headers)
            attributes: dict[str, AttributeValue] = {
                ACTIVITY_ID: info.activity_id,
                ACTIVITY_TYPE: info.activity_type,
                ACTIVITY_ATTEMPT: info.attempt,
                TASK_QUEUE: info.task_queue,
            }
            if info.workflow_id:
                attributes[WORKFLOW_ID] = info.workflow_id
            if info.workflow_run_id:
                attributes[WORKFLOW_RUN_ID] = info.workflow_run_id
            if info.workflow_type:
                attributes[WORKFLOW_TYPE] = info.workflow_type
            if info.is_local:
                attributes[ACTIVITY_LOCAL] = True
            span = inst.tracer.start_span(
                f"RunActivity:{info.activity_type}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes=attributes,
            )
            current = trace.set_span_in_context(span, parent)
        except Exception as exc:
            report_failure("temporal", "activity span", exc)
            return await super().execute_activity(input)
        executor = input.executor
        if executor is not None and not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            # another process: the context goes with the function (threads copy it themselves)
            try:
                carrier: _Carrier = {}
                inject_span(carrier, span, current)
                input.fn = _InProcess(input.fn, carrier)
            except Exception as exc:
                report_failure("temporal", "process pool context", exc)
        token = context_api.attach(current)
        try:
            return await super().execute_activity(input)
        except BaseException as exc:
            if not _benign(exc):
                _fail(span, exc)
            raise
        finally:
            context_api.detach(token)
            span.end()


# -- workflows: outside the sandbox ----------------------------------------------------------


def _derived(run_id: str, what: str, size: int) -> int:
    digest = hashlib.blake2b(f"{run_id}/{what}".encode(), digest_size=size).digest()
    return int.from_bytes(digest, "big") or 1


class _WorkflowSpans:
    """The extern the workflow interceptor calls: makes the spans, outside the sandbox.

    Every method is guarded: a failure is reported once and the workflow goes on
    as without tracing. Nothing here changes what the workflow commands."""

    def __init__(self, root: TracingInterceptor) -> None:
        self.root = root

    def __call__(self, operation: str, *args: Any) -> Any:
        inst = _binding.get()
        if not inst.enabled:
            return None
        try:
            return getattr(self, operation)(inst, *args)
        except Exception as exc:
            report_failure("temporal", f"workflow {operation}", exc)
            return None

    def _context(self, carrier: _Carrier | None) -> context_api.Context:
        return propagate.extract(carrier) if carrier else context_api.Context()

    def _links(self, headers: _Headers | None) -> list[Link]:
        context = self.root.extract(headers)
        if context is None:
            return []
        linked = trace.get_current_span(context).get_span_context()
        return [Link(linked)] if linked.is_valid else []

    def begin(
        self,
        inst: _Instruments,
        headers: _Headers,
        run_id: str,
        attributes: dict[str, AttributeValue],
        name: str,
        time_ns: int,
        replaying: bool,
    ) -> _Carrier | None:
        """The run's context (its ``RunWorkflow`` span, derived from the run id) as
        fields; the span is exported when this code is not replayed."""
        parent = self.root.extract(headers) or context_api.Context()
        span = start_span_with_id(
            inst.tracer,
            name,
            _derived(run_id, "run", 8),
            trace_id=_derived(run_id, "trace", 16),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=time_ns,
        )
        if not replaying:
            span.end(end_time=time_ns)
        carrier: _Carrier = {}
        inject_span(carrier, span, parent)
        return carrier

    def child(
        self,
        inst: _Instruments,
        carrier: _Carrier | None,
        name: str,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        time_ns: int,
        replaying: bool,
    ) -> temporalio.api.common.v1.Payload | None:
        """A span under the run for an outgoing command; the header value to send with it."""
        if replaying or carrier is None:
            return None
        context = self._context(carrier)
        span = inst.tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=time_ns
        )
        span.end(end_time=time_ns)
        out: _Carrier = {}
        inject_span(out, span, context)
        return self.root.payload(out) if out else None

    def handler(
        self,
        inst: _Instruments,
        carrier: _Carrier | None,
        headers: _Headers | None,
        name: str,
        attributes: dict[str, AttributeValue],
        time_ns: int,
        replaying: bool,
    ) -> None:
        """A span under the run for a signal or update it handles, linked to the sender."""
        if replaying or carrier is None:
            return
        span = inst.tracer.start_span(
            name,
            context=self._context(carrier),
            kind=SpanKind.SERVER,
            attributes=attributes,
            links=self._links(headers),
            start_time=time_ns,
        )
        span.end(end_time=time_ns)

    def query(
        self,
        inst: _Instruments,
        carrier: _Carrier | None,
        headers: _Headers | None,
        name: str,
        attributes: dict[str, AttributeValue],
        time_ns: int,
    ) -> None:
        """A query is no part of the history: a span under the asking client's, linked
        to the run, each time one is answered."""
        parent = self.root.extract(headers)
        if parent is None:
            return
        links = []
        if carrier:
            run = trace.get_current_span(self._context(carrier)).get_span_context()
            if run.is_valid:
                links.append(Link(run))
        span = inst.tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            links=links,
            start_time=time_ns,
        )
        span.end(end_time=time_ns)

    def complete(
        self,
        inst: _Instruments,
        carrier: _Carrier | None,
        name: str,
        attributes: dict[str, AttributeValue],
        time_ns: int,
        replaying: bool,
        failure: BaseException | None,
    ) -> None:
        """The run's outcome: Error with ``error.type`` when the workflow failed."""
        if replaying or carrier is None:
            return
        span = inst.tracer.start_span(
            name,
            context=self._context(carrier),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=time_ns,
        )
        if failure is not None:
            _fail(span, failure)
        span.end(end_time=time_ns)

    def payload(self, inst: _Instruments, carrier: _Carrier | None) -> Any:
        """The header value carrying the run's context (for continue-as-new)."""
        return self.root.payload(carrier) if carrier else None


# -- workflows: inside the sandbox -----------------------------------------------------------
#
# What follows runs in workflow code: deterministic (history values and workflow time only),
# and guarded, so a tracing failure never fails a workflow task.


def _call(operation: str, *args: Any) -> Any:
    try:
        spans = temporalio.workflow.extern_functions().get(_EXTERN)
        if spans is None:
            return None
        return spans(operation, *args)
    except Exception:
        return None


def _replaying() -> bool:
    return temporalio.workflow.unsafe.is_replaying()


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    def __init__(self, next: temporalio.worker.WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        # the same interceptor twice in one chain traces once
        self._active = not isinstance(next, _WorkflowInbound)
        self.carrier: _Carrier | None = None
        self.run_attributes: dict[str, AttributeValue] = {}
        self._begun = False

    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound, self) if self._active else outbound)

    def _begin(self) -> None:
        """The run's span and context, once per workflow instance: at its start, or at a
        signal or update delivered in the same first activation, before the run."""
        if self._begun:
            return
        self._begun = True
        info = temporalio.workflow.info()
        self.run_attributes = {
            WORKFLOW_ID: info.workflow_id,
            WORKFLOW_RUN_ID: info.run_id,
            WORKFLOW_TYPE: info.workflow_type,
            TASK_QUEUE: info.task_queue,
            NAMESPACE: info.namespace,
        }
        self.carrier = _call(
            "begin",
            info.headers,
            info.run_id,
            self.run_attributes,
            f"RunWorkflow:{info.workflow_type}",
            temporalio.workflow.time_ns(),
            _replaying(),
        )

    def _complete(self, failure: BaseException | None, **extra: AttributeValue) -> None:
        info = temporalio.workflow.info()
        _call(
            "complete",
            self.carrier,
            f"CompleteWorkflow:{info.workflow_type}",
            {**self.run_attributes, **extra},
            temporalio.workflow.time_ns(),
            _replaying(),
            failure,
        )

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        if not self._active:
            return await super().execute_workflow(input)
        self._begin()
        try:
            result = await super().execute_workflow(input)
        except temporalio.exceptions.FailureError as exc:
            # a failure error fails the workflow; any other exception fails the task only
            self._complete(exc)
            raise
        except temporalio.workflow.ContinueAsNewError:
            self._complete(None, **{"temporal.workflow.continued_as_new": True})
            raise
        self._complete(None)
        return result

    def _handled(self, name: str, headers: _Headers) -> None:
        if self._active:
            self._begin()
            _call(
                "handler",
                self.carrier,
                headers,
                name,
                self.run_attributes,
                temporalio.workflow.time_ns(),
                _replaying(),
            )

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        self._handled(f"HandleSignal:{input.signal}", input.headers)
        await super().handle_signal(input)

    async def handle_query(self, input: temporalio.worker.HandleQueryInput) -> Any:
        if self._active:
            _call(
                "query",
                self.carrier,
                input.headers,
                f"HandleQuery:{input.query}",
                self.run_attributes,
                temporalio.workflow.time_ns(),
            )
        return await super().handle_query(input)

    def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
        self._handled(f"ValidateUpdate:{input.update}", input.headers)
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        self._handled(f"HandleUpdate:{input.update}", input.headers)
        return await super().handle_update_handler(input)


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    def __init__(
        self, next: temporalio.worker.WorkflowOutboundInterceptor, root: _WorkflowInbound
    ) -> None:
        super().__init__(next)
        self._root = root

    def _send(
        self,
        input: Any,
        name: str,
        kind: SpanKind,
        extra: dict[str, AttributeValue] | None = None,
    ) -> None:
        payload = _call(
            "child",
            self._root.carrier,
            name,
            kind,
            {**self._root.run_attributes, **(extra or {})},
            temporalio.workflow.time_ns(),
            _replaying(),
        )
        if payload is not None:
            input.headers = {**input.headers, HEADER_KEY: payload}

    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        self._send(
            input,
            f"StartActivity:{input.activity}",
            SpanKind.CLIENT,
            {ACTIVITY_TYPE: input.activity},
        )
        return super().start_activity(input)

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        self._send(
            input,
            f"StartActivity:{input.activity}",
            SpanKind.CLIENT,
            {ACTIVITY_TYPE: input.activity, ACTIVITY_LOCAL: True},
        )
        return super().start_local_activity(input)

    async def start_child_workflow(
        self, input: temporalio.worker.StartChildWorkflowInput
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        self._send(input, f"StartChildWorkflow:{input.workflow}", SpanKind.CLIENT)
        return await super().start_child_workflow(input)

    async def signal_child_workflow(
        self, input: temporalio.worker.SignalChildWorkflowInput
    ) -> None:
        self._send(input, f"SignalChildWorkflow:{input.signal}", SpanKind.CLIENT)
        await super().signal_child_workflow(input)

    async def signal_external_workflow(
        self, input: temporalio.worker.SignalExternalWorkflowInput
    ) -> None:
        self._send(input, f"SignalExternalWorkflow:{input.signal}", SpanKind.CLIENT)
        await super().signal_external_workflow(input)

    def continue_as_new(self, input: temporalio.worker.ContinueAsNewInput) -> NoReturn:
        # the next run's RunWorkflow is a child of this one's
        payload = _call("payload", self._root.carrier)
        if payload is not None:
            input.headers = {**input.headers, HEADER_KEY: payload}
        super().continue_as_new(input)
