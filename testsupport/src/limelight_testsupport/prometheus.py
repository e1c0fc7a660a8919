"""A real Prometheus server and ``promtool`` for tests (Debian package ``prometheus``)."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import ensure_debian_package, free_port, stop_process, unavailable, wait_for_port

__all__ = [
    "PrometheusError",
    "PrometheusServer",
    "prometheus_server",
    "promtool_check_metrics",
    "require_promtool",
]


class PrometheusError(RuntimeError):
    """The Prometheus binary is missing or the server did not become ready."""


def _binary(name: str) -> str | None:
    return ensure_debian_package("prometheus", name)


def require_promtool() -> str:
    """The path of ``promtool``, installing the Debian package when missing; skips when absent."""
    path = _binary("promtool")
    if path is None:
        unavailable("promtool (Debian package prometheus) is not installed and could not be")
        raise AssertionError("unreachable")  # pragma: no cover - unavailable() raises
    return path


def promtool_check_metrics(exposition: bytes | str) -> tuple[bool, str]:
    """Run ``promtool check metrics`` on a text exposition; ``(passed, output)``."""
    data = exposition.encode() if isinstance(exposition, str) else exposition
    result = subprocess.run(
        [require_promtool(), "check", "metrics"],
        input=data,
        capture_output=True,
        check=False,
        timeout=60,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    return result.returncode == 0, output


class PrometheusServer:
    """A Prometheus server scraping *targets* (``host:port``) every *scrape_interval*.

    It listens on a free loopback port, keeps its data in a temporary
    directory and stores exemplars (``--enable-feature=exemplar-storage``), so
    tests can query series and exemplars through its HTTP API.

    :param targets: ``host:port`` of each endpoint to scrape.
    :param metrics_path: the path scraped on every target.
    :param scrape_interval: seconds between scrapes.
    :param job: the job label of the scrape config.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        metrics_path: str = "/metrics",
        scrape_interval: float = 1.0,
        job: str = "limelight",
    ) -> None:
        self.targets = list(targets)
        self.metrics_path = metrics_path
        self.scrape_interval = scrape_interval
        self.job = job
        self.port = free_port()
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> str:
        interval = f"{max(1, round(self.scrape_interval * 1000))}ms"
        # JSON is valid YAML: no YAML library needed.
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        return json.dumps(config, indent=2)

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        """Start the server and wait until it is ready."""
        binary = _binary("prometheus")
        if binary is None:
            raise PrometheusError("prometheus (Debian package prometheus) is not installed")
        self._dir = tempfile.TemporaryDirectory(prefix="limelight-prometheus-")
        root = Path(self._dir.name)
        (root / "prometheus.yml").write_text(self._config())
        self._log = (root / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--enable-feature=exemplar-storage",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        if not wait_for_port("127.0.0.1", self.port, timeout):
            self.stop()
            raise PrometheusError(f"prometheus did not listen within {timeout}s")
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        log = self.log()
        self.stop()
        raise PrometheusError(f"prometheus did not become ready: {log[-2000:]}")

    def log(self) -> str:
        """What the server logged so far."""
        if self._dir is None:
            return ""
        path = Path(self._dir.name) / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the server and delete its data."""
        if self._process is not None:
            stop_process(self._process)
        self._process = None
        if self._dir is not None:
            self._log.close()
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP API -----------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; raises on an API error."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus API {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (``[{"metric": {...}, "value": [t, "v"]}]``)."""
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def wait_for_query(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Poll an instant query until *predicate* accepts its result (or time runs out)."""
        deadline = time.monotonic() + timeout
        result = self.query(expr)
        while not predicate(result) and time.monotonic() < deadline:
            time.sleep(0.25)
            result = self.query(expr)
        return result

    def exemplars(self, expr: str, since: float = 3600.0) -> list[dict[str, Any]]:
        """``/api/v1/query_exemplars`` for *expr* over the last *since* seconds."""
        now = time.time()
        result: list[dict[str, Any]] = self.api(
            "query_exemplars", query=expr, start=str(now - since), end=str(now + 60)
        )
        return result

    def scrape_targets(self) -> list[dict[str, Any]]:
        """The active targets with their health and last error."""
        targets: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return targets


@contextmanager
def prometheus_server(targets: Sequence[str], **kwargs: Any) -> Iterator[PrometheusServer]:
    """A started :class:`PrometheusServer`; the test is skipped (or failed) when unavailable."""
    server = PrometheusServer(targets, **kwargs)
    try:
        server.start()
    except PrometheusError as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()
