"""Instruments shared by every key-value client: bound metric children per operation.

Everything here is built once per telemetry start (through
:class:`limelight.surface.TelemetryBinding`) and per operation name on first use;
the hot path is a dictionary lookup and four bound calls.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from limelight import Telemetry
from limelight.metrics import MetricStore
from limelight.semconv import DB_OPERATION_NAME, DB_RESPONSE_STATUS_CODE, ERROR_TYPE
from limelight.surface import TelemetryBinding, error_type
from limelight.surface import report_failure as _report_failure

from ._plugin import KV_OP_DURATION, KV_OPS, LIMELIGHT_KV_SPANS

__all__ = [
    "MAX_OPS",
    "OTHER_OP",
    "Bound",
    "Namespace",
    "Op",
    "client_binding",
    "op_label",
    "report_failure",
]

perf_counter = time.perf_counter

MAX_OPS = 256
"""Distinct ``op`` label values per namespace; further commands are counted as ``other``."""
_MAX_CACHED_OPS = 4 * MAX_OPS
"""Command names (str or bytes, any case) whose :class:`Op` a namespace keeps."""
OTHER_OP = "other"
"""The ``op`` label of commands past :data:`MAX_OPS` or with an unusable name."""

_OP_RE = re.compile(r"[a-z][a-z0-9_.|:-]{0,39}( [a-z][a-z0-9_.-]{0,39})?")
_RENAMED = {"del": "delete"}

# How a reply tells that a read found nothing (redis-py's parsed replies).
NEVER = 0
IF_NONE = 1
IF_EMPTY = 2
IF_ALL_NONE = 3

_READS: dict[str, int] = {
    **dict.fromkeys(
        (
            "GET",
            "GETDEL",
            "GETEX",
            "HGET",
            "LINDEX",
            "LPOP",
            "RPOP",
            "LPOS",
            "SPOP",
            "SRANDMEMBER",
            "HRANDFIELD",
            "ZSCORE",
            "ZRANK",
            "ZREVRANK",
            "BLPOP",
            "BRPOP",
            "BZPOPMIN",
            "BZPOPMAX",
            "RPOPLPUSH",
            "BRPOPLPUSH",
            "LMOVE",
            "BLMOVE",
            "DUMP",
            "JSON.GET",
        ),
        IF_NONE,
    ),
    **dict.fromkeys(
        ("EXISTS", "HEXISTS", "SISMEMBER", "HGETALL", "SMEMBERS", "HKEYS", "HVALS"), IF_EMPTY
    ),
    "MGET": IF_ALL_NONE,
    "HMGET": IF_ALL_NONE,
}


def _all_none(value: Any) -> bool:
    try:
        return all(v is None for v in value)
    except TypeError:
        return False


def op_label(command: str) -> str:
    """The ``op`` label of a command name: lowercased, ``del`` as ``delete``.

    Names that do not look like a command (anything but letters, digits and
    ``_.|:-``, at most two words) become ``other``, so a caller passing data as
    a command name cannot create unbounded series.
    """
    label = command.strip().lower()
    label = _RENAMED.get(label, label)
    return label if _OP_RE.fullmatch(label) else OTHER_OP


def report_failure(where: str, exc: BaseException) -> None:
    """Log, once per place, that recording failed; the operation itself is unaffected."""
    _report_failure("kv", where, exc)


class Op:
    """One operation of one namespace: its bound counters and histograms.

    :param name: the operation as the application issued it (``GET``), used
        as ``db.operation.name`` and span name.
    :param label: the ``op`` label (``get``).
    """

    __slots__ = (
        "_duration",
        "_err",
        "_err_time",
        "_namespace",
        "_nf",
        "_nf_time",
        "_ok",
        "_ok_time",
        "_ops",
        "label",
        "missing",
        "name",
    )

    def __init__(
        self, store: MetricStore, namespace: str, name: str, label: str, missing: int
    ) -> None:
        ops = self._ops = store.get(KV_OPS.name)
        duration = self._duration = store.get(KV_OP_DURATION.name)
        self._namespace = namespace
        self.name = name
        self.label = label
        self.missing = missing
        self._ok = ops.labels(namespace, label, "ok").inc
        self._ok_time = duration.labels(namespace, label, "ok").observe
        self._err = ops.labels(namespace, label, "error").inc
        self._err_time = duration.labels(namespace, label, "error").observe
        # a write never finds nothing: its not_found series is created on first use only
        self._nf: Callable[[], None] | None = None
        self._nf_time: Callable[[float], None] | None = None
        if missing != NEVER:
            self._bind_not_found()

    def _bind_not_found(self) -> tuple[Callable[[], None], Callable[[float], None]]:
        ns, label = self._namespace, self.label
        self._nf = nf = self._ops.labels(ns, label, "not_found").inc
        self._nf_time = nf_time = self._duration.labels(ns, label, "not_found").observe
        return nf, nf_time

    def ok(self, elapsed: float) -> None:
        """Record a successful operation."""
        self._ok()
        self._ok_time(elapsed)

    def not_found(self, elapsed: float) -> None:
        """Record a read that found nothing."""
        nf, nf_time = self._nf, self._nf_time
        if nf is None or nf_time is None:
            nf, nf_time = self._bind_not_found()
        nf()
        nf_time(elapsed)

    def error(self, elapsed: float) -> None:
        """Record a failed operation."""
        self._err()
        self._err_time(elapsed)

    def reply(self, value: Any, elapsed: float) -> None:
        """Record a completed operation, ``not_found`` when *value* says the read found nothing."""
        missing = self.missing
        if missing == NEVER or (value is not None if missing == IF_NONE else self._found(value)):
            self._ok()
            self._ok_time(elapsed)
        else:
            self.not_found(elapsed)

    def _found(self, value: Any) -> bool:
        """Whether *value* found something, by the ``IF_EMPTY`` or ``IF_ALL_NONE`` rule."""
        return not _all_none(value) if self.missing == IF_ALL_NONE else bool(value)


class Namespace:
    """The instruments of one namespace for one telemetry start.

    ``active`` is false when telemetry is not running (or disabled) or the kv
    plugin is not loaded: instrumented clients then pass every call through.
    """

    __slots__ = ("_labels", "_lock", "_store", "active", "name", "ops", "spans", "tracer")

    def __init__(self, name: str, telemetry: Telemetry) -> None:
        self.name = name
        self.ops: dict[object, Op] = {}
        self._labels: set[str] = set()
        self._lock = threading.Lock()
        store = telemetry.store
        self._store = store
        self.active = telemetry.enabled and KV_OPS.name in store and KV_OP_DURATION.name in store
        self.spans = bool(self.active and telemetry.config.get(LIMELIGHT_KV_SPANS))
        self.tracer: trace.Tracer = telemetry.tracer("limelight_kv")

    def op(self, command: object, missing: int | None = None) -> Op:
        """The :class:`Op` of *command* (a command name or a store method name)."""
        found = self.ops.get(command)
        if found is not None:
            return found
        return self._new_op(command, missing)

    def _new_op(self, command: object, missing: int | None) -> Op:
        if isinstance(command, bytes | bytearray | memoryview):
            name = bytes(command).decode("latin-1")
        else:
            name = str(command)
        with self._lock:
            found = self.ops.get(command)
            if found is not None:
                return found
            label = op_label(name)
            if label == OTHER_OP:
                # a name that is not a command may carry data: keep it out of spans too
                name = OTHER_OP
            if label not in self._labels:
                if len(self._labels) >= MAX_OPS:
                    label = OTHER_OP
                else:
                    self._labels.add(label)
            if missing is None:
                missing = _READS.get(name.upper(), NEVER)
            op = Op(self._store, self.name, name, label, missing)
            # names made of data would grow the cache without end: past the limit an
            # op is built per call (its metric children still come from the store)
            if len(self.ops) < _MAX_CACHED_OPS:
                self.ops[command] = op
            return op


_NAMESPACES: dict[str, TelemetryBinding[Namespace]] = {}
_NAMESPACES_LOCK = threading.Lock()


def namespace_binding(name: str) -> TelemetryBinding[Namespace]:
    """The process-wide binding of namespace *name* (shared by every client using it)."""
    binding = _NAMESPACES.get(name)
    if binding is None:
        with _NAMESPACES_LOCK:
            binding = _NAMESPACES.get(name)
            if binding is None:
                binding = TelemetryBinding(lambda t: Namespace(name, t))
                _NAMESPACES[name] = binding
    return binding


class Bound:
    """What one instrumented client uses for one telemetry start.

    :param ns: the namespace instruments, ``None`` when nothing is recorded.
    :param tracer: set when this client creates spans.
    :param attributes: span attributes common to every operation of the client.
    """

    __slots__ = ("_span_attributes", "attributes", "ns", "status_code", "tracer")

    def __init__(
        self,
        ns: Namespace | None,
        tracer: trace.Tracer | None,
        attributes: Mapping[str, AttributeValue],
        status_code: Callable[[BaseException], str | None],
    ) -> None:
        self.ns = ns
        self.tracer = tracer
        self.attributes = dict(attributes)
        self.status_code = status_code
        self._span_attributes: dict[str, dict[str, AttributeValue]] = {}

    def start_span(
        self, name: str, extra: Mapping[str, AttributeValue] | None = None
    ) -> trace.Span:
        """Start the CLIENT span of one operation (the tracer must be set)."""
        attributes = self._span_attributes.get(name)
        if attributes is None:
            attributes = {**self.attributes, DB_OPERATION_NAME: name}
            if len(self._span_attributes) < MAX_OPS:
                self._span_attributes[name] = attributes
        if extra:
            attributes = {**attributes, **extra}
        assert self.tracer is not None
        return self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    def try_start_span(
        self, name: str, extra: Mapping[str, AttributeValue] | None = None
    ) -> trace.Span | None:
        """:meth:`start_span`, or ``None`` (logged once) when making the span failed."""
        try:
            return self.start_span(name, extra)
        except Exception as exc:
            report_failure("kv span", exc)
            return None

    def end_span(self, span: trace.Span, exc: BaseException | None) -> None:
        """End *span*, marking it failed when *exc* is set (never with the message)."""
        if exc is not None:
            code = self.status_code(exc)
            if code:
                span.set_attribute(DB_RESPONSE_STATUS_CODE, code)
            span.set_attribute(ERROR_TYPE, code or error_type(exc))
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def _no_status_code(exc: BaseException) -> str | None:
    return None


def client_binding(
    namespace: str,
    spans: bool | None,
    attributes: Mapping[str, AttributeValue],
    status_code: Callable[[BaseException], str | None] = _no_status_code,
) -> TelemetryBinding[Bound]:
    """A binding for one client of *namespace*.

    :param spans: ``None`` follows ``LIMELIGHT_KV_SPANS``; true or false wins over it.
    :param attributes: span attributes of the client (``db.system.name``, server, ...).
    :param status_code: the ``db.response.status_code`` of an exception, if any.
    """
    if not isinstance(namespace, str) or not namespace.strip():
        raise ValueError(f"namespace must be a non-empty string, got {namespace!r}")
    shared = namespace_binding(namespace)
    attrs = {**attributes, "limelight.kv.namespace": namespace}

    def build(telemetry: Telemetry) -> Bound:
        try:
            ns = shared.get()
        except Exception as exc:  # never let instrumentation break the client
            report_failure("kv binding", exc)
            return Bound(None, None, attrs, status_code)
        if not ns.active:
            return Bound(None, None, attrs, status_code)
        want_spans = ns.spans if spans is None else spans
        return Bound(ns, ns.tracer if want_spans else None, attrs, status_code)

    return TelemetryBinding(build)
