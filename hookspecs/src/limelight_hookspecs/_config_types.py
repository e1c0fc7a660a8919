"""The effective configuration handed to every plugin."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import attrs

from ._env import ConfigProblem, EnvVar

T = TypeVar("T")

__all__ = ["BatchSettings", "Config", "OtlpSettings"]


def _ignore(problem: ConfigProblem) -> None:
    return None


@attrs.frozen
class OtlpSettings:
    """OTLP exporter settings for one signal (traces, metrics or logs).

    Built from ``OTEL_EXPORTER_OTLP_*`` with the signal-specific
    ``OTEL_EXPORTER_OTLP_TRACES_*`` / ``OTEL_EXPORTER_OTLP_METRICS_*`` /
    ``OTEL_EXPORTER_OTLP_LOGS_*`` variables taking precedence, as the OpenTelemetry
    specification says.

    :param endpoint: the full URL to send to. For ``http/protobuf`` and
        ``http/json`` this already includes the signal path (``/v1/traces``)
        when it came from the generic variable; a signal-specific endpoint is
        used as given.
    :param protocol: ``grpc``, ``http/protobuf`` or ``http/json``.
    :param headers: extra request headers, in order.
    :param insecure: for gRPC, whether to use a plaintext connection; ``None``
        when not configured (decided from the endpoint scheme).
    :param timeout: seconds a single export may take.
    :param compression: ``gzip`` or ``none``.
    :param certificate: path to a trusted CA certificate file, if any.
    :param client_key: path to a client private key (mTLS), if any.
    :param client_certificate: path to a client certificate (mTLS), if any.
    """

    endpoint: str
    protocol: str
    headers: tuple[tuple[str, str], ...] = ()
    insecure: bool | None = None
    timeout: float = 10.0
    compression: str = "none"
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None


@attrs.frozen
class BatchSettings:
    """Batch span processor settings (``OTEL_BSP_*``).

    :param schedule_delay: seconds between two exports (> 0).
    :param max_queue_size: spans kept waiting; past it new spans are dropped
        and counted in ``limelight_spans_dropped_total``.
    :param max_export_batch_size: spans per export call.
    :param export_timeout: seconds one export call may take.
    :param queue_full_wait: seconds a span ending on a full queue may wait for
        the export in progress to make room, while exports succeed
        (``LIMELIGHT_BSP_QUEUE_FULL_WAIT``); ``0`` drops it at once, as the
        OpenTelemetry SDK does.
    """

    schedule_delay: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    export_timeout: float = 30.0
    queue_full_wait: float = 1.0


@attrs.frozen
class Config:
    """What limelight runs with, resolved once from arguments and environment.

    Built by the core (:func:`limelight.load_config`, from arguments and the
    environment; :func:`limelight.start` does it for you) and passed to
    ``limelight_lifecycle_configure``. Plugins read their own variables with
    :meth:`get`, which reports an invalid value once and returns the default.

    :param sdk_disabled: ``OTEL_SDK_DISABLED``: no spans, no metrics, no export.
    :param service_name: ``service.name`` of the resource.
    :param service_version: ``service.version`` of the resource, if known.
    :param resource_attributes: ``OTEL_RESOURCE_ATTRIBUTES`` members.
    :param traces_sampler: one of the specification's sampler names.
    :param traces_sampler_arg: the sampler argument (ratio), if any.
    :param propagators: propagator names, in order.
    :param traces_exporters: exporter names allowed for spans; ``None`` means
        every installed exporter plugin; ``()`` means none.
    :param metrics_exporters: the same for metrics.
    :param logs_exporters: the same for log records (``OTEL_LOGS_EXPORTER``).
    :param otlp_traces: OTLP settings for spans.
    :param otlp_metrics: OTLP settings for metrics.
    :param otlp_logs: OTLP settings for log records.
    :param batch: batch span processor settings.
    :param log_batch: batch log record processor settings (``OTEL_BLRP_*``; the
        schedule delay defaults to 1 s, as the specification's does).
    :param metric_export_interval: seconds between two pushes of the metric
        store by push exporters (``OTEL_METRIC_EXPORT_INTERVAL``; > 0).
    :param metric_export_timeout: seconds one metric push may take.
    :param metrics_namespace: prefix for every metric name (``""`` for none).
    :param series_limit: default maximum label sets per metric.
    :param shutdown_timeout: seconds stop may take in total.
    :param plugins: allow-list of plugin names; ``None`` means every plugin.
    :param disabled_plugins: plugin names never loaded.
    :param strict: when true a plugin that fails is a boot failure.
    :param environ: the environment the configuration was read from.
    :param sources: for each field, where its value came from: an environment
        variable name, ``"argument"`` or ``"default"``.
    :param problems: every invalid value met while building this configuration.
    """

    sdk_disabled: bool = False
    service_name: str = "unknown_service"
    service_version: str | None = None
    resource_attributes: Mapping[str, str] = attrs.field(factory=dict)
    traces_sampler: str = "parentbased_always_on"
    traces_sampler_arg: float | None = None
    propagators: tuple[str, ...] = ("tracecontext", "baggage")
    traces_exporters: tuple[str, ...] | None = None
    metrics_exporters: tuple[str, ...] | None = None
    otlp_traces: OtlpSettings = OtlpSettings(
        endpoint="http://localhost:4318/v1/traces", protocol="http/protobuf"
    )
    otlp_metrics: OtlpSettings = OtlpSettings(
        endpoint="http://localhost:4318/v1/metrics", protocol="http/protobuf"
    )
    logs_exporters: tuple[str, ...] | None = None
    otlp_logs: OtlpSettings = OtlpSettings(
        endpoint="http://localhost:4318/v1/logs", protocol="http/protobuf"
    )
    batch: BatchSettings = BatchSettings()
    log_batch: BatchSettings = BatchSettings(schedule_delay=1.0)
    metric_export_interval: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))
    metric_export_timeout: float = 30.0
    metrics_namespace: str = ""
    series_limit: int = 2000
    shutdown_timeout: float = 10.0
    plugins: tuple[str, ...] | None = None
    disabled_plugins: tuple[str, ...] = ()
    strict: bool = False
    environ: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    sources: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    problems: tuple[ConfigProblem, ...] = ()
    reporter: Callable[[ConfigProblem], None] = attrs.field(default=_ignore, repr=False, eq=False)

    def get(self, var: EnvVar[T]) -> T:
        """Read a plugin's own variable from :attr:`environ`.

        An invalid value is reported once through the core's reporter (naming
        the variable, the value and the fallback) and the default is returned.
        """
        reading = var.read(self.environ)
        if reading.problem is not None:
            self.reporter(reading.problem)
        return reading.value

    def exporter_enabled(self, signal: str, name: str) -> bool:
        """Whether the exporter *name* should export *signal* (``traces``/``metrics``/``logs``).

        Follows ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` /
        ``OTEL_LOGS_EXPORTER`` when set; when unset every installed exporter plugin
        exports.
        """
        if self.sdk_disabled:
            return False
        allowed = {
            "traces": self.traces_exporters,
            "metrics": self.metrics_exporters,
            "logs": self.logs_exporters,
        }[signal]
        return allowed is None or name in allowed
