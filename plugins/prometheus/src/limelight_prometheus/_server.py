"""The standalone /metrics server and the store reader that runs it."""

from __future__ import annotations

import threading
import time
from typing import Any

import prometheus_client

from limelight.plugins import get_logger
from limelight_hookspecs import TelemetryView

from ._exposition import multiprocess_dir, serving_registry, write_multiprocess_target_info

__all__ = ["MetricsServer", "PrometheusReader", "start_http_server"]

_log = get_logger("limelight.prometheus")


class MetricsServer:
    """A running standalone /metrics server (prometheus_client's threaded WSGI server).

    :param httpd: the WSGI server.
    :param thread: the thread serving it.
    """

    def __init__(self, httpd: Any, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host: str = httpd.server_address[0]
        self.port: int = int(httpd.server_address[1])

    @property
    def url(self) -> str:
        """The metrics URL (any path serves the metrics; ``/metrics`` by convention)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self, timeout: float = 5.0) -> bool:
        """Stop serving; true when the server thread ended within *timeout*."""
        deadline = time.monotonic() + timeout
        done = threading.Event()

        def stop() -> None:
            try:
                self._httpd.shutdown()
            finally:
                self._httpd.server_close()
                done.set()

        threading.Thread(target=stop, name="limelight-prometheus-stop", daemon=True).start()
        if not done.wait(timeout):
            return False
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()


def start_http_server(
    port: int = 9464,
    host: str = "localhost",
    telemetry: TelemetryView | None = None,
    target_info: bool | None = None,
) -> MetricsServer:
    """Serve the metrics on *host*:*port* from a daemon thread.

    For gunicorn's master process in multiprocess mode (``when_ready``), where
    it serves the aggregate of every worker; telemetry started with the plugin
    installed runs one for you.

    :param port: the port; 0 picks a free one (read it back from ``.port``).
    :param host: the address to bind.
    :param telemetry: whose store to serve; the running telemetry's by default.
    :param target_info: serve ``target_info`` (the resource); ``None`` means
        ``LIMELIGHT_PROMETHEUS_TARGET_INFO``.
    :raises OSError: the address cannot be bound; the message names it.
    """
    try:
        httpd, thread = prometheus_client.start_http_server(
            port, addr=host, registry=serving_registry(telemetry, target_info)
        )
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot serve /metrics on {host}:{port}: {exc.strerror or exc} "
            "(set OTEL_EXPORTER_PROMETHEUS_HOST/OTEL_EXPORTER_PROMETHEUS_PORT, or "
            "LIMELIGHT_PROMETHEUS_SERVER=false and mount make_wsgi_app/make_asgi_app)",
        ) from exc
    thread.name = "limelight-prometheus-server"
    return MetricsServer(httpd, thread)


class PrometheusReader:
    """Reads the metric store on each scrape; runs the standalone server while started.

    A pull exporter: ``force_flush`` has nothing to push. Being a store reader
    (rather than a server started in ``limelight_lifecycle_start``) means the core
    starts it once every metric is declared, so the first scrape already lists
    every metric, and bounds its shutdown by the stop timeout.

    :param telemetry: the telemetry whose store is served.
    :param host: the address the server binds.
    :param port: the server's port (0 for a free one).
    :param serve: ``"true"``, ``"false"`` or ``"auto"`` (serve unless in
        multiprocess mode).
    """

    def __init__(self, telemetry: TelemetryView, host: str, port: int, serve: str) -> None:
        self.telemetry = telemetry
        self.host = host
        self.port = port
        self.serve = serve
        self.server: MetricsServer | None = None

    @classmethod
    def of(cls, telemetry: object) -> PrometheusReader | None:
        """The Prometheus reader of a started :class:`limelight.Telemetry`, if it has one.

        Handy with ``OTEL_EXPORTER_PROMETHEUS_PORT=0``: ``PrometheusReader.of(t).url``.
        """
        for _plugin, reader in getattr(telemetry, "readers", ()):
            if isinstance(reader, cls):
                return reader
        return None

    @property
    def url(self) -> str | None:
        """The standalone server's metrics URL while it runs."""
        return self.server.url if self.server is not None else None

    def start(self) -> None:
        """Start the standalone server (unless disabled); in multiprocess mode, write
        this process's ``target_info`` for the aggregate."""
        write_multiprocess_target_info(self.telemetry)
        serve = self.serve == "true" or (self.serve == "auto" and multiprocess_dir() is None)
        if not serve:
            return
        self.server = start_http_server(self.port, self.host, self.telemetry)
        _log.debug("serving metrics", url=self.server.url)

    def force_flush(self, timeout: float) -> bool:
        """Nothing to push: Prometheus pulls."""
        return True

    def shutdown(self, timeout: float) -> None:
        """Stop the standalone server within *timeout* seconds."""
        server, self.server = self.server, None
        if server is not None and not server.close(timeout):
            _log.warning("metrics server did not stop in time", timeout=timeout)
