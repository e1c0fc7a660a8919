"""Hostile request headers stay out of the logs: what OpenTelemetry logs about a request's
baggage is bounded in length and rate, against a real uvicorn server."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import limelight_http
import pytest
from limelight_http import instrument_starlette
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from limelight.testing import Harness

PLUGIN = pytest.mark.limelight(plugins=[limelight_http.plugin])

HOSTILE_BAGGAGE = [
    "k=" + "v" * 10_000,  # over the 8192 bytes of a baggage-string
    "bad member\x1b[31m, ok=1",  # no '=': doesn't match the format
    "tenant=acme,user=\u00e9l\u00e8ve",  # non-ASCII
    ",".join(f"k{i}=v" for i in range(200)),  # over 180 members
    "=novalue",
    "k=v;" + "p" * 5000,  # a member over 4096 bytes
]


def _app() -> Starlette:
    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/ok", ok)])


@PLUGIN
class TestHostileBaggage:
    """Hundreds of requests with hostile baggage give at most one bounded line per kind."""

    def test_lines_are_few_short_and_escaped(
        self, telemetry: Harness, serve_asgi: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        server = serve_asgi(instrument_starlette(_app()))
        caplog.set_level(logging.WARNING, logger="opentelemetry")
        statuses = []
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(50):
                for value in HOSTILE_BAGGAGE:
                    response = client.get("/ok", headers={b"baggage": value.encode("utf-8")})
                    statuses.append(response.status_code)
        assert {200} == set(statuses)
        assert 300 == len(statuses)
        lines = [r for r in caplog.records if r.name.startswith("opentelemetry")]
        # one per kind: oversized header, malformed member, non-ASCII, too many members,
        # invalid entry, oversized member (the propagator's six warnings)
        assert 1 <= len(lines) <= 6, [r.getMessage()[:80] for r in lines]
        assert len({(r.pathname, r.lineno) for r in lines}) == len(lines)
        for record in lines:
            message = record.getMessage()
            assert len(message) <= 400, message[:100]
            assert "\x1b" not in message and "\n" not in message
        # the 10 kB header itself: cut, saying how long the line would have been
        [header] = [r.getMessage() for r in lines if r.getMessage().startswith("Baggage header")]
        assert header.endswith("... (10075 characters)")
        assert telemetry.wait_until(
            lambda: (
                300
                == telemetry.value(
                    "http_requests_total", method="GET", route="/ok", status_code="200"
                )
            )
        )

    def test_a_kind_seen_again_after_the_interval_says_how_many_were_left_out(
        self,
        telemetry: Harness,
        serve_asgi: Any,
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from limelight import _logbound

        server = serve_asgi(instrument_starlette(_app()))
        caplog.set_level(logging.WARNING, logger="opentelemetry")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(10):
                client.get("/ok", headers={"baggage": "bad member"})
            monkeypatch.setattr(_logbound._FILTER, "interval", 0.0)
            client.get("/ok", headers={"baggage": "bad member"})
        messages = [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")]
        assert 2 == len(messages), messages
        assert messages[1].endswith("(9 more like this in the last 0 s)")
