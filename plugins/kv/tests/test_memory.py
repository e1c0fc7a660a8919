"""The in-memory store: behaviour, TTL and the metrics and spans of every operation."""

from __future__ import annotations

import threading

import pytest
from limelight_kv import MemoryStore, plugin

from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestMemoryStoreBehaviour:
    """get/set/put/delete behave like a small cache, with per-entry TTL."""

    def test_set_get_delete(self, telemetry: Harness) -> None:
        store: MemoryStore[str] = MemoryStore("sessions")
        store.set("a", "1")
        assert "1" == store.get("a")
        assert store.delete("a") is True
        assert store.get("a") is None
        assert "fallback" == store.get("a", "fallback")
        assert store.delete("a") is False

    def test_stored_none_is_found(self, telemetry: Harness) -> None:
        store: MemoryStore[None] = MemoryStore("sessions")
        store.set("a", None)
        assert store.get("a", "missing") is None
        assert 1 == telemetry.value("kv_ops_total", namespace="sessions", op="get", result="ok")

    def test_put_only_stores_when_absent(self, telemetry: Harness) -> None:
        store: MemoryStore[int] = MemoryStore("locks")
        assert store.put("job", 1) is True
        assert store.put("job", 2) is False
        assert 1 == store.get("job")
        store.set("job", 3)
        assert 3 == store.get("job")

    def test_ttl_expires_entries(self, telemetry: Harness) -> None:
        clock = FakeClock()
        store: MemoryStore[str] = MemoryStore("sessions", clock=clock)
        store.set("short", "s", ttl=10)
        store.set("forever", "f")
        clock.now += 9.9
        assert "s" == store.get("short")
        clock.now += 0.1
        assert store.get("short") is None
        assert "f" == store.get("forever")
        assert 1 == len(store)

    def test_put_replaces_an_expired_entry(self, telemetry: Harness) -> None:
        clock = FakeClock()
        store: MemoryStore[int] = MemoryStore("locks", clock=clock)
        assert store.put("job", 1, ttl=5)
        clock.now += 5
        assert store.put("job", 2, ttl=5)
        assert 2 == store.get("job")

    def test_delete_of_an_expired_entry_reports_nothing_removed(self, telemetry: Harness) -> None:
        clock = FakeClock()
        store: MemoryStore[int] = MemoryStore("locks", clock=clock)
        store.set("job", 1, ttl=1)
        clock.now += 2
        assert store.delete("job") is False

    @pytest.mark.parametrize("ttl", [0, -1, float("nan"), "10", True])
    def test_invalid_ttl_is_a_clear_error_and_stores_nothing(
        self, telemetry: Harness, ttl: object
    ) -> None:
        store: MemoryStore[int] = MemoryStore("sessions")
        with pytest.raises(ValueError, match="ttl must be a positive number"):
            store.set("a", 1, ttl=ttl)  # type: ignore[arg-type]
        assert store.get("a") is None
        assert 1 == telemetry.value("kv_ops_total", namespace="sessions", op="set", result="error")

    def test_works_without_telemetry(self) -> None:
        store: MemoryStore[int] = MemoryStore("sessions")
        store.set("a", 1)
        assert 1 == store.get("a")
        assert store.put("a", 2) is False
        assert store.delete("a")

    def test_threads_do_not_lose_writes_or_counts(self, telemetry: Harness) -> None:
        store: MemoryStore[int] = MemoryStore("counter")

        def work(n: int) -> None:
            for i in range(500):
                store.set((n, i), i)
                store.get((n, i))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 2000 == len(store)
        assert 2000 == telemetry.value("kv_ops_total", namespace="counter", op="set", result="ok")
        assert 2000 == telemetry.value("kv_ops_total", namespace="counter", op="get", result="ok")


