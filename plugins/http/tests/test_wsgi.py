"""Flask and plain WSGI apps served by cheroot over real sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import httpx
import limelight_http
import pytest
from flask import Blueprint, Flask, Response, abort, stream_with_context
from limelight_http import UNMATCHED_ROUTE, WSGIMiddleware, instrument_flask
from opentelemetry.trace import StatusCode

from limelight.testing import Harness
from limelight_hookspecs import NumberPoint

PLUGIN = pytest.mark.limelight(plugins=[limelight_http.plugin])
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def in_flight(telemetry: Harness) -> float:
    points = telemetry.metric("http_requests_in_flight").points
    return sum(p.value for p in points if isinstance(p, NumberPoint))


def server_span(telemetry: Harness, name: str) -> Any:
    return telemetry.wait_for_span(name, kind="server")


class Gate:
    """Holds a streaming view between two chunks until the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.produced: list[tuple[str, float]] = []
        self.stop_after_first = True


def flask_app(gate: Gate) -> Flask:
    app = Flask("shop")
    api = Blueprint("api", "shop", url_prefix="/api/<version>")

    @api.get("/items/<int:item_id>")
    def item(version: str, item_id: int) -> dict[str, Any]:
        if item_id == 0:
            abort(404)
        return {"version": version, "id": item_id}

    app.register_blueprint(api)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    @app.get("/healthz")
    def health() -> str:
        return "ok"

    @app.get("/events")
    def events() -> Response:
        def stream() -> Iterator[str]:
            gate.produced.append(("one", time.time()))
            yield "data: one\n\n"
            gate.release.wait(5)
            for n in range(200):  # a disconnected client shows up on a later write
                gate.produced.append(("more", time.time()))
                yield f"data: {n}\n\n"
                if n == 0 and gate.stop_after_first:
                    return
                time.sleep(0.01)

        return Response(stream_with_context(stream()), mimetype="text/event-stream")

    @app.get("/broken")
    def broken() -> Response:
        def stream() -> Iterator[str]:
            yield ""  # nothing sent yet
            yield "data: one\n\n"
            raise RuntimeError("feed lost")

        return Response(stream(), mimetype="text/event-stream")

    return app


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def flask_server(serve_wsgi: Any, gate: Gate) -> Any:
    return serve_wsgi(instrument_flask(flask_app(gate), exclude_paths=["/healthz"]))


@PLUGIN
class TestFlask:
    """Flask's URL rule is the route; exceptions Flask handles are still recorded."""

    def test_blueprint_rule(self, telemetry: Harness, flask_server: Any) -> None:
        response = httpx.get(flask_server.url + "/api/v1/items/7")
        assert {"version": "v1", "id": 7} == response.json()
        span = server_span(telemetry, "GET /api/<version>/items/<int:item_id>")
        assert "/api/v1/items/7" == span.attributes["url.path"]
        assert 200 == span.attributes["http.response.status_code"]
        assert flask_server.port == span.attributes["server.port"]
        assert 1 == telemetry.value(
            "http_requests_total",
            method="GET",
            route="/api/<version>/items/<int:item_id>",
            status_code="200",
        )

    def test_abort_404_keeps_the_rule(self, telemetry: Harness, flask_server: Any) -> None:
        assert 404 == httpx.get(flask_server.url + "/api/v1/items/0").status_code
        span = server_span(telemetry, "GET /api/<version>/items/<int:item_id>")
        assert StatusCode.UNSET == span.status.status_code

    def test_unmatched(self, telemetry: Harness, flask_server: Any) -> None:
        assert 404 == httpx.get(flask_server.url + "/nowhere/1").status_code
        span = server_span(telemetry, "GET")
        assert "http.route" not in span.attributes
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status_code="404"
        )

    def test_exception_turned_into_500(self, telemetry: Harness, flask_server: Any) -> None:
        response = httpx.get(flask_server.url + "/boom")
        assert 500 == response.status_code
        span = server_span(telemetry, "GET /boom")
        assert StatusCode.ERROR == span.status.status_code
        assert "RuntimeError" == span.attributes["error.type"]
        [event] = [e for e in span.events if e.name == "exception"]
        assert "kaboom" == event.attributes["exception.message"]
        assert f"{span.context.span_id:016x}" == response.headers["traceparent"].split("-")[2]
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))

    def test_trace_continuation(self, telemetry: Harness, flask_server: Any) -> None:
        response = httpx.get(
            flask_server.url + "/api/v2/items/1",
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        span = server_span(telemetry, "GET /api/<version>/items/<int:item_id>")
        assert int(TRACE_ID, 16) == span.context.trace_id
        assert int(PARENT_ID, 16) == span.parent.span_id
        assert TRACE_ID == response.headers["traceparent"].split("-")[1]

    def test_excluded_path(self, telemetry: Harness, flask_server: Any) -> None:
        assert "ok" == httpx.get(flask_server.url + "/healthz").text
        httpx.get(flask_server.url + "/api/v1/items/1")
        server_span(telemetry, "GET /api/<version>/items/<int:item_id>")
        assert 1 == len(telemetry.spans())

    def test_streaming_chunks_reach_the_client_as_they_are_sent(
        self, telemetry: Harness, flask_server: Any, gate: Gate
    ) -> None:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", flask_server.url + "/events") as response,
        ):
            chunks = response.iter_raw()
            assert b"data: one\n\n" == next(chunks)
            assert ["one"] == [name for name, _ in gate.produced]
            assert [] == telemetry.find_spans("GET /events")
            gate.release.set()
            assert b"data: 0\n\n" == b"".join(chunks)
        span = server_span(telemetry, "GET /events")
        assert StatusCode.UNSET == span.status.status_code
        assert span.end_time / 1e9 >= gate.produced[-1][1]
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))

    def test_failure_after_the_response_started_keeps_its_status(
        self, flask_server: Any, broken_stream: Callable[[str, str], None]
    ) -> None:
        broken_stream(flask_server.url + "/broken", "/broken")

    def test_client_disconnect_mid_stream(
        self, telemetry: Harness, flask_server: Any, gate: Gate
    ) -> None:
        gate.stop_after_first = False
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", flask_server.url + "/events") as response,
        ):
            assert b"data: one\n\n" == next(response.iter_raw())
        gate.release.set()
        span = server_span(telemetry, "GET /events")
        assert StatusCode.ERROR == span.status.status_code
        assert "client_disconnected" == span.attributes["error.type"]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route="/events", status_code="499"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))

    def test_instrumenting_twice_records_once(
        self, telemetry: Harness, serve_wsgi: Any, gate: Gate
    ) -> None:
        app = instrument_flask(instrument_flask(flask_app(gate)))
        server = serve_wsgi(app)
        httpx.get(server.url + "/api/v1/items/1")
        server_span(telemetry, "GET /api/<version>/items/<int:item_id>")


