"""The instrument contract for httpx and requests: instrument, uninstrument, is_instrumented."""

from __future__ import annotations

import httpx
import limelight_httpclient
import pytest
import requests
from limelight_httpclient import instrument, instrument_libraries, is_instrumented, uninstrument
from limelight_testsupport.httpserver import LocalHTTPServer
from limelight_testsupport.imports import run_hiding
from requests.adapters import HTTPAdapter

from limelight.testing import Harness

NOT_AT_START = pytest.mark.limelight(
    plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_HTTPCLIENT_INSTRUMENT": "none"}
)


def _patched_attributes() -> list[object]:
    """What the instrumentation replaces, as the classes themselves hold it."""
    return [
        vars(httpx.HTTPTransport)["handle_request"],
        vars(httpx.AsyncHTTPTransport)["handle_async_request"],
        vars(HTTPAdapter)["send"],
    ]


class TestContract:
    """Idempotent, exactly undone, selectable by library."""

    def test_instrument_every_installed_library_once(self) -> None:
        assert not is_instrumented()
        assert ("httpx", "requests") == instrument()
        assert () == instrument()
        assert () == instrument("httpx", "requests")
        assert is_instrumented() and is_instrumented("httpx") and is_instrumented("requests")
        assert ("httpx", "requests") == uninstrument()
        assert () == uninstrument()
        assert not is_instrumented()

    def test_uninstrument_puts_back_the_very_functions(self) -> None:
        before = _patched_attributes()
        instrument()
        during = _patched_attributes()
        assert all(a is not b for a, b in zip(before, during, strict=True))
        uninstrument()
        after = _patched_attributes()
        assert all(a is b for a, b in zip(before, after, strict=True))

    def test_one_library_at_a_time(self) -> None:
        assert ("requests",) == instrument("requests")
        assert not is_instrumented("httpx")
        assert ("requests",) == uninstrument("requests")

    def test_unknown_library_is_refused(self) -> None:
        with pytest.raises(ValueError, match="cannot instrument 'urllib3'"):
            instrument("urllib3")
        with pytest.raises(ValueError, match="cannot instrument 'urllib3'"):
            is_instrumented("urllib3")

    def test_the_per_library_functions_are_the_contract(self) -> None:
        assert limelight_httpclient.instrument_httpx()
        assert is_instrumented("httpx")
        assert not limelight_httpclient.instrument_httpx()
        assert limelight_httpclient.uninstrument_httpx()
        assert not is_instrumented("httpx")

    def test_instrument_libraries_is_deprecated(self) -> None:
        with pytest.deprecated_call(match=r"instrument\(\*names\)"):
            assert ["httpx"] == instrument_libraries(["httpx"])
        assert is_instrumented("httpx")


class TestRecording:
    """What is instrumented records; what was uninstrumented records nothing."""

    @NOT_AT_START
    def test_instrument_then_uninstrument(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        instrument()
        with httpx.Client() as client:
            client.get(server.url("/ok"))
        requests.get(server.url("/ok"), timeout=5)
        assert 2 == len(telemetry.find_spans("GET", kind="client"))
        uninstrument()
        with httpx.Client() as client:
            client.get(server.url("/ok"))
        requests.get(server.url("/ok"), timeout=5)
        assert 2 == len(telemetry.find_spans("GET", kind="client"))
        assert [] == server.last().header("traceparent")


class TestImports:
    """A library is imported only to be instrumented, and never when it is not installed."""

    def test_a_missing_library_is_never_imported(self) -> None:
        result = run_hiding(
            ["requests"],
            """
            import limelight_httpclient
            before = loaded("httpx", "requests")
            done = limelight_httpclient.instrument()
            try:
                limelight_httpclient.instrument("requests")
            except ImportError as exc:
                refused = type(exc).__name__
            report(
                before=before,
                done=done,
                refused=refused,
                after=loaded("httpx", "requests"),
                instrumented=limelight_httpclient.is_instrumented("requests"),
            )
            """,
        )
        assert [] == result["before"]  # importing the plugin imports neither library
        assert ["httpx"] == result["done"]
        assert "ModuleNotFoundError" == result["refused"]
        assert ["httpx"] == result["after"]
        assert result["instrumented"] is False
