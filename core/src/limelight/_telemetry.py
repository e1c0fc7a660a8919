"""The runtime: one :class:`Telemetry` per process, its lifecycle, and late binding."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import Attributes

from limelight_hookspecs import Config, Interceptor, SelfMetrics, StoreReader

from ._batch import BoundedBatchSpanProcessor
from ._binding import TelemetryBinding
from ._config import REPORTER, installed_exporters, load_config, resolve_exporters
from ._environ import adopt_environment_context
from ._export import run_bounded
from ._log import get_logger
from ._plugins import PluginError, PluginManager
from ._propagation import install_propagator
from ._resource import build_resource, process_resource
from ._sdk.providers import meter_provider_is_default
from ._spans import TracerProvider
from ._state import STATE
from ._store import MetricStore
from ._tracing import OnStartProcessor, build_sampler, exemplar_filter, span_limits

if TYPE_CHECKING:
    from ._logs import BoundedBatchLogProcessor, LogEmitter
    from ._sdk.logs import LoggerProvider

__all__ = [
    "Telemetry",
    "TelemetryBinding",
    "current",
    "start",
    "stop",
]

_log = get_logger("limelight")

T = TypeVar("T")


# the process-wide state (limelight._state): the active telemetry, and the generation
# counter every start and stop bumps; instrumented code compares it with the
# generation its bindings were built for and rebuilds only then
_RT = STATE


def current() -> Telemetry:
    """The running telemetry, or an inactive one (``enabled`` false) when none runs."""
    active = _RT.active
    if active is not None:
        return active
    with _RT.lock:
        if _RT.default is None:
            _RT.default = Telemetry(config=Config(sdk_disabled=True), entry_points=False)
        return _RT.default


class Telemetry:
    """Tracing and metrics for one process: configure, start, stop.

    :param config: the configuration; by default read from the environment
        (``OTEL_*`` and ``LIMELIGHT_*``) with *overrides* applied.
    :param plugins: plugin objects to register besides the discovered ones.
    :param entry_points: discover plugins through the ``limelight.plugins``
        entry-point group (the core's built-in plugins are registered either way).
    :param install_globals: set the OpenTelemetry global propagator from
        ``OTEL_PROPAGATORS`` and route the global tracer provider (and, for the
        first telemetry of the process, the global meter provider) to this
        telemetry, and make the context its environment carries (``TRACEPARENT``,
        ``TRACESTATE``, ``BAGGAGE``) the current context of the caller.
    :param handle_signals: flush at interpreter exit, and on SIGTERM: with the
        default disposition, flush then terminate as SIGTERM would; with an
        application handler, call it with telemetry still running (the flush
        happens at exit); when SIGTERM is ignored, leave it ignored.
    :param overrides: configuration fields that win over the environment,
        for example ``service_name="checkout"``.

    Most applications call :func:`limelight.start` instead, which creates and
    starts the process-wide instance.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        plugins: Iterable[object] = (),
        entry_points: bool = True,
        install_globals: bool = True,
        handle_signals: bool = True,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> None:
        if config is None:
            config = load_config(environ, **overrides)
        elif overrides:
            config = attrs.evolve(config, **overrides)
        self.config = config
        self._extra_plugins = tuple(plugins)
        self._entry_points = entry_points
        self._install_globals = install_globals
        self._handle_signals = handle_signals
        self._plugins = PluginManager(strict=config.strict)
        self.store = MetricStore(config.metrics_namespace, config.series_limit)
        self.self_metrics: SelfMetrics = self.store  # the store counts its own health
        self._resource: Resource | None = None
        self._tracer_provider: TracerProvider | None = None
        self._meter_provider: MeterProvider | None = None
        self._readers: list[tuple[str, StoreReader]] = []
        self._span_processors: list[BoundedBatchSpanProcessor] = []
        self._log_processors: list[BoundedBatchLogProcessor] = []
        self._logger_provider: LoggerProvider | None = None
        self._log_emitter: LogEmitter | None = None
        self._interceptors: tuple[Interceptor, ...] = ()
        self._started = False
        self._stopped = False
        self._previous: Telemetry | None = None
        self._stop_lock = threading.Lock()

    # -- TelemetryView ------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """True once :meth:`start` has run (it stays true after :meth:`stop`)."""
        return self._started

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` has run (or a strict start failed)."""
        return self._stopped

    @property
    def plugins(self) -> PluginManager:
        """The plugins of this telemetry, in resolved order, with their failures."""
        return self._plugins

    @property
    def readers(self) -> tuple[tuple[str, StoreReader], ...]:
        """The metric store readers that started, each with its plugin's name."""
        return tuple(self._readers)

    @property
    def span_processors(self) -> tuple[BoundedBatchSpanProcessor, ...]:
        """The batch span processors, one per exporter the plugins contributed."""
        return tuple(self._span_processors)

    @property
    def log_processors(self) -> tuple[BoundedBatchLogProcessor, ...]:
        """The batch log record processors, one per exporter the plugins contributed."""
        return tuple(self._log_processors)

    @property
    def logger_provider(self) -> LoggerProvider | None:
        """The SDK logger provider, when some plugin contributed a log record exporter
        or processor (``limelight_logs_provide_*``); ``None`` otherwise."""
        return self._logger_provider

    @property
    def log_emitter(self) -> LogEmitter | None:
        """Where a surface hands log records while telemetry runs; ``None`` when no
        plugin takes them (or telemetry is not running)."""
        return self._log_emitter if self.enabled else None

    @property
    def interceptors(self) -> tuple[Interceptor, ...]:
        """The function-call interceptors, outermost first."""
        return self._interceptors

    @property
    def enabled(self) -> bool:
        """True while started and not disabled by ``OTEL_SDK_DISABLED``."""
        return self._started and not self._stopped and not self.config.sdk_disabled

    @property
    def resource(self) -> Resource:
        """The resource (built on first access)."""
        if self._resource is None:
            self._resource = build_resource(self.config)
        return self._resource

    @property
    def tracer_provider(self) -> TracerProvider:
        """The SDK tracer provider owned by this telemetry."""
        if self._tracer_provider is None:
            raise RuntimeError("the tracer provider exists once telemetry has started")
        return self._tracer_provider

    @property
    def meter_provider(self) -> MeterProvider:
        """The SDK meter provider owned by this telemetry."""
        if self._meter_provider is None:
            raise RuntimeError("the meter provider exists once telemetry has started")
        return self._meter_provider

    def tracer(
        self, name: str, version: str | None = None, attributes: Attributes = None
    ) -> trace.Tracer:
        """A tracer from this telemetry's provider (a no-op tracer when not enabled)."""
        if not self.enabled or self._tracer_provider is None:
            return trace.NoOpTracer()
        return self._tracer_provider.get_tracer(name, version, attributes=attributes)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Telemetry:
        """Load plugins, build providers and readers, start plugins.

        Invalid configuration is reported once and replaced by its fallback; a
        plugin that fails is reported by name and the rest keep working, unless
        ``LIMELIGHT_STRICT`` is set, when :class:`PluginError` is raised.
        """
        if self._started:
            return self
        self._plugins.load(self.config, entry_points=self._entry_points, extra=self._extra_plugins)
        # exporter names can be checked only now that the plugins are known
        self.config = config = resolve_exporters(
            self.config, installed_exporters(self._plugins.infos())
        )
        for problem in config.problems:
            REPORTER(problem)
        try:
            self._plugins.lifecycle_configure(config)
            if not config.sdk_disabled:
                self._build()
                self._started = True
                self._plugins.lifecycle_start(self)
        except PluginError:
            # strict mode: undo what started, leave nothing running
            self._abort()
            raise
        self._started = True
        if not config.sdk_disabled:
            if self._install_globals:
                _install_globals(self)
                adopt_environment_context(config)
            if self._handle_signals:
                _install_exit_handlers()
        with _RT.lock:
            if _RT.active is not self:
                self._previous = _RT.active
            _RT.active = self
            _RT.generation += 1
        return self

    def _build(self) -> None:
        config = self.config
        for plugin, decl in self._plugins.metrics_declare(config):
            try:
                self.store.declare(decl, declarer=plugin)
            except Exception as exc:  # a conflict, or a declaration prometheus_client refuses
                self._plugins.record_failure(plugin, "hook limelight_metrics_declare", exc)

        sampler = self._plugins.spans_provide_sampler(self) or build_sampler(config)
        provider = TracerProvider(
            sampler=sampler, resource=self.resource, span_limits=span_limits(config.environ)
        )
        self._tracer_provider = provider
        if self._plugins.has_impls("limelight_spans_enrich"):
            provider.add_span_processor(OnStartProcessor(self._plugins.spans_enrich_callers()))
        for plugin, exporter in self._plugins.spans_provide_exporters(self):
            processor = BoundedBatchSpanProcessor(exporter, plugin, config.batch, self.self_metrics)
            self._span_processors.append(processor)
            provider.add_span_processor(processor)
        for _plugin, span_processor in self._plugins.spans_provide_processors(self):
            provider.add_span_processor(span_processor)
        self._build_logs()

        otel_readers = [r for _p, r in self._plugins.metrics_provide_otel_readers(self)]
        self._meter_provider = MeterProvider(
            metric_readers=otel_readers,
            resource=self.resource,
            exemplar_filter=exemplar_filter(config.environ),
            shutdown_on_exit=False,
        )

        self._interceptors = tuple(
            sorted(
                (i for _p, i in self._plugins.interceptors_provide(self)),
                key=lambda i: (i.order, i.name),
            )
        )
        for plugin, reader in self._plugins.metrics_provide_readers(self):
            try:
                reader.start()
            except Exception as exc:
                self._plugins.record_failure(plugin, "metric reader start", exc)
                continue
            self._readers.append((plugin, reader))

    def _build_logs(self) -> None:
        """The log pipeline, when some plugin contributes an exporter or a processor."""
        exporters = self._plugins.logs_provide_exporters(self)
        processors = self._plugins.logs_provide_processors(self)
        if not (exporters or processors):
            return
        # imported only now: a service no plugin takes log records from never loads them
        from ._logs import BoundedBatchLogProcessor, LogEmitter
        from ._sdk.logs import AVAILABLE, LoggerProvider

        if not AVAILABLE:
            _log.warning(
                "log records are not exported: this OpenTelemetry SDK release has no "
                "logs signal limelight can use",
                exporters=", ".join(p for p, _e in exporters) or None,
            )
            return
        logger_provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
        for plugin, exporter in exporters:
            processor = BoundedBatchLogProcessor(
                exporter, plugin, self.config.log_batch, self.self_metrics
            )
            self._log_processors.append(processor)
            logger_provider.add_log_record_processor(processor)
        for _plugin, log_processor in processors:
            logger_provider.add_log_record_processor(log_processor)
        self._logger_provider = logger_provider
        self._log_emitter = LogEmitter(logger_provider)

    def _abort(self) -> None:
        """Undo a start that failed half-way (``LIMELIGHT_STRICT``): stop the plugins
        that started, close processors, readers and providers within the shutdown
        timeout; failures along the way are reported, never raised."""
        self._stopped = True
        deadline = time.monotonic() + self.config.shutdown_timeout

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        started = list(self._plugins.started)
        if started:

            def stop_started() -> None:
                with contextlib.suppress(PluginError):  # recorded when it happened
                    self._plugins.lifecycle_stop(self, remaining(), only=started)

            run_bounded(stop_started, remaining(), "plugins")
        self._shutdown(remaining, flush=False)

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything recorded so far; true when every exporter finished in time."""
        if not self.enabled:
            return True
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        ok = True
        for processor in self._span_processors:
            ok = processor.flush(max(0.0, deadline - time.monotonic())) and ok
        for log_processor in self._log_processors:
            ok = log_processor.flush(max(0.0, deadline - time.monotonic())) and ok
        for plugin, reader in self._readers:
            try:
                ok = bool(reader.force_flush(max(0.0, deadline - time.monotonic()))) and ok
            except Exception as exc:
                ok = False
                self._plugins.record_failure(plugin, "metric reader flush", exc)
        return ok

    def stop(self, timeout: float | None = None) -> bool:
        """Flush and shut everything down within *timeout* seconds.

        Order: ``limelight_lifecycle_stop`` hooks (reverse priority), then span processors
        (every queued span is exported), then log record processors, then metric readers
        (a final push),
        then the providers. Returns true when everything finished in time.
        Idempotent; also run at interpreter exit and on SIGTERM.
        """
        with self._stop_lock:
            if self._stopped or not self._started:
                self._stopped = True
                return True
            self._stopped = True
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        with _RT.lock:
            if _RT.active is self:
                previous = self._previous
                _RT.active = previous if previous is not None and previous.enabled else None
            _RT.generation += 1
        if self.config.sdk_disabled:
            return True

        ok = run_bounded(
            lambda: self._plugins.lifecycle_stop(self, remaining()), remaining(), "plugins"
        )
        return self._shutdown(remaining, flush=True) and ok

    def _shutdown(self, remaining: Callable[[], float], flush: bool) -> bool:
        """Close span processors, readers (after a final push when *flush*) and the
        providers, each step bounded by *remaining* seconds."""
        ok = True
        for processor in self._span_processors:
            ok = processor.close(remaining()) and ok
        # after the spans: what their shutdown logged is exported too
        for log_processor in self._log_processors:
            ok = log_processor.close(remaining()) and ok
        if self._logger_provider is not None:
            logger_provider = self._logger_provider
            ok = run_bounded(logger_provider.shutdown, remaining(), "logger-provider") and ok
        for plugin, reader in self._readers:

            def finish(reader: StoreReader = reader) -> None:
                if flush:
                    reader.force_flush(remaining())
                reader.shutdown(remaining())

            ok = run_bounded(finish, remaining(), f"reader-{plugin}") and ok
        if self._tracer_provider is not None:
            provider = self._tracer_provider
            ok = run_bounded(provider.shutdown, remaining(), "tracer-provider") and ok
        if self._meter_provider is not None:
            meter_provider = self._meter_provider
            ok = (
                run_bounded(
                    lambda: meter_provider.shutdown(timeout_millis=remaining() * 1000),
                    remaining(),
                    "meter-provider",
                )
                and ok
            )
        return ok

    def _after_fork_in_child(self) -> None:
        """Make the store this forked child's own and restart the readers that push it
        (``after_fork(resource)``, see :class:`~limelight_hookspecs.StoreReader`)."""
        if not self.store.after_fork():
            return  # the values are still the parent's: pushing them would count them twice
        resource = process_resource(self.resource)
        for plugin, reader in self._readers:
            after_fork = getattr(reader, "after_fork", None)
            if after_fork is None:
                continue
            try:
                after_fork(resource)
            except Exception as exc:
                self._plugins.record_failure(plugin, "metric reader after fork", exc)

    def __enter__(self) -> Telemetry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- process-wide instance ----------------------------------------------------------------


def start(
    config: Config | None = None, *, plugins: Iterable[object] = (), **overrides: Any
) -> Telemetry:
    """Start the process-wide telemetry (idempotent) and return it.

    :param config: configuration; by default from the environment.
    :param plugins: extra plugin objects to register.
    :param overrides: configuration fields, for example ``service_name="shop"``.
    """
    with _RT.lock:
        active = _RT.active
        if active is not None and active.enabled:
            return active
        telemetry = Telemetry(config, plugins=plugins, **overrides)
        return telemetry.start()


def stop(timeout: float | None = None) -> bool:
    """Stop the process-wide telemetry, flushing within *timeout* seconds."""
    active = _RT.active
    if active is None:
        return True
    return active.stop(timeout)


# -- globals, exit and signals ----------------------------------------------------------------


class _GlobalTracer(trace.Tracer):
    """Forwards to the running telemetry's tracer (re-resolved after restarts)."""

    def __init__(
        self, name: str, version: str | None, schema_url: str | None, attributes: Attributes
    ) -> None:
        self._binding: TelemetryBinding[trace.Tracer] = TelemetryBinding(
            lambda t: t.tracer(name, version, attributes)
        )

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._binding.get().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._binding.get().start_as_current_span(*args, **kwargs)


class _GlobalTracerProvider(trace.TracerProvider):
    """The OpenTelemetry global tracer provider: always the running telemetry's."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return _GlobalTracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )


def _install_globals(telemetry: Telemetry) -> None:
    install_propagator(telemetry.config.propagators)
    with _RT.lock:
        if _RT.globals_installed:
            return
        _RT.globals_installed = True
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(_GlobalTracerProvider())
    else:
        _log.info("a global tracer provider was already set; limelight surfaces use their own")
    if meter_provider_is_default():
        otel_metrics.set_meter_provider(telemetry.meter_provider)


def _after_fork_in_child() -> None:
    """In a forked child of a process whose telemetry runs: the store's values
    become the child's own and the readers that can push them as the child's
    restart (the parent's threads did not come with the fork)."""
    active = _RT.active
    if active is None or not active.enabled:
        return
    try:
        active._after_fork_in_child()
    except Exception as exc:  # never break the application's fork
        _log.warning("metrics not restarted after fork", error=repr(exc))


os.register_at_fork(after_in_child=_after_fork_in_child)


def _stop_active(reason: str) -> None:
    active = _RT.active
    if active is None or active.stopped:
        return
    if active.resource.attributes.get("process.pid") not in (None, os.getpid()):
        # a forked child (a worker, a multiprocessing child) with its parent's telemetry:
        # the plugins' threads and servers are the parent's, so a stop would only wait on
        # them until the timeout; what this process recorded is flushed, nothing stopped
        _log.debug("flushing telemetry inherited through fork", reason=reason)
        active.force_flush()
        return
    _log.debug("stopping telemetry", reason=reason)
    active.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    previous = _RT.previous_sigterm
    if callable(previous):
        # the application's own handler decides (it may drain requests, which still
        # record spans and metrics); the exit-time stop flushes when the process exits
        previous(signum, frame)
        return
    # default disposition: flush, then die from SIGTERM as if we had never been here
    _stop_active("SIGTERM")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_exit_handlers() -> None:
    with _RT.lock:
        if _RT.exit_handlers_installed:
            return
        _RT.exit_handlers_installed = True
    atexit.register(_stop_active, "exit")
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):  # pragma: no cover - exotic platforms
        return
    if previous == signal.SIG_IGN:
        return
    _RT.previous_sigterm = previous if callable(previous) else None
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # pragma: no cover
        _log.debug("could not install the SIGTERM handler")
