"""A real OTLP/HTTP receiver for tests: the ``oteltap`` package, driven from synchronous code."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import free_port, unavailable

if TYPE_CHECKING:
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["OtlpReceiver", "OtlpReceiverError", "otlp_receiver"]


class OtlpReceiverError(RuntimeError):
    """The receiver could not be started (``oteltap`` missing or the port refused)."""


class OtlpReceiver:
    """An OTLP http/protobuf receiver (``oteltap``) on a loopback port, in its own thread.

    Everything it receives is kept: :meth:`spans`, :meth:`logs` and :meth:`metrics` return the
    protobuf messages in arrival order (each metric export delivers every metric
    again, so the latest message of a name is the current cumulative state).

    :param port: the port to listen on; a free one by default.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._spans: list[Span] = []
        self._metrics: list[Metric] = []
        self._logs: list[LogRecord] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def endpoint(self) -> str:
        """The base URL, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes it."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        """The traces URL (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)."""
        return self.endpoint + "/v1/traces"

    @property
    def logs_endpoint(self) -> str:
        """The logs URL (``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``)."""
        return self.endpoint + "/v1/logs"

    @property
    def metrics_endpoint(self) -> str:
        """The metrics URL (``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``)."""
        return self.endpoint + "/v1/metrics"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> OtlpReceiver:
        """Start listening; :class:`OtlpReceiverError` when it cannot."""
        try:
            import oteltap  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise OtlpReceiverError(f"the oteltap package is not installed: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="otlp-receiver", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise OtlpReceiverError(f"oteltap did not start within {timeout}s")
        if self._error is not None:
            raise OtlpReceiverError(f"oteltap failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Stop listening (what was received stays readable)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10.0)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._started.set()

    async def _main(self) -> None:
        from oteltap import OtelTapHttpProtobufReceiver, OtelTapHttpProtobufReceiverSettings

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        settings = OtelTapHttpProtobufReceiverSettings(http_port=self.port)
        async with OtelTapHttpProtobufReceiver(settings) as receiver:
            tasks = [
                asyncio.create_task(self._collect(receiver.stream_traces(), self._spans)),
                asyncio.create_task(self._collect(receiver.stream_metrics(), self._metrics)),
                asyncio.create_task(self._collect(receiver.stream_logs(), self._logs)),
            ]
            # let the subscriptions register before anything can arrive
            await asyncio.sleep(0.05)
            self._started.set()
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _collect(self, stream: Any, into: list[Any]) -> None:
        async for message in stream:
            with self._cond:
                into.append(message)
                self._cond.notify_all()

    # -- reading ------------------------------------------------------------------------

    def spans(self) -> list[Span]:
        """Every span received so far."""
        with self._cond:
            return list(self._spans)

    def logs(self) -> list[LogRecord]:
        """Every log record received so far."""
        with self._cond:
            return list(self._logs)

    def wait_for_logs(
        self, predicate: Callable[[LogRecord], bool], count: int, timeout: float = 10.0
    ) -> list[LogRecord]:
        """Wait until at least *count* received log records satisfy *predicate*; returns
        those received by then."""
        self._wait(lambda: sum(1 for r in self._logs if predicate(r)) >= count, timeout)
        return [r for r in self.logs() if predicate(r)]

    def metrics(self) -> list[Metric]:
        """Every metric message received so far."""
        with self._cond:
            return list(self._metrics)

    def _wait(self, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = check()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return result
                self._cond.wait(remaining)

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[Span]:
        """Wait until at least *count* spans arrived; returns every span received."""
        self._wait(lambda: len(self._spans) >= count, timeout)
        return self.spans()

    def wait_for_metric(
        self,
        name: str,
        predicate: Callable[[Metric], bool] | None = None,
        timeout: float = 10.0,
    ) -> Metric | None:
        """The latest metric called *name* (satisfying *predicate*), waiting up to *timeout*."""

        def check() -> Metric | None:
            for metric in reversed(self._metrics):
                if metric.name == name and (predicate is None or predicate(metric)):
                    return metric
            return None

        found: Metric | None = self._wait(check, timeout)
        return found


@contextmanager
def otlp_receiver(port: int | None = None) -> Iterator[OtlpReceiver]:
    """A started :class:`OtlpReceiver`; the test is skipped (or failed) when unavailable."""
    receiver = OtlpReceiver(port)
    try:
        receiver.start()
    except OtlpReceiverError as exc:
        receiver.stop()
        unavailable(f"OTLP receiver: {exc}")
    try:
        yield receiver
    finally:
        receiver.stop()
