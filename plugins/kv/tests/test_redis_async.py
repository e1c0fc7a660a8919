"""redis.asyncio against a real Redis: the same metrics and spans as the sync client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from limelight_kv import instrument_redis, plugin
from limelight_testsupport import free_port
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from limelight.testing import Harness

pytestmark = [pytest.mark.limelight(plugins=[plugin]), pytest.mark.asyncio]


def client(server: tuple[str, int], namespace: str = "sessions", **kwargs: Any) -> aredis.Redis:
    return instrument_redis(aredis.Redis(host=server[0], port=server[1], **kwargs), namespace)


def pipeline(r: aredis.Redis, transaction: bool = True) -> Any:
    """A pipeline of *r*, typed loosely: redis-py's stubs do not allow command chaining."""
    return r.pipeline(transaction=transaction)


def count(telemetry: Harness, op: str, result: str, namespace: str = "sessions") -> float:
    return telemetry.value("kv_ops_total", namespace=namespace, op=op, result=result, default=0)


class TestAsyncCommands:
    """Awaited commands are counted and timed like sync ones."""

    async def test_get_set_delete(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        try:
            assert await r.set(prefix + "a", "1")
            assert b"1" == await r.get(prefix + "a")
            assert await r.get(prefix + "missing") is None
            assert 1 == await r.delete(prefix + "a")
        finally:
            await r.aclose()
        assert 1 == count(telemetry, "set", "ok")
        assert 1 == count(telemetry, "get", "ok")
        assert 1 == count(telemetry, "get", "not_found")
        assert 1 == count(telemetry, "delete", "ok")
        hist = telemetry.histogram(
            "kv_op_duration_seconds", namespace="sessions", op="get", result="not_found"
        )
        assert 1 == hist.count

    async def test_wrong_type_error(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        try:
            await r.set(prefix + "s", "string")
            with pytest.raises(redis.ResponseError, match=r"^WRONGTYPE"):
                await r.lpush(prefix + "s", "x")
        finally:
            await r.aclose()
        assert 1 == count(telemetry, "lpush", "error")

    async def test_unreachable_server(self, telemetry: Harness) -> None:
        r = client(("127.0.0.1", free_port()), retry=Retry(NoBackoff(), 0))
        try:
            with pytest.raises(redis.ConnectionError):
                await r.get("a")
        finally:
            await r.aclose()
        assert 1 == count(telemetry, "get", "error")

    async def test_dropped_connection_is_an_error(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server, retry=Retry(NoBackoff(), 0), single_connection_client=True)
        admin = aredis.Redis(host=redis_server[0], port=redis_server[1])
        try:
            victim = await r.client_id()

            async def kill() -> None:
                await asyncio.sleep(0.3)
                await admin.client_kill_filter(_id=str(victim))

            # the server drops the connection while the client waits for a reply
            killer = asyncio.create_task(kill())
            with pytest.raises(redis.ConnectionError):
                await r.blpop([prefix + "queue"], timeout=10)
            await killer
            assert 1 == count(telemetry, "blpop", "error")
            assert await r.set(prefix + "a", "v")
            assert b"v" == await r.get(prefix + "a")
        finally:
            await r.aclose()
            await admin.aclose()

    async def test_cancelled_operation_is_an_error(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(r.blpop([prefix + "queue"], timeout=5), 0.2)
        finally:
            await r.aclose()
        assert 1 == count(telemetry, "blpop", "error")

    async def test_concurrent_commands(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        try:
            await asyncio.gather(*(r.set(f"{prefix}{i}", i) for i in range(50)))
            values = await asyncio.gather(*(r.get(f"{prefix}{i}") for i in range(60)))
        finally:
            await r.aclose()
        assert [str(i).encode() for i in range(50)] == values[:50]
        assert 50 == count(telemetry, "set", "ok")
        assert 50 == count(telemetry, "get", "ok")
        assert 10 == count(telemetry, "get", "not_found")


class TestAsyncPipelines:
    """Async pipelines and transactions are one operation each."""

    async def test_transaction(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        try:
            async with pipeline(r) as pipe:
                pipe.set(prefix + "a", 1).incr(prefix + "a")
                assert [True, 2] == await pipe.execute()
            pipe = pipeline(r, transaction=False)
            pipe.get(prefix + "a")
            assert [b"2"] == await pipe.execute()
        finally:
            await r.aclose()
        assert 1 == count(telemetry, "multi", "ok")
        assert 1 == count(telemetry, "pipeline", "ok")

    async def test_watch(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        try:
            await r.set(prefix + "n", 1)

            async def bump(pipe: Any) -> None:
                value = int(await pipe.get(prefix + "n"))
                pipe.multi()
                pipe.set(prefix + "n", value + 1)

            assert [True] == await r.transaction(bump, prefix + "n")
            assert b"2" == await r.get(prefix + "n")
        finally:
            await r.aclose()
        assert 1 == count(telemetry, "watch", "ok")
        assert 1 == count(telemetry, "multi", "ok")

    async def test_error_inside_pipeline(
        self, telemetry: Harness, redis_server: Any, prefix: str
    ) -> None:
        r = client(redis_server)
        try:
            await r.set(prefix + "s", "string")
            pipe = pipeline(r)
            pipe.lpush(prefix + "s", "x")
            with pytest.raises(redis.ResponseError):
                await pipe.execute()
        finally:
            await r.aclose()
        assert 1 == count(telemetry, "multi", "error")


class TestAsyncSpans:
    """Opted-in spans of async commands and pipelines."""

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    async def test_spans(self, telemetry: Harness, redis_server: Any, prefix: str) -> None:
        r = client(redis_server)
        try:
            await r.get(prefix + "a")
            await pipeline(r).get(prefix + "a").get(prefix + "b").execute()
            await r.set(prefix + "s", "x")
            with pytest.raises(redis.ResponseError):
                await r.lpush(prefix + "s", "x")
        finally:
            await r.aclose()
        get = telemetry.span(name="GET", kind="client")
        assert "redis" == (get.attributes or {})["db.system.name"]
        batch = telemetry.span(name="MULTI GET")
        assert 2 == (batch.attributes or {})["db.operation.batch.size"]
        failed = telemetry.span(name="LPUSH", status="error")
        assert "WRONGTYPE" == (failed.attributes or {})["error.type"]
