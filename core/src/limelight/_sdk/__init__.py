"""The one room where limelight touches private names of other libraries.

Everything else in limelight (and every plugin) uses public APIs only;
``core/tests/test_private_names.py`` fails when a module outside this package
imports or reaches a private name of opentelemetry, prometheus_client or
pluggy. Each assumption below is checked when this package is imported; when
one does not hold (a release changed it), the code that relies on it uses the
library's public behaviour instead, and a warning says so once
(:func:`fallback`; the active fallbacks are in :data:`FALLBACKS`).
``core/tests/test_sdk.py`` pins every assumption, each test naming it.

OpenTelemetry API and SDK (:mod:`.spans`, :mod:`.context`, :mod:`.providers`, :mod:`.resources`,
:mod:`.tracestate`)
    ``span-fields``
        The SDK ``ReadableSpan`` keeps its data in ``_name``, ``_context``,
        ``_kind``, ``_parent``, ``_start_time``, ``_end_time``, ``_attributes``,
        ``_events``, ``_links``, ``_status``, ``_resource``,
        ``_instrumentation_scope`` and ``_instrumentation_info``, and its
        properties read them; the SDK ``Span.__new__`` only refuses the bare
        class. limelight's lean :class:`~limelight._sdk.spans.Span` writes those
        fields without the SDK constructor, which spends about 15 µs a span on
        locks, re-validation and a copy at ``end()``. Fallback: the SDK's own
        tracer and spans.
    ``span-context-tuple``
        ``SpanContext`` is a tuple ``(trace_id, span_id, is_remote,
        trace_flags, trace_state, is_valid)``: built with ``tuple.__new__``
        (the ids are valid by construction; the constructor re-checks them)
        and read by position, not through six properties, on every span.
        Fallback: the constructor and the properties.
    ``on-ending``
        ``SpanProcessor._on_ending(span)`` is the SDK's hook called while a
        span ends, before ``on_end``; the lean span calls it on processors that
        override it, as the SDK span does. Fallback: it is not called.
    ``agnostic-context-manager``
        ``opentelemetry.util._decorator._agnosticcontextmanager`` makes
        ``start_as_current_span`` usable as a decorator of async functions, as
        the SDK's is. Fallback: ``contextlib.contextmanager`` (sync functions).
    ``runtime-context``
        With the default runtime context, the current context is the
        ``ContextVar`` ``opentelemetry.context._RUNTIME_CONTEXT._current_context``;
        reading it directly costs one C call instead of three Python calls.
        Fallback: ``opentelemetry.context.get_current``.
    ``context-keys``
        The current span and the baggage are stored in a ``Context`` under one
        key each (found through the public ``trace.set_span_in_context`` and
        ``baggage.set_baggage``, not imported), so ``context.get(key)`` is what
        ``trace.get_current_span(context)`` and ``baggage.get_all(context)``
        read. Fallback: those public functions.
    ``suppress-keys``
        ``opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY`` and
        ``_SUPPRESS_HTTP_INSTRUMENTATION_KEY`` are the context keys
        OpenTelemetry instrumentations honour to stay silent (an exporter's own
        HTTP calls). Fallback: keys of limelight's own, so limelight's exporters
        and surfaces still agree with each other.
    ``meter-provider-proxy``
        ``opentelemetry.metrics._internal._ProxyMeterProvider`` is the type of
        the global meter provider until one is set. Fallback: only an SDK
        ``MeterProvider`` counts as set.
    ``provider-globals``
        The API keeps the global providers in
        ``opentelemetry.trace._TRACER_PROVIDER`` /
        ``_TRACER_PROVIDER_SET_ONCE`` and
        ``opentelemetry.metrics._internal._METER_PROVIDER`` /
        ``_METER_PROVIDER_SET_ONCE`` / ``_PROXY_METER_PROVIDER`` (whose
        ``_real_meter_provider`` meters handed out earlier follow), guarded by
        ``opentelemetry.util._once.Once``. The API sets them once per process;
        :class:`limelight.testing.Harness` saves and restores them so one
        test's telemetry does not leak into the next. Fallback: the harness
        sets them once and cannot give them back.
    ``host-detector``
        ``opentelemetry.sdk.resources._HostResourceDetector`` gives
        ``host.name``, ``host.arch`` and ``host.id`` as the SDK does.
        Fallback: ``host.name`` and ``host.arch`` from the standard library.
    ``trace-state-dict``
        ``TraceState`` keeps its entries in the ``dict`` ``_dict``, which its
        mapping methods and ``to_header`` read. The API's constructor checks
        keys against the older W3C grammar and drops keys the current Level 2
        text admits (``foo@``, ``1foo``, ``t@`` with a 15-character system);
        the propagator builds its ``TraceState`` of pairs it validated itself.
        Fallback: ``TraceState(pairs)`` (those keys are dropped).

OpenTelemetry logs (:mod:`.logs`)
    ``logs-sdk``
        The logs signal is still in development, so its API and SDK live in
        private modules: ``opentelemetry._logs`` (``LogRecord``,
        ``SeverityNumber``), ``opentelemetry.sdk._logs`` (``LoggerProvider``,
        ``LogRecordProcessor``, ``ReadableLogRecord``, ``ReadWriteLogRecord``),
        ``opentelemetry.sdk._logs.export`` (``LogRecordExporter``,
        ``LogRecordExportResult``) and the OTLP exporters'
        ``opentelemetry.exporter.otlp.proto.{http,grpc}._log_exporter``
        (``OTLPLogExporter``). limelight's log pipeline is built of them.
        Fallback: no log pipeline (no log record is exported; trace ids in log
        lines and their counts are unaffected).

prometheus_client (:mod:`.prometheus`)
    ``prometheus-cells``
        A counter or gauge child keeps its value in ``_value`` (``inc``,
        ``get``, ``set``), a histogram child its buckets in ``_buckets`` (one
        value per bound and ``+Inf``, not cumulative, with ``get_exemplar`` and
        ``set_exemplar``, as a counter's ``_value`` has) and its sum in
        ``_sum``. Bound children add straight into those cells (about 0.1 µs
        less per observation), a counter links its exemplar through its cell,
        and the store reads them without building sample objects; an observed
        total (the process's CPU time) is set into a counter's cell. Fallback: the child's
        public ``inc``/``observe`` and the metric's ``collect()``; an observed
        total is followed by ``inc`` of what it grew.
    ``prometheus-created``
        A counter child keeps its creation time, which its ``_created`` sample
        shows, in ``_created``; the runtime metrics set it to the process's
        start, when their counting began. Fallback: the time limelight first
        used the series.
    ``restricted-metric``
        ``Metric._restricted_metric(names)`` is what prometheus_client's own
        registry uses to answer ``?name[]=``; limelight's exposition does the
        same. Fallback: the same restriction from the public ``samples``.
    ``prometheus-fork-reset``
        Outside multiprocess mode a value cell (``MutexValue``) is its
        ``_value``, ``_exemplar`` and ``_lock``, and a metric and its children
        guard their children with ``_lock``. In a child forked from a process
        whose telemetry pushes over OTLP, the store starts counters, histograms
        and additive gauges from 0 by setting those (and fresh locks: a thread
        of the parent may have held one at the fork), so the child pushes its
        own values, not its parent's again. Fallback: a forked child's metrics
        are not pushed.

Import-time environment (:mod:`.imports`)
    Not a private name: ``opentelemetry.propagate`` and
    ``opentelemetry.sdk.trace`` read ``OTEL_PROPAGATORS`` and
    ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` when first imported and raise on a
    value they cannot use; this package imports them first, with those
    values kept out of the environment for the import only.

prometheus_client's package (:mod:`.prometheus_package`)
    Not a private name: ``prometheus_client/__init__.py`` only imports its
    submodules and binds their public names. When this package is imported
    before prometheus_client, the package is put in ``sys.modules`` with the
    submodules the store and the runtime metrics use (not the exposition, with
    ``http.server``, ``wsgiref`` and ``socketserver``, which a process exporting
    over OTLP never needs); the first other name asked of it runs its own
    ``__init__``, once. A layout where a submodule is missing: the package is
    imported as usual.

pluggy
    Nothing private. Plugins are registered through ``PluginManager.register``
    as guarded stand-ins (see :mod:`limelight._plugins`), so pluggy's own
    calling, ordering and historic replay run unchanged.
"""

