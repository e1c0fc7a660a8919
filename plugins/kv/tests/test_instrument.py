"""The instrument contract: every redis-py client made while instrumented, against a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import limelight_kv
import pytest
import redis
import redis.asyncio as aredis
import structlog.testing
from limelight_kv import (
    default_namespace,
    instrument,
    instrument_redis,
    is_client_instrumented,
    is_instrumented,
    plugin,
    uninstrument,
)
from limelight_testsupport.imports import run_hiding

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])


@pytest.fixture(autouse=True)
def _uninstrumented() -> Iterator[None]:
    """Every test starts and ends with redis-py as it was."""
    uninstrument()
    yield
    uninstrument()


def count(telemetry: Harness, namespace: str, op: str, result: str) -> float:
    return telemetry.value("kv_ops_total", namespace=namespace, op=op, result=result, default=0)


def _inits() -> list[object]:
    return [vars(redis.Redis)["__init__"], vars(aredis.Redis)["__init__"]]


class TestContract:
    """Idempotent, exactly undone."""

    def test_instrument_once(self) -> None:
        assert not is_instrumented()
        assert ("redis",) == instrument()
        assert () == instrument()
        assert () == instrument("redis")
        assert is_instrumented() and is_instrumented("redis")
        assert ("redis",) == uninstrument()
        assert () == uninstrument()
        assert not is_instrumented("redis")

    def test_uninstrument_puts_back_the_very_functions(self) -> None:
        before = _inits()
        instrument()
        assert all(a is not b for a, b in zip(before, _inits(), strict=True))
        uninstrument()
        assert all(a is b for a, b in zip(before, _inits(), strict=True))

    def test_unknown_library_is_refused(self) -> None:
        with pytest.raises(ValueError, match="cannot instrument 'memcache'"):
            instrument("memcache")

    def test_is_instrumented_of_a_client_is_deprecated(self) -> None:
        r = instrument_redis(redis.Redis(), "sessions")
        with pytest.deprecated_call(match="is_client_instrumented"):
            assert is_instrumented(r)


class TestClientsMadeAfterwards:
    """Every client made while instrumented records, with a default namespace."""

    def test_a_new_client_records_under_redis(
        self, telemetry: Harness, redis_server: tuple[str, int], prefix: str
    ) -> None:
        before = redis.Redis(host=redis_server[0], port=redis_server[1])
        instrument()
        r = redis.Redis(host=redis_server[0], port=redis_server[1])
        from_url = redis.Redis.from_url(f"redis://{redis_server[0]}:{redis_server[1]}/0")
        assert type(r) is redis.Redis
        assert is_client_instrumented(r) and is_client_instrumented(from_url)
        assert not is_client_instrumented(before)  # made before: left alone
        r.set(prefix + "a", "1")
        from_url.get(prefix + "a")
        pipe: Any = r.pipeline()  # redis-py's stubs do not allow command chaining
        pipe.get(prefix + "a").get(prefix + "b").execute()
        before.get(prefix + "a")
        assert 1 == count(telemetry, "redis", "set", "ok")
        assert 1 == count(telemetry, "redis", "get", "ok")
        assert 1 == count(telemetry, "redis", "multi", "ok")
        assert [] == [s for s in telemetry.series("kv_ops_total") if s["namespace"] != "redis"]

    def test_the_database_index_names_other_databases(
        self, telemetry: Harness, redis_server: tuple[str, int], prefix: str
    ) -> None:
        instrument()
        r = redis.Redis(host=redis_server[0], port=redis_server[1], db=3)
        assert "redis/3" == default_namespace(r)
        r.get(prefix + "missing")  # a read: the shared database 3 is not written to
        assert 1 == count(telemetry, "redis/3", "get", "not_found")

    @pytest.mark.asyncio
    async def test_an_asyncio_client_records_too(
        self, telemetry: Harness, redis_server: tuple[str, int], prefix: str
    ) -> None:
        instrument()
        r = aredis.Redis(host=redis_server[0], port=redis_server[1])
        try:
            await r.set(prefix + "a", "1")
            assert b"1" == await r.get(prefix + "a")
        finally:
            await r.aclose()
        assert 1 == count(telemetry, "redis", "set", "ok")
        assert 1 == count(telemetry, "redis", "get", "ok")

    def test_an_explicit_namespace_stays(
        self, telemetry: Harness, redis_server: tuple[str, int], prefix: str
    ) -> None:
        instrument()
        sessions = instrument_redis(
            redis.Redis(host=redis_server[0], port=redis_server[1]), "sessions"
        )
        sessions.get(prefix + "a")
        uninstrument()  # undoes what instrument() did, not what the application asked for
        assert is_client_instrumented(sessions)
        sessions.get(prefix + "a")
        assert 2 == count(telemetry, "sessions", "get", "not_found")
        assert 0 == count(telemetry, "redis", "get", "not_found")

    def test_uninstrument_undoes_the_clients_it_made(
        self, telemetry: Harness, redis_server: tuple[str, int], prefix: str
    ) -> None:
        instrument()
        r = redis.Redis(host=redis_server[0], port=redis_server[1])
        uninstrument()
        assert not is_client_instrumented(r)
        assert "execute_command" not in vars(r)
        r.get(prefix + "a")
        assert [] == telemetry.series("kv_ops_total")

    def test_a_failure_to_instrument_leaves_the_client_working(
        self,
        telemetry: Harness,
        redis_server: tuple[str, int],
        prefix: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("changed redis-py")

        monkeypatch.setattr(limelight_kv._redis, "_instrument", broken)
        instrument()
        with structlog.testing.capture_logs() as logs:
            r = redis.Redis(host=redis_server[0], port=redis_server[1])
            redis.Redis(host=redis_server[0], port=redis_server[1])
        assert r.set(prefix + "a", "1") is True
        assert not is_client_instrumented(r)
        assert [("kv", "redis instrument")] == [
            (e["component"], e["where"]) for e in logs if "component" in e
        ]


class TestImports:
    """redis-py is imported only to be instrumented, and never when it is not installed."""

    def test_imported_only_by_instrument(self) -> None:
        result = run_hiding(
            [],
            """
            import limelight_kv
            before = loaded("redis")
            done = limelight_kv.instrument()
            report(before=before, done=done, after=loaded("redis"))
            """,
        )
        assert {"before": [], "done": ["redis"], "after": ["redis"]} == result

    def test_a_missing_library_is_never_imported(self) -> None:
        result = run_hiding(
            ["redis"],
            """
            import limelight_kv
            done = limelight_kv.instrument()
            try:
                limelight_kv.instrument("redis")
            except ImportError as exc:
                refused = type(exc).__name__
            store = limelight_kv.MemoryStore("cache")
            store.set("a", 1)
            report(done=done, refused=refused, value=store.get("a"), after=loaded("redis"))
            """,
        )
        assert {"done": [], "refused": "ModuleNotFoundError", "value": 1, "after": []} == result
