"""Building the OpenTelemetry OTLP exporters from limelight's settings.

An exporter is made at its first use (the first export, in the export
thread), not when telemetry starts: the OTLP exporters import their transport
(requests and urllib3, or grpc) and the protobuf encoding, tens of milliseconds
that a process which is still starting, or never exports, does not pay. A
failure to make it (an unreadable certificate file, say) is then an export
failure, counted and logged once like any other.

In a process forked after an export, every exporter is made again at its next
use: the parent's HTTP session (its keep-alive connections) and gRPC channel
belong to the parent, and two processes writing on one connection would mix
their requests.
"""

from __future__ import annotations

import importlib
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from limelight_hookspecs import Config, ConfigProblem, OtlpSettings

from ._logs import LogGate, gate_for

__all__ = [
    "DeferredExporter",
    "GatedSpanExporter",
    "build_metric_exporter",
    "build_span_exporter",
    "effective_protocol",
]

_GRPC_LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"


def effective_protocol(config: Config, settings: OtlpSettings, signal: str) -> str:
    """``grpc`` or ``http/protobuf``; ``http/json`` is reported once and replaced.

    opentelemetry-exporter-otlp ships no JSON encoding, so ``http/json``
    falls back to ``http/protobuf`` (same endpoint and path).
    """
    if settings.protocol == "http/json":
        variable = f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"
        if config.sources.get(f"otlp_{signal}.protocol") == "OTEL_EXPORTER_OTLP_PROTOCOL":
            variable = "OTEL_EXPORTER_OTLP_PROTOCOL"
        config.reporter(
            ConfigProblem(
                variable,
                settings.protocol,
                "http/protobuf",
                "limelight-otlp sends http/protobuf or grpc (opentelemetry-exporter-otlp "
                "has no JSON encoding)",
            )
        )
        return "http/protobuf"
    return "grpc" if settings.protocol == "grpc" else "http/protobuf"


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def _grpc_kwargs(settings: OtlpSettings) -> dict[str, Any]:
    import grpc  # type: ignore[import-untyped]

    kwargs: dict[str, Any] = {
        "endpoint": settings.endpoint,
        "headers": dict(settings.headers),
        "timeout": settings.timeout,
        "compression": grpc.Compression.Gzip
        if settings.compression == "gzip"
        else grpc.Compression.NoCompression,
    }
    insecure = settings.insecure
    if insecure is None:
        insecure = settings.endpoint.startswith("http://")
    kwargs["insecure"] = insecure
    if not insecure and (settings.certificate or settings.client_certificate):
        kwargs["credentials"] = grpc.ssl_channel_credentials(
            root_certificates=_read(settings.certificate),
            private_key=_read(settings.client_key),
            certificate_chain=_read(settings.client_certificate),
        )
    return kwargs


def _http_kwargs(settings: OtlpSettings) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http import Compression

    return {
        "endpoint": settings.endpoint,
        "headers": dict(settings.headers),
        "timeout": settings.timeout,
        "compression": Compression.Gzip
        if settings.compression == "gzip"
        else Compression.NoCompression,
        "certificate_file": settings.certificate,
        "client_key_file": settings.client_key,
        "client_certificate_file": settings.client_certificate,
    }


class DeferredExporter:
    """An exporter made by *make* on first use, then used as itself.

    ``export`` and ``force_flush`` make it; ``shutdown`` of one never made has
    nothing to shut down. Any other attribute is the made exporter's.

    :param make: builds the exporter (imports included).
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._factory = make
        self._make: Callable[[], Any] | None = make
        self._exporter: Any = None
        self._lock = threading.Lock()
        self._closed = False
        _DEFERRED.add(self)

    def after_fork(self) -> None:
        """In a forked child: the next use makes a new exporter (a connection of its
        own: the parent's HTTP session or gRPC channel is the parent's)."""
        self._lock = threading.Lock()
        if self._closed:
            return  # shut down in the parent: never made again
        self._exporter = None
        self._make = self._factory

    @property
    def made(self) -> bool:
        """Whether the exporter exists yet."""
        return self._exporter is not None

    def get(self) -> Any:
        """The exporter, made now if it was not yet."""
        exporter = self._exporter
        if exporter is None:
            with self._lock:
                if self._exporter is None and self._make is not None:
                    self._exporter = self._make()
                    self._make = None
                exporter = self._exporter
        return exporter

    def export(self, *args: Any, **kwargs: Any) -> Any:
        return self.get().export(*args, **kwargs)

    def force_flush(self, *args: Any, **kwargs: Any) -> Any:
        return self.get().force_flush(*args, **kwargs)

    def shutdown(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._make = None  # a shut-down exporter is never made afterwards
            self._closed = True
            exporter = self._exporter
        return None if exporter is None else exporter.shutdown(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_closed", "_factory", "_make", "_exporter", "_lock"):
            raise AttributeError(name)
        return getattr(self.get(), name)


_DEFERRED: weakref.WeakSet[DeferredExporter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for exporter in list(_DEFERRED):
        exporter.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _build(config: Config, signal: str, module: str, class_name: str) -> tuple[Any, LogGate]:
    """The OTLP exporter of *signal* for its protocol (made at first use) and its log gate.

    *module* and *class_name* name the exporter under
    ``opentelemetry.exporter.otlp.proto.{grpc,http}``; it is imported only
    when chosen, so gRPC is loaded only for ``grpc``.
    """
    settings = config.otlp_traces if signal == "traces" else config.otlp_metrics
    grpc = effective_protocol(config, settings, signal) == "grpc"
    name = f"opentelemetry.exporter.otlp.proto.{'grpc' if grpc else 'http'}.{module}"

    # the gRPC exporters log their failures through their shared base module's logger
    shared = (_GRPC_LOGGER,) if grpc else ()

    def make() -> Any:
        found = importlib.import_module(name)
        kwargs = _grpc_kwargs(settings) if grpc else _http_kwargs(settings)
        exporter = getattr(found, class_name)(**kwargs)
        gate_for(signal, own=(name,), shared=shared)  # the filters its import added
        return exporter

    return DeferredExporter(make), gate_for(signal, own=(name,), shared=shared)


def build_span_exporter(config: Config) -> tuple[SpanExporter, LogGate]:
    """The OTLP span exporter for ``config.otlp_traces`` (a :class:`DeferredExporter`)
    and its log gate."""
    return _build(config, "traces", "trace_exporter", "OTLPSpanExporter")


def build_metric_exporter(config: Config) -> tuple[MetricExporter, LogGate]:
    """The OTLP metric exporter for ``config.otlp_metrics`` (a :class:`DeferredExporter`)
    and its log gate."""
    return _build(config, "metrics", "metric_exporter", "OTLPMetricExporter")


class GatedSpanExporter(SpanExporter):
    """Delegates to an OTLP span exporter under its log gate; a success reopens the gate.

    :param exporter: the OTLP exporter.
    :param gate: the traces gate.
    """

    def __init__(self, exporter: SpanExporter, gate: LogGate) -> None:
        self.exporter = exporter
        self._gate = gate

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._gate.exporting():
            result = self.exporter.export(spans)
        if result is SpanExportResult.SUCCESS:
            self._gate.reset()
        return result

    def shutdown(self) -> None:
        with self._gate.exporting():
            self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._gate.exporting():
            return self.exporter.force_flush(timeout_millis)
