"""A real uvicorn service stays as quiet as its command line asked.

The service is an ASGI app behind ``limelight_http.ASGIMiddleware`` that starts
telemetry at import, run as ``python -m uvicorn ... --log-level warning`` and
stopped with SIGTERM, the way a process manager stops it. limelight's own
lines go through ``logging`` at the level the application configured: with
nothing configured, its debug and info lines (``stopping telemetry
reason=SIGTERM`` among them) are not printed, its warnings still are; an
application that asks for limelight's debug lines gets them.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from limelight_testsupport import free_port, wait_for_port

APP = """
import logging
import os

import limelight
from limelight_http import ASGIMiddleware

if os.environ.get("APP_LIMELIGHT_LOG_LEVEL"):
    logging.basicConfig(format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("limelight").setLevel(os.environ["APP_LIMELIGHT_LOG_LEVEL"])

limelight.start(service_name="quiet")


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


app = ASGIMiddleware(hello)
"""


def _serve_and_terminate(tmp_path: Path, **env: str) -> str:
    """Run the service under uvicorn --log-level warning, send one request, SIGTERM it;
    return what it wrote to stderr."""
    (tmp_path / "quiet_app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(tmp_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "quiet_app:app",
    ]
    environ = {
        **os.environ,
        "LIMELIGHT_PLUGINS": "http",  # no exporter: nothing else to say
        "OTEL_TRACES_EXPORTER": "none",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    process = subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for_port("127.0.0.1", port, timeout=30), process.stderr
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/")
        assert b"hello" == connection.getresponse().read()
        connection.close()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "" == stdout
    return stderr


def test_under_log_level_warning_limelight_prints_nothing(tmp_path: Path) -> None:
    stderr = _serve_and_terminate(tmp_path)
    assert "stopping telemetry" not in stderr
    assert "" == stderr


def test_limelight_warnings_still_reach_stderr(tmp_path: Path) -> None:
    stderr = _serve_and_terminate(tmp_path, OTEL_BSP_MAX_QUEUE_SIZE="lots")
    assert "OTEL_BSP_MAX_QUEUE_SIZE" in stderr
    assert "stopping telemetry" not in stderr


@pytest.mark.parametrize(("level", "shown"), [("DEBUG", True), ("INFO", False)])
def test_the_level_the_application_gives_limelight_is_followed(
    tmp_path: Path, level: str, shown: bool
) -> None:
    stderr = _serve_and_terminate(tmp_path, APP_LIMELIGHT_LOG_LEVEL=level)
    assert shown == ("DEBUG limelight stopping telemetry reason=SIGTERM" in stderr), stderr
