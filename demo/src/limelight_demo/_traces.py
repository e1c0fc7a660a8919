"""A tiny limelight plugin: keep the spans of recent traces in memory, to show one.

Spans of this process reach it through its span processor; spans of other
processes (the receipt printer the shop spawns) reach it over OTLP/HTTP, at the
small receiver :meth:`TraceKeeper.serve_otlp` starts, as they would reach a
collector.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from limelight import hookimpl
from limelight_hookspecs import TelemetryView

__all__ = ["TraceKeeper"]


class _Keep(SpanProcessor):
    # on_end only: the base class's on_start is a no-op, and limelight's tracer
    # provider calls at span start only the processors that override it
    def __init__(self, keeper: TraceKeeper) -> None:
        self._keeper = keeper

    def on_end(self, span: ReadableSpan) -> None:
        self._keeper._add(span)


class TraceKeeper:
    """Keeps every finished span of the last *max_traces* traces.

    A plugin object like any other: pass it to ``limelight.start(plugins=[keeper])``
    and the core adds its span processor to the tracer provider.
    """

    limelight_name = "demo.traces"
    limelight_priority = 900

    def __init__(self, max_traces: int = 256) -> None:
        self.max_traces = max_traces
        self._traces: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def serve_otlp(self) -> str:
        """Receive OTLP/HTTP trace exports on a loopback port; the traces endpoint URL.

        What other processes export there (protobuf, plain or gzip) is kept
        with this process's own spans. :meth:`close` stops the receiver.
        """
        keeper = self

        class _Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    request = ExportTraceServiceRequest.FromString(body)
                except Exception:  # a malformed export: refused, nothing kept
                    self.send_response(400)
                    self.end_headers()
                    return
                for span in _readable_spans(request):
                    keeper._add(span)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the demo prints what matters

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="demo-otlp-receiver", daemon=True
        ).start()
        return f"http://127.0.0.1:{self._server.server_port}/v1/traces"

    def close(self) -> None:
        """Stop the OTLP receiver, if it runs."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @hookimpl
    def limelight_spans_provide_processors(
        self, telemetry: TelemetryView
    ) -> Sequence[SpanProcessor]:
        return (_Keep(self),)

    def _add(self, span: ReadableSpan) -> None:
        if span.context is None:
            return
        with self._cond:
            spans = self._traces.setdefault(span.context.trace_id, [])
            spans.append(span)
            while len(self._traces) > self.max_traces:
                self._traces.popitem(last=False)
            self._cond.notify_all()

    def trace(self, trace_id: int, timeout: float = 5.0) -> list[ReadableSpan]:
        """The spans of one trace once its root span has ended (or *timeout* passed)."""

        def complete() -> bool:
            return any(s.parent is None for s in self._traces.get(trace_id, ()))

        deadline = time.monotonic() + timeout
        with self._cond:
            while not complete():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return sorted(self._traces.get(trace_id, ()), key=lambda s: s.start_time or 0)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind) if kind is not None else None


def _span_context(trace_id: bytes, span_id: bytes) -> SpanContext:
    return SpanContext(
        int.from_bytes(trace_id, "big"),
        int.from_bytes(span_id, "big"),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


# OTLP's span kinds count from SPAN_KIND_UNSPECIFIED (0), the API's from INTERNAL (0)
_KINDS = {
    ProtoSpan.SPAN_KIND_UNSPECIFIED: SpanKind.INTERNAL,
    ProtoSpan.SPAN_KIND_INTERNAL: SpanKind.INTERNAL,
    ProtoSpan.SPAN_KIND_SERVER: SpanKind.SERVER,
    ProtoSpan.SPAN_KIND_CLIENT: SpanKind.CLIENT,
    ProtoSpan.SPAN_KIND_PRODUCER: SpanKind.PRODUCER,
    ProtoSpan.SPAN_KIND_CONSUMER: SpanKind.CONSUMER,
}


def _status(span: ProtoSpan) -> Status:
    code = StatusCode(span.status.code)
    # a description belongs to an error only
    return Status(code, span.status.message or None if code is StatusCode.ERROR else None)


def _readable_spans(request: ExportTraceServiceRequest) -> list[ReadableSpan]:
    """The spans of an OTLP export, as the SDK's finished spans."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = Resource({a.key: _value(a.value) for a in resource_spans.resource.attributes})
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                parent = (
                    _span_context(span.trace_id, span.parent_span_id)
                    if span.parent_span_id
                    else None
                )
                spans.append(
                    ReadableSpan(
                        name=span.name,
                        context=_span_context(span.trace_id, span.span_id),
                        parent=parent,
                        resource=resource,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
                        status=_status(span),
                        start_time=span.start_time_unix_nano,
                        end_time=span.end_time_unix_nano,
                    )
                )
    return spans
