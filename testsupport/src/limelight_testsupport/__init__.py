"""Helpers shared by limelight's test suites (unpublished).

Real services: a test that needs PostgreSQL, Redis, RabbitMQ, Prometheus or an
OTLP receiver calls :func:`require_tcp` (or a helper built on it). When the
service cannot be reached the test is skipped with the reason, except under
``LIMELIGHT_REQUIRE_SERVICES=1`` (set by CI), where it fails.

Runners for real services live in submodules:
:mod:`limelight_testsupport.prometheus` (a Prometheus server with a generated
scrape config, queried through its HTTP API; ``promtool check metrics``),
:mod:`limelight_testsupport.otlp` (an ``oteltap`` OTLP/HTTP receiver driven
from synchronous tests) and :mod:`limelight_testsupport.postgres` (a private
PostgreSQL server from the Debian binaries, for settings the shared one must
keep, such as ``wal_level=logical``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "console_script",
    "ensure_debian_package",
    "ensure_debian_package_file",
    "free_port",
    "require_tcp",
    "services_required",
    "stop_process",
    "unavailable",
    "wait_for_port",
]


def services_required() -> bool:
    """True when ``LIMELIGHT_REQUIRE_SERVICES`` is set to a true value."""
    return os.environ.get("LIMELIGHT_REQUIRE_SERVICES", "").strip().lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


def unavailable(reason: str) -> None:
    """Skip the running test with *reason*, or fail it when services are required."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def _reachable(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_tcp(name: str, host: str, port: int, timeout: float = 1.0) -> None:
    """Skip (or fail, when required) unless *host:port* accepts a TCP connection."""
    if not _reachable(host, port, timeout):
        unavailable(f"{name} is not reachable on {host}:{port}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> bool:
    """Wait until *host:port* accepts connections; false on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _reachable(host, port, 0.2):
            return True
        time.sleep(0.05)
    return False


def stop_process(
    process: subprocess.Popen[Any], timeout: float = 10.0, sig: int = signal.SIGTERM
) -> None:
    """Send *sig* to *process* and reap it; kill it when it is still running after *timeout*."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def ensure_debian_package(package: str, binary: str) -> str | None:
    """The path of *binary*, installing Debian *package* with apt-get when missing.

    Returns ``None`` (after which callers use :func:`unavailable`) when the
    binary is still missing, for example without root or without a package
    mirror.
    """
    found = shutil.which(binary)
    if found:
        return found
    _apt_install(package)
    return shutil.which(binary)


def ensure_debian_package_file(package: str, path: str | Path) -> Path | None:
    """*path* (a file Debian *package* ships), installing the package with apt-get when missing.

    For packages whose useful part is not a binary on ``PATH``: a PostgreSQL
    output plugin (``postgresql-15-wal2json`` ships ``wal2json.so`` under
    ``pg_config --pkglibdir``), a library, a data file. Returns ``None`` when
    the file is still missing afterwards.
    """
    target = Path(path)
    if target.exists():
        return target
    _apt_install(package)
    return target if target.exists() else None


def _apt_install(package: str) -> None:
    """Install Debian *package* with apt-get (through ``sudo -n`` unless root), quietly;
    a stale package index is refreshed once. Failures are left to the caller's check."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return
    prefix: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> int:
        return subprocess.run(
            [*prefix, apt_get, *args], env=env, capture_output=True, check=False, timeout=900
        ).returncode

    install = ("install", "-y", "--no-install-recommends", package)
    if apt(*install) != 0:  # a stale package index: refresh it once and retry
        apt("update")
        apt(*install)


def console_script(name: str) -> str:
    """The path of the console script *name* of the environment running the tests.

    The one next to this Python first (a virtual environment's ``bin/``), else
    the one on ``PATH``; the test fails when there is neither.
    """
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"the {name} console script is not installed next to this Python")
    return found
