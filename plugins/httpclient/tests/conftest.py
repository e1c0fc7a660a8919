"""Fixtures: a real local HTTP server, a refused port, global instrumentation reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from limelight_httpclient import (
    instrument_httpx,
    instrument_requests,
    uninstrument_httpx,
    uninstrument_requests,
)
from limelight_testsupport import free_port
from limelight_testsupport.httpserver import LocalHTTPServer


@pytest.fixture(scope="session")
def server() -> Iterator[LocalHTTPServer]:
    """A real HTTP server for the whole session."""
    with LocalHTTPServer() as running:
        yield running


@pytest.fixture(autouse=True)
def global_state() -> Iterator[None]:
    """Every test starts with neither library instrumented globally, and leaves it as found.

    Autouse fixtures set up before the ``telemetry`` fixture, so what is
    installed during a test was installed by the plugin's start or by the test.
    """
    had_httpx, had_requests = uninstrument_httpx(), uninstrument_requests()
    yield
    uninstrument_httpx()
    uninstrument_requests()
    if had_httpx:
        instrument_httpx()
    if had_requests:
        instrument_requests()


@pytest.fixture
def refused_url() -> str:
    """A URL on a local port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/nothing"