class TestMemoryStoreMetrics:
    """Each operation is counted and timed by namespace, op and result."""

    def test_counts_per_op_and_result(self, telemetry: Harness) -> None:
        store: MemoryStore[str] = MemoryStore("sessions")
        store.set("a", "1")
        store.put("b", "2")
        store.get("a")
        store.get("nope")
        store.get("nope")
        store.delete("a")

        def count(op: str, result: str) -> float:
            return telemetry.value(
                "kv_ops_total", namespace="sessions", op=op, result=result, default=0
            )

        assert 1 == count("set", "ok")
        assert 1 == count("put", "ok")
        assert 1 == count("get", "ok")
        assert 2 == count("get", "not_found")
        assert 1 == count("delete", "ok")
        assert 0 == count("get", "error")
        hist = telemetry.histogram(
            "kv_op_duration_seconds", namespace="sessions", op="get", result="not_found"
        )
        assert 2 == hist.count
        assert 0 < hist.sum < 1

    def test_writes_have_no_not_found_series(self, telemetry: Harness) -> None:
        store: MemoryStore[str] = MemoryStore("sessions")
        store.set("a", "1")
        store.delete("a")
        results = {(s["op"], s["result"]) for s in telemetry.series("kv_ops_total")}
        assert {("set", "ok"), ("set", "error"), ("delete", "ok"), ("delete", "error")} == results

    def test_an_unhashable_key_raises_unchanged_and_counts_an_error(
        self, telemetry: Harness
    ) -> None:
        store: MemoryStore[int] = MemoryStore("sessions")
        with pytest.raises(TypeError, match="unhashable"):
            store.get(["not", "hashable"])  # type: ignore[call-overload]
        assert 1 == telemetry.value("kv_ops_total", namespace="sessions", op="get", result="error")

    def test_stores_share_a_namespace(self, telemetry: Harness) -> None:
        one: MemoryStore[int] = MemoryStore("cache")
        two: MemoryStore[int] = MemoryStore("cache")
        one.set("a", 1)
        two.set("a", 1)
        assert 2 == telemetry.value("kv_ops_total", namespace="cache", op="set", result="ok")

    def test_no_spans_by_default(self, telemetry: Harness) -> None:
        store: MemoryStore[int] = MemoryStore("sessions")
        store.set("a", 1)
        store.get("a")
        assert [] == telemetry.spans()

    def test_namespace_must_be_given(self) -> None:
        with pytest.raises(ValueError, match="namespace must be a non-empty string"):
            MemoryStore("")


class TestMemoryStoreSpans:
    """With spans on, every operation is a CLIENT span that never carries the key."""

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_span_per_operation(self, telemetry: Harness) -> None:
        store: MemoryStore[str] = MemoryStore("sessions")
        store.set("secret-key", "secret-value")
        store.get("secret-key")
        span = telemetry.span(name="get", kind="client")
        assert {
            "db.system.name": "memory",
            "db.operation.name": "get",
            "limelight.kv.namespace": "sessions",
        } == dict(span.attributes or {})
        for captured in telemetry.spans():
            values = " ".join(str(v) for v in (captured.attributes or {}).values())
            assert "secret" not in values + captured.name

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_failed_operation_marks_the_span(self, telemetry: Harness) -> None:
        store: MemoryStore[int] = MemoryStore("sessions")
        with pytest.raises(ValueError, match="ttl"):
            store.set("a", 1, ttl=-5)
        span = telemetry.span(name="set", status="error")
        assert "ValueError" == (span.attributes or {})["error.type"]

    def test_per_store_opt_in(self, telemetry: Harness) -> None:
        traced: MemoryStore[int] = MemoryStore("traced", spans=True)
        quiet: MemoryStore[int] = MemoryStore("quiet")
        traced.set("a", 1)
        quiet.set("a", 1)
        assert ["traced"] == [
            (s.attributes or {})["limelight.kv.namespace"] for s in telemetry.spans()
        ]

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_per_store_opt_out(self, telemetry: Harness) -> None:
        store: MemoryStore[int] = MemoryStore("quiet", spans=False)
        store.set("a", 1)
        assert [] == telemetry.spans()


class TestMemoryStoreRecordingFailures:
    """A failure inside the instrumentation never changes what the caller sees."""

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_KV_SPANS": "true"})
    def test_broken_recording_is_swallowed(
        self, telemetry: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from limelight_kv._instruments import Bound, Op

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("instrumentation bug")

        for method in ("ok", "not_found", "error"):
            monkeypatch.setattr(Op, method, broken)
        monkeypatch.setattr(Bound, "start_span", broken)
        store: MemoryStore[int] = MemoryStore("sessions")
        store.set("a", 1)
        assert 1 == store.get("a")
        assert "missing" == store.get("b", "missing")
        assert store.put("a", 2) is False
        with pytest.raises(ValueError, match="ttl"):
            store.set("a", 3, ttl=-1)
        assert store.delete("a") is True
        assert [] == telemetry.spans()