def plain_app(environ: MutableMapping[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path.startswith("/orders/"):
        start_response("201 Created", [("content-type", "text/plain")])
        return [b"created"]
    if path == "/crash":
        raise KeyError("missing")
    start_response("404 Not Found", [("content-type", "text/plain")])
    return [b"no"]


def resolve(environ: MutableMapping[str, Any]) -> str | None:
    return "/orders/{id}" if environ["PATH_INFO"].startswith("/orders/") else None


@PLUGIN
class TestPlainWSGI:
    """Any WSGI app: a route resolver names routes; an escaping exception is a 500."""

    def test_route_resolver(self, telemetry: Harness, serve_wsgi: Any) -> None:
        server = serve_wsgi(WSGIMiddleware(plain_app, route_resolver=resolve))
        assert 201 == httpx.post(server.url + "/orders/12").status_code
        span = server_span(telemetry, "POST /orders/{id}")
        assert 201 == span.attributes["http.response.status_code"]
        assert 1 == telemetry.value(
            "http_requests_total", method="POST", route="/orders/{id}", status_code="201"
        )

    def test_escaping_exception(self, telemetry: Harness, serve_wsgi: Any) -> None:
        server = serve_wsgi(WSGIMiddleware(plain_app, route_resolver=resolve))
        assert 500 == httpx.get(server.url + "/crash").status_code
        span = server_span(telemetry, "GET")
        assert StatusCode.ERROR == span.status.status_code
        assert "KeyError" == span.attributes["error.type"]
        assert any(e.name == "exception" for e in span.events)
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status_code="500"
        )
        assert telemetry.wait_until(lambda: 0 == in_flight(telemetry))

    def test_disabled_pass_through(self, serve_wsgi: Any) -> None:
        server = serve_wsgi(WSGIMiddleware(plain_app))
        response = httpx.post(server.url + "/orders/1")
        assert "created" == response.text
        assert "traceparent" not in response.headers


def _test_client_app() -> Flask:
    """A small Flask app exercised the way Flask's own test suite exercises apps."""
    app = Flask("unclosed")
    app.config["SECRET_KEY"] = "test"

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, Any]:
        if item_id == 0:
            abort(404)
        return {"id": item_id}

    @app.post("/echo")
    def echo() -> dict[str, Any]:
        from flask import request

        return {"got": request.get_json()}

    @app.get("/old")
    def old() -> Any:
        from flask import redirect

        return redirect("/items/1")

    @app.get("/session")
    def session_view() -> str:
        from flask import session

        session["seen"] = session.get("seen", 0) + 1
        return str(session["seen"])

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    @app.errorhandler(RuntimeError)
    def failed(exc: RuntimeError) -> tuple[str, int]:
        # handled, so not logged: a log capture keeping the record would keep the
        # traceback's frames, the test client's among them, and its response alive
        return "failed", 500

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            for n in range(5):
                yield f"{n}\n"

        return Response(stream_with_context(chunks()))

    return instrument_flask(app)


