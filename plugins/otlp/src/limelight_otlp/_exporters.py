"""Building the OpenTelemetry OTLP exporters from limelight's settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from limelight_hookspecs import Config, ConfigProblem, OtlpSettings

from ._logs import LogGate, gate_for

__all__ = [
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


def build_span_exporter(config: Config) -> tuple[SpanExporter, LogGate]:
    """The OTLP span exporter for ``config.otlp_traces`` and its log gate."""
    settings = config.otlp_traces
    exporter: SpanExporter
    if effective_protocol(config, settings, "traces") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        exporter = GrpcSpanExporter(**_grpc_kwargs(settings))
        return exporter, gate_for(_GRPC_LOGGER, type(exporter).__module__)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    exporter = HttpSpanExporter(**_http_kwargs(settings))
    return exporter, gate_for(type(exporter).__module__)


def build_metric_exporter(config: Config) -> tuple[MetricExporter, LogGate]:
    """The OTLP metric exporter for ``config.otlp_metrics`` and its log gate."""
    settings = config.otlp_metrics
    exporter: MetricExporter
    if effective_protocol(config, settings, "metrics") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        exporter = GrpcMetricExporter(**_grpc_kwargs(settings))
        return exporter, gate_for(_GRPC_LOGGER, type(exporter).__module__)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    exporter = HttpMetricExporter(**_http_kwargs(settings))
    return exporter, gate_for(type(exporter).__module__)


class GatedSpanExporter(SpanExporter):
    """Delegates to an OTLP span exporter; a success reopens its log gate.

    :param exporter: the OTLP exporter.
    :param gate: the gate on that exporter's loggers.
    """

    def __init__(self, exporter: SpanExporter, gate: LogGate) -> None:
        self.exporter = exporter
        self._gate = gate

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.exporter.export(spans)
        if result is SpanExportResult.SUCCESS:
            self._gate.reset()
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
