"""The three client metrics: labels, values, the series limit, balanced in-flight."""

from __future__ import annotations

import contextlib

import httpx
import limelight_httpclient
import pytest
import requests
from limelight_httpclient import InstrumentedTransport
from limelight_testsupport.httpserver import LocalHTTPServer

from limelight.metrics import OVERFLOW_LABEL_VALUE
from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[limelight_httpclient.plugin])


def _mock(status: int = 200) -> httpx.Client:
    return httpx.Client(
        transport=InstrumentedTransport(httpx.MockTransport(lambda r: httpx.Response(status)))
    )


class TestDeclared:
    """The catalog metrics are declared with their kinds and labels."""

    def test_catalog(self, telemetry: Harness) -> None:
        declared = {d.name: d for d in telemetry.store.declarations()}
        requests_total = declared["http_client_requests_total"]
        assert ("counter", ("method", "host", "status_code")) == (
            requests_total.kind,
            requests_total.label_names,
        )
        duration = declared["http_client_request_duration_seconds"]
        assert ("histogram", ("method", "host", "status_code")) == (
            duration.kind,
            duration.label_names,
        )
        in_flight = declared["http_client_requests_in_flight"]
        assert ("gauge_add", ("host",)) == (in_flight.kind, in_flight.label_names)

    @pytest.mark.limelight(
        plugins=[limelight_httpclient.plugin], env={"LIMELIGHT_METRICS_NAMESPACE": "shop"}
    )
    def test_namespace(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        requests.get(server.url("/ok"), timeout=5)
        assert 1 == telemetry.value(
            "shop_http_client_requests_total", method="GET", host="127.0.0.1", status_code="200"
        )


class TestValues:
    """Each finished request counts once, with its duration, per method, host and status."""

    def test_counts_per_label_set(self, telemetry: Harness, server: LocalHTTPServer) -> None:
        with httpx.Client() as client:
            for _ in range(3):
                client.get(server.url("/ok"))
            client.post(server.url("/status/500"))
        requests.get(server.url("/ok"), timeout=5)
        assert 4 == telemetry.value(
            "http_client_requests_total", method="GET", host="127.0.0.1", status_code="200"
        )
        assert 1 == telemetry.value(
            "http_client_requests_total", method="POST", host="127.0.0.1", status_code="500"
        )
        point = telemetry.histogram(
            "http_client_request_duration_seconds",
            method="GET",
            host="127.0.0.1",
            status_code="200",
        )
        assert 4 == point.count
        assert point.sum > 0

    def test_host_label_is_the_host_only(self, telemetry: Harness) -> None:
        with _mock() as client:
            client.get("https://user:secret@api.example:8443/v1/items/42?token=abc")
        assert [{"method": "GET", "host": "api.example", "status_code": "200"}] == telemetry.series(
            "http_client_requests_total"
        )
        assert [{"host": "api.example"}] == telemetry.series("http_client_requests_in_flight")

    def test_in_flight_returns_to_zero_after_errors(
        self, telemetry: Harness, server: LocalHTTPServer, refused_url: str
    ) -> None:
        with httpx.Client(timeout=0.2) as client:
            for url in (refused_url, server.url("/slow?delay=1"), server.url("/status/500")):
                with contextlib.suppress(httpx.HTTPError):
                    client.get(url)
        assert 0 == telemetry.value("http_client_requests_in_flight", host="127.0.0.1")
        assert 2 == telemetry.value(
            "http_client_requests_total", method="GET", host="127.0.0.1", status_code="error"
        )

    def test_methods_outside_the_standard_set_share_one_label(self, telemetry: Harness) -> None:
        with _mock() as client:
            for method in ("PURGE", "FOO", "LINK"):
                client.request(method, "http://h.example/")
        assert 3 == telemetry.value(
            "http_client_requests_total", method="_OTHER", host="h.example", status_code="200"
        )


class TestSeriesLimit:
    """Many target hosts collapse into the overflow series past the store's limit."""

    @pytest.mark.limelight(plugins=[limelight_httpclient.plugin], series_limit=3)
    def test_hosts_past_the_limit_overflow(self, telemetry: Harness) -> None:
        with _mock() as client:
            for i in range(6):
                client.get(f"http://host{i}.example/")
        series = telemetry.series("http_client_requests_total")
        assert 4 == len(series)
        overflow = {
            "method": OVERFLOW_LABEL_VALUE,
            "host": OVERFLOW_LABEL_VALUE,
            "status_code": OVERFLOW_LABEL_VALUE,
        }
        assert overflow in series
        assert 3 == telemetry.value(
            "http_client_requests_total",
            method=OVERFLOW_LABEL_VALUE,
            host=OVERFLOW_LABEL_VALUE,
            status_code=OVERFLOW_LABEL_VALUE,
        )

    @pytest.mark.limelight(plugins=[limelight_httpclient.plugin], series_limit=3)
    def test_every_overflowing_request_is_counted(self, telemetry: Harness) -> None:
        # three hosts fit; the other three overflow on each of their four requests
        with _mock() as client:
            for _ in range(4):
                for i in range(6):
                    client.get(f"http://host{i}.example/")
        for metric in (
            "http_client_requests_total",
            "http_client_request_duration_seconds",
            "http_client_requests_in_flight",
        ):
            assert 12 == telemetry.value("limelight_series_overflow_total", metric=metric), metric
        assert 12 == telemetry.value(
            "http_client_requests_total",
            method=OVERFLOW_LABEL_VALUE,
            host=OVERFLOW_LABEL_VALUE,
            status_code=OVERFLOW_LABEL_VALUE,
        )
        assert 0 == telemetry.value("http_client_requests_in_flight", host=OVERFLOW_LABEL_VALUE)
