"""redis-py (sync) against a real Redis: counts, results, errors, pipelines and spans."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from limelight_kv import instrument_redis, is_client_instrumented, plugin, uninstrument_redis
from limelight_testsupport import free_port
from redis.backoff import NoBackoff
from redis.retry import Retry

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])


def client(server: tuple[str, int], namespace: str = "sessions", **kwargs: Any) -> redis.Redis:
    return instrument_redis(redis.Redis(host=server[0], port=server[1], **kwargs), namespace)


def pipeline(r: redis.Redis, transaction: bool = True) -> Any:
    """A pipeline of *r*, typed loosely: redis-py's stubs do not allow command chaining."""
    return r.pipeline(transaction=transaction)


def count(telemetry: Harness, op: str, result: str, namespace: str = "sessions") -> float:
    return telemetry.value("kv_ops_total", namespace=namespace, op=op, result=result, default=0)


class TestCommands:
    """Every command is counted and timed with its op and result."""

    def test_get_set_delete(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        assert r.set(prefix + "a", "1") is True
        assert b"1" == r.get(prefix + "a")
        assert r.get(prefix + "missing") is None
        assert 1 == r.delete(prefix + "a")
        assert 1 == count(telemetry, "set", "ok")
        assert 1 == count(telemetry, "get", "ok")
        assert 1 == count(telemetry, "get", "not_found")
        assert 1 == count(telemetry, "delete", "ok")
        assert 0 == count(telemetry, "get", "error")
        hist = telemetry.histogram(
            "kv_op_duration_seconds", namespace="sessions", op="get", result="ok"
        )
        assert 1 == hist.count
        assert 0 < hist.sum < 5

    def test_other_commands_use_their_lowercased_name(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        r.incr(prefix + "n")
        r.hset(prefix + "h", "f", "v")
        r.expire(prefix + "n", 60)
        r.ping()
        ops = {s["op"] for s in telemetry.series("kv_ops_total")}
        assert {"incrby", "hset", "expire", "ping"} <= ops

    def test_reads_that_find_nothing(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        r.hset(prefix + "h", "f", "v")
        assert {} == r.hgetall(prefix + "nohash")
        assert {b"f": b"v"} == r.hgetall(prefix + "h")
        assert 0 == r.exists(prefix + "nothing")
        assert [None, None] == r.mget(prefix + "x", prefix + "y")
        assert r.hget(prefix + "h", "other") is None
        assert 1 == count(telemetry, "hgetall", "not_found")
        assert 1 == count(telemetry, "hgetall", "ok")
        assert 1 == count(telemetry, "exists", "not_found")
        assert 1 == count(telemetry, "mget", "not_found")
        assert 1 == count(telemetry, "hget", "not_found")

    def test_wrong_type_error_is_counted_and_reraised_unchanged(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        bare = redis.Redis(host=redis_server[0], port=redis_server[1])
        bare.set(prefix + "s", "string")
        with pytest.raises(redis.ResponseError) as bare_error:
            bare.lpush(prefix + "s", "x")
        r = client(redis_server)
        with pytest.raises(redis.ResponseError) as error:
            r.lpush(prefix + "s", "x")
        assert type(bare_error.value) is type(error.value)
        assert bare_error.value.args == error.value.args
        assert str(error.value).startswith("WRONGTYPE")
        assert 1 == count(telemetry, "lpush", "error")
        assert 0 == count(telemetry, "lpush", "ok")
        assert (
            1
            == telemetry.histogram(
                "kv_op_duration_seconds", namespace="sessions", op="lpush", result="error"
            ).count
        )

    def test_dropped_connection_is_an_error(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server, retry=Retry(NoBackoff(), 0), single_connection_client=True)
        victim = r.client_id()
        admin = redis.Redis(host=redis_server[0], port=redis_server[1])
        # the server drops the connection while the client waits for a reply
        killer = threading.Timer(0.3, admin.client_kill_filter, kwargs={"_id": victim})
        killer.start()
        try:
            with pytest.raises(redis.ConnectionError):
                r.blpop([prefix + "queue"], timeout=10)
        finally:
            killer.join()
        assert 1 == count(telemetry, "blpop", "error")
        assert r.set(prefix + "a", "v")
        assert b"v" == r.get(prefix + "a")

    def test_unreachable_server_is_an_error(self, telemetry: Harness) -> None:
        r = client(("127.0.0.1", free_port()), retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.ConnectionError):
            r.get("anything")
        assert 1 == count(telemetry, "get", "error")

    def test_namespaces_are_separate(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        sessions = client(redis_server, "sessions")
        cache = client(redis_server, "cache")
        sessions.get(prefix + "a")
        cache.get(prefix + "a")
        cache.get(prefix + "a")
        assert 1 == count(telemetry, "get", "not_found", "sessions")
        assert 2 == count(telemetry, "get", "not_found", "cache")

    def test_key_values_never_become_labels(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        for i in range(20):
            r.set(f"{prefix}user:{i}", i)
        values = {v for s in telemetry.series("kv_ops_total") for v in s.values()}
        assert not any(prefix in v for v in values)
        assert 20 == count(telemetry, "set", "ok")

    def test_unusual_command_names_are_bounded(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        with pytest.raises(redis.ResponseError):
            r.execute_command(f"NOT A COMMAND {prefix}", "x")  # type: ignore[no-untyped-call]
        assert 1 == count(telemetry, "other", "error")


class TestPipelines:
    """A pipeline execution is one operation: op=multi (transaction) or op=pipeline."""

    def test_transaction_pipeline(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        with pipeline(r) as pipe:
            pipe.set(prefix + "a", 1).incr(prefix + "a").get(prefix + "a")
            assert [True, 2, b"2"] == pipe.execute()
        assert 1 == count(telemetry, "multi", "ok")
        assert 0 == count(telemetry, "set", "ok")

    def test_plain_pipeline(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        pipe = pipeline(r, transaction=False)
        pipe.set(prefix + "a", 1)
        pipe.get(prefix + "a")
        assert [True, b"1"] == pipe.execute()
        assert [] == pipe.execute()
        assert 1 == count(telemetry, "pipeline", "ok")

    def test_failed_command_in_pipeline_is_an_error(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        r.set(prefix + "s", "string")
        pipe = pipeline(r, transaction=False)
        pipe.get(prefix + "s").lpush(prefix + "s", "x")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            pipe.execute()
        pipe.get(prefix + "s").lpush(prefix + "s", "x")
        results = pipe.execute(raise_on_error=False)
        assert b"string" == results[0]
        assert isinstance(results[1], redis.ResponseError)
        assert 2 == count(telemetry, "pipeline", "error")

    def test_watch_and_transaction(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        r.set(prefix + "balance", 10)

        def withdraw(pipe: Any) -> None:
            balance = int(pipe.get(prefix + "balance"))
            pipe.multi()
            pipe.set(prefix + "balance", balance - 3)

        assert [True] == r.transaction(withdraw, prefix + "balance")
        assert b"7" == r.get(prefix + "balance")
        assert 1 == count(telemetry, "watch", "ok")
        assert 2 == count(telemetry, "get", "ok")  # one while watching, one after
        assert 1 == count(telemetry, "multi", "ok")

    def test_discarded_transaction_rolls_back(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        other = redis.Redis(host=redis_server[0], port=redis_server[1])
        r.set(prefix + "k", "before")
        with pipeline(r) as pipe:
            pipe.watch(prefix + "k")
            pipe.multi()
            pipe.set(prefix + "k", "mine")
            other.set(prefix + "k", "theirs")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert b"theirs" == r.get(prefix + "k")
        assert 1 == count(telemetry, "multi", "error")


class TestInstrumentation:
    """instrument_redis wraps one client only, once, and can be undone."""

    def test_other_clients_are_untouched(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        client(redis_server)
        plain = redis.Redis(host=redis_server[0], port=redis_server[1])
        plain.get(prefix + "a")
        assert "execute_command" not in vars(plain)
        assert [] == telemetry.series("kv_ops_total")

    def test_instrumenting_twice_counts_once(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server, "first")
        instrument_redis(r, "second")
        r.get(prefix + "a")
        assert 0 == count(telemetry, "get", "not_found", "first")
        assert 1 == count(telemetry, "get", "not_found", "second")

    def test_uninstrument(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        uninstrument_redis(r)
        assert not is_client_instrumented(r)
        r.get(prefix + "a")
        pipeline(r).get(prefix + "a").execute()
        assert [] == telemetry.series("kv_ops_total")

    def test_returns_the_same_client_of_the_same_class(self) -> None:
        r = redis.Redis()
        assert instrument_redis(r, "sessions") is r
        assert type(r) is redis.Redis

    def test_bad_arguments(self) -> None:
        with pytest.raises(TypeError, match="expected a redis-py client"):
            instrument_redis(object(), "sessions")
        with pytest.raises(ValueError, match="namespace"):
            instrument_redis(redis.Redis(), "")

    def test_passes_through_without_telemetry(self, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        assert r.set(prefix + "a", "1")
        assert b"1" == r.get(prefix + "a")

    def test_records_once_telemetry_starts(self, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        r.get(prefix + "before")
        with Harness(plugins=[plugin]) as harness:
            r.get(prefix + "during")
            assert 1 == count(harness, "get", "not_found")

    def test_plugin_not_loaded_means_nothing_recorded(self, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        with Harness() as harness:
            assert r.set(prefix + "a", "1")
            assert b"1" == r.get(prefix + "a")
            assert "kv_ops_total" not in harness.store


class TestSpans:
    """Spans are off by default; opted in, they follow the database conventions."""

    def test_off_by_default(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        r.get(prefix + "a")
        assert [] == telemetry.spans()

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_command_span(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        r.set(prefix + "secret", "value")
        r.get(prefix + "secret")
        span = telemetry.span(name="GET", kind="client", status="unset")
        attributes = dict(span.attributes or {})
        assert {
            "db.system.name": "redis",
            "db.operation.name": "GET",
            "db.namespace": "0",
            "server.address": redis_server[0],
            "limelight.kv.namespace": "sessions",
        } == {k: v for k, v in attributes.items() if k != "server.port"}
        for captured in telemetry.spans():
            text = captured.name + " ".join(map(str, (captured.attributes or {}).values()))
            assert prefix not in text
            assert "value" not in text

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_error_span(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        r.set(prefix + "s", "string")
        with pytest.raises(redis.ResponseError):
            r.lpush(prefix + "s", "x")
        span = telemetry.span(name="LPUSH", status="error")
        assert "WRONGTYPE" == (span.attributes or {})["error.type"]
        assert "WRONGTYPE" == (span.attributes or {})["db.response.status_code"]
        assert not span.status.description

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_unusual_command_name_stays_out_of_the_span(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        with pytest.raises(redis.ResponseError):
            r.execute_command(f"NOT A COMMAND {prefix}", "x")  # type: ignore[no-untyped-call]
        span = telemetry.span(name="other", status="error")
        assert "other" == (span.attributes or {})["db.operation.name"]

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_connection_error_span(self, telemetry: Harness) -> None:
        r = client(("127.0.0.1", free_port()), retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.ConnectionError):
            r.get("a")
        span = telemetry.span(name="GET", status="error")
        assert "redis.exceptions.ConnectionError" == (span.attributes or {})["error.type"]

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_pipeline_span(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        pipeline(r).set(prefix + "a", 1).set(prefix + "b", 2).execute()
        pipeline(r, transaction=False).set(prefix + "a", 1).get(prefix + "b").execute()
        same = telemetry.span(name="MULTI SET")
        assert 2 == (same.attributes or {})["db.operation.batch.size"]
        assert "MULTI SET" == (same.attributes or {})["db.operation.name"]
        mixed = telemetry.span(name="PIPELINE")
        assert "PIPELINE" == (mixed.attributes or {})["db.operation.name"]

    def test_per_client_opt_in(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        traced = instrument_redis(
            redis.Redis(host=redis_server[0], port=redis_server[1]), "traced", spans=True
        )
        quiet = client(redis_server, "quiet")
        traced.get(prefix + "a")
        quiet.get(prefix + "a")
        assert ["traced"] == [
            (s.attributes or {})["limelight.kv.namespace"] for s in telemetry.spans()
        ]

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_span_is_child_of_the_current_span(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        tracer = telemetry.telemetry.tracer("test")
        r = client(redis_server)
        with tracer.start_as_current_span("request"):
            r.get(prefix + "a")
        parent = telemetry.span(name="request")
        assert telemetry.span(name="GET", parent=parent)


class TestRecordingFailures:
    """A failure inside the instrumentation never changes what the caller sees."""

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_broken_recording_is_swallowed(
        self,
        telemetry: Harness,
        redis_server: Any,
        prefix: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from limelight_kv._instruments import Bound, Op

        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("instrumentation bug")

        monkeypatch.setattr(Op, "reply", broken)
        monkeypatch.setattr(Op, "error", broken)
        monkeypatch.setattr(Op, "ok", broken)
        monkeypatch.setattr(Bound, "start_span", broken)
        r = client(redis_server)
        assert r.set(prefix + "s", "v")
        assert b"v" == r.get(prefix + "s")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            r.lpush(prefix + "s", "x")
        assert [b"v"] == pipeline(r).get(prefix + "s").execute()
        assert [] == telemetry.spans()
