"""url.full never carries credentials or secret query values."""

from __future__ import annotations

import httpx
import limelight_httpclient
import pytest
import requests
from limelight_httpclient import DEFAULT_REDACTED_QUERY_PARAMS, InstrumentedTransport, redact_url
from limelight_testsupport.httpserver import LocalHTTPServer

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[limelight_httpclient.plugin])


class TestRedactUrl:
    """User info and sensitive query values become REDACTED; the rest is kept as it was."""

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://h.example/p", "https://h.example/p"),
            ("https://u:pw@h.example/p", "https://REDACTED:REDACTED@h.example/p"),
            ("https://token@h.example:8443/p", "https://REDACTED@h.example:8443/p"),
            ("https://u:p%40ss@h.example/", "https://REDACTED:REDACTED@h.example/"),
            (
                "https://s3.example/b/k?X-Amz-Signature=abc&X-Amz-Credential=c&x-id=GetObject",
                "https://s3.example/b/k?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED"
                "&x-id=GetObject",
            ),
            (
                "https://h.example/?AWSAccessKeyId=a&Signature=b&sig=c&X-Goog-Signature=d",
                "https://h.example/?AWSAccessKeyId=REDACTED&Signature=REDACTED&sig=REDACTED"
                "&X-Goog-Signature=REDACTED",
            ),
            (
                "https://h.example/?ACCESS_TOKEN=x&q=a+b",
                "https://h.example/?ACCESS_TOKEN=REDACTED&q=a+b",
            ),
            ("https://h.example/?api%5Fkey=x", "https://h.example/?api%5Fkey=REDACTED"),
            ("https://h.example/?flag&token=&x=1", "https://h.example/?flag&token=REDACTED&x=1"),
            ("https://h.example/users/a@b.example?x=1", "https://h.example/users/a@b.example?x=1"),
            (
                "https://h.example/cb#access_token=t&s=1",
                "https://h.example/cb#access_token=REDACTED&s=1",
            ),
            ("https://h.example/p?x=1#TOKEN=a", "https://h.example/p?x=1#TOKEN=REDACTED"),
            ("https://h.example/?t%6Fken=x&q=1", "https://h.example/?t%6Fken=REDACTED&q=1"),
            ("https://h.example/?access+token=x", "https://h.example/?access+token=x"),
            ("http://[::1]:8080/p?token=1", "http://[::1]:8080/p?token=REDACTED"),
            # nothing to redact: returned as it is, whatever the query holds
            ("https://h.example/?q=a+b&page=2", "https://h.example/?q=a+b&page=2"),
            ("https://h.example/p?tokens=1&xtoken=2", "https://h.example/p?tokens=1&xtoken=2"),
            ("https://h.example/%7Euser/x?page=2", "https://h.example/%7Euser/x?page=2"),
            ("https://h.example/search?q=caf%C3%A9", "https://h.example/search?q=caf%C3%A9"),
            ("https://h.example/?clé=1&x=1", "https://h.example/?clé=1&x=1"),
        ],
    )
    def test_redact(self, url: str, expected: str) -> None:
        assert expected == redact_url(url)

    def test_extra_names(self) -> None:
        names = DEFAULT_REDACTED_QUERY_PARAMS | {"session"}
        assert "http://h/?Session=REDACTED&a=1" == redact_url("http://h/?Session=s&a=1", names)

    def test_unparsable_url_is_redacted_whole(self) -> None:
        assert "REDACTED" == redact_url("http://[::1?x=1")


class TestOnSpans:
    """What the span shows, with both libraries, and the variable adding names."""

    def test_httpx_credentials_and_token(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        url = f"http://alice:s3cret@127.0.0.1:{server.port}/ok?token=abc&page=2"
        with httpx.Client() as client:
            client.get(url)
        full = (telemetry.span("GET").attributes or {})["url.full"]
        assert f"http://REDACTED:REDACTED@127.0.0.1:{server.port}/ok?token=REDACTED&page=2" == full
        assert "s3cret" not in str(full)

    def test_requests_signature(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        requests.get(server.url("/ok?sig=abc&x=1"), timeout=5)
        assert (
            server.url("/ok?sig=REDACTED&x=1")
            == (telemetry.span("GET").attributes or {})["url.full"]
        )

    def test_the_request_itself_is_untouched(
        self, telemetry: Harness, server: LocalHTTPServer
    ) -> None:
        requests.get(server.url("/ok?sig=abc"), timeout=5)
        assert "/ok?sig=abc" == server.last().path

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin],
        env={"LIMELIGHT_HTTPCLIENT_REDACT_QUERY_PARAMS": "ticket, Session"},
    )
    def test_extra_names_from_the_environment(self, telemetry: Harness) -> None:
        transport = InstrumentedTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
        with httpx.Client(transport=transport) as client:
            client.get("https://h.example/?ticket=t&session=s&sig=x&a=1")
        assert (
            "https://h.example/?ticket=REDACTED&session=REDACTED&sig=REDACTED&a=1"
            == (telemetry.span("GET").attributes or {})["url.full"]
        )