def _lazy_app(environ: MutableMapping[str, Any], start_response: Any) -> Iterator[bytes]:
    # a generator application: nothing happens, start_response included, until iterated
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"late"


@PLUGIN
class TestUnclosedResponses:
    """A response the caller neither reads to its end nor closes (the Flask test
    client, an in-process caller) ends when it is garbage-collected: counted once
    under its status, its span ended, in flight back to 0."""

    def test_flask_test_client_requests_are_all_recorded(self, telemetry: Harness) -> None:
        import gc

        app = _test_client_app()
        client = app.test_client()
        expected: dict[tuple[str, str, str], int] = {}

        def sent(method: str, route: str, status: int, times: int = 1) -> None:
            key = (method, route, str(status))
            expected[key] = expected.get(key, 0) + times

        for n in range(1, 41):
            assert n == client.get(f"/items/{n}").json["id"]  # type: ignore[index]
        sent("GET", "/items/<int:item_id>", 200, 40)
        for _ in range(10):
            assert 404 == client.get("/items/0").status_code
        sent("GET", "/items/<int:item_id>", 404, 10)
        for n in range(10):
            assert {"got": n} == client.post("/echo", json=n).json
        sent("POST", "/echo", 200, 10)
        assert 200 == client.get("/old", follow_redirects=True).status_code
        sent("GET", "/old", 302)
        sent("GET", "/items/<int:item_id>", 200)
        with client:
            for n in range(1, 4):
                assert str(n) == client.get("/session").text
        sent("GET", "/session", 200, 3)
        assert 500 == client.get("/boom").status_code
        sent("GET", "/boom", 500)
        streamed = client.get("/stream")
        assert b"0\n" == next(streamed.response)  # type: ignore[call-overload]  # read part of it
        del streamed
        sent("GET", "/stream", 200)
        assert b"0\n1\n2\n3\n4\n" == client.get("/stream", buffered=True).data
        sent("GET", "/stream", 200)
        closed = client.get("/items/7")
        assert {"id": 7} == closed.json
        closed.close()  # a caller that reads it and closes it
        del closed
        sent("GET", "/items/<int:item_id>", 200)
        client.get("/items/8").close()  # closed unread: the caller left early
        sent("GET", "/items/<int:item_id>", 499)

        gc.collect()
        assert 0 == in_flight(telemetry)
        for (method, route, status), count in expected.items():
            assert count == telemetry.value(
                "http_requests_total", method=method, route=route, status_code=status
            ), (method, route, status)
        total = sum(
            p.value
            for p in telemetry.metric("http_requests_total").points
            if isinstance(p, NumberPoint)
        )
        assert sum(expected.values()) == total
        assert sum(expected.values()) == len(telemetry.find_spans(kind="SERVER"))

    def test_a_held_response_stays_in_flight_until_it_is_collected(
        self, telemetry: Harness
    ) -> None:
        import gc

        client = _test_client_app().test_client()
        held = client.get("/items/3")
        assert 1 == in_flight(telemetry)
        assert [] == telemetry.find_spans(kind="SERVER")
        before = time.time_ns()
        del held
        gc.collect()
        assert 0 == in_flight(telemetry)
        span = server_span(telemetry, "GET /items/<int:item_id>")
        assert 200 == span.attributes["http.response.status_code"]
        assert StatusCode.UNSET == span.status.status_code
        assert span.end_time >= before  # ended by the collection

    def test_a_body_never_started_ends_as_an_incomplete_response(self, telemetry: Harness) -> None:
        import gc

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            return lambda data: None

        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
        body = WSGIMiddleware(_lazy_app)(environ, start_response)
        assert 1 == in_flight(telemetry)
        del body
        gc.collect()
        assert 0 == in_flight(telemetry)
        [span] = telemetry.find_spans(kind="SERVER")
        assert StatusCode.ERROR == span.status.status_code
        assert "incomplete_response" == dict(span.attributes or {})["error.type"]
        assert 1 == telemetry.value(
            "http_requests_total", method="GET", route=UNMATCHED_ROUTE, status_code="500"
        )