from __future__ import annotations

import threading

from limelight._log import get_logger

from . import imports as _imports  # noqa: F401  (first: modules reading the environment)
from . import prometheus_package as _prometheus_package  # noqa: F401  (before the store's import)

__all__ = ["ASSUMPTIONS", "FALLBACKS", "fallback"]

_log = get_logger("limelight")

ASSUMPTIONS: tuple[str, ...] = (
    "span-fields",
    "span-context-tuple",
    "on-ending",
    "agnostic-context-manager",
    "runtime-context",
    "context-keys",
    "suppress-keys",
    "meter-provider-proxy",
    "provider-globals",
    "host-detector",
    "trace-state-dict",
    "logs-sdk",
    "prometheus-cells",
    "prometheus-created",
    "restricted-metric",
    "prometheus-fork-reset",
)
"""Every assumption this room makes, by the name its docstring and its test use."""

FALLBACKS: dict[str, str] = {}
"""The assumptions that did not hold in this process, with what is used instead."""

_lock = threading.Lock()


def fallback(assumption: str, instead: str, error: BaseException | str | None = None) -> None:
    """Record that *assumption* does not hold and *instead* is used; logged once.

    :param assumption: one of :data:`ASSUMPTIONS`.
    :param instead: the public behaviour used instead, in a few words.
    :param error: what showed the assumption does not hold.
    """
    if assumption not in ASSUMPTIONS:
        raise ValueError(f"unknown assumption {assumption!r}")
    with _lock:
        if assumption in FALLBACKS:
            return
        FALLBACKS[assumption] = instead
    _log.warning(
        "a library release changed what limelight relies on; using its public behaviour",
        assumption=assumption,
        instead=instead,
        error=repr(error) if isinstance(error, BaseException) else error,
    )
