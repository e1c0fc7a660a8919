"""Added CPU per Redis operation: limelight-kv versus opentelemetry-instrumentation-redis.

One run, one process, Redis on loopback (127.0.0.1:6379 unless ``BENCH_REDIS_URL``
says otherwise). Every variant is its own client of the same server; rounds are
interleaved so that machine noise hits every variant alike. The figure is process
CPU time (``time.process_time``: the Redis server's work is not in it) per
operation, minus the bare client's, as the median of the rounds.

    nox -s "bench(kv)"
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import redis
from _common import comparison, cpu_per_op, otel_provider, start_limelight
from limelight_kv import MemoryStore, instrument_redis
from limelight_kv import plugin as kv_plugin
from opentelemetry.instrumentation.redis import RedisInstrumentor

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
OPS = int(os.environ.get("BENCH_OPS", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "21"))
TARGET_US = 8.0


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 1):
            return True
    except OSError:
        return False


def main() -> int:
    if not _reachable(URL):
        print(f"Redis is not reachable at {URL}; nothing measured", file=sys.stderr)
        return 1
    prefix = f"bench-kv:{uuid.uuid4().hex[:8]}:"

    telemetry = start_limelight(kv_plugin, "bench-kv")
    provider = otel_provider()

    bare = redis.Redis.from_url(URL)
    metrics = instrument_redis(redis.Redis.from_url(URL), "bench", spans=False)
    traced = instrument_redis(redis.Redis.from_url(URL), "bench", spans=True)
    otel = redis.Redis.from_url(URL)
    RedisInstrumentor.instrument_client(otel, tracer_provider=provider)

    key = prefix + "hit"
    bare.set(key, b"x" * 64)
    clients = {
        "bare redis-py": bare,
        "limelight-kv (metrics)": metrics,
        "limelight-kv (metrics + span)": traced,
        "opentelemetry-instrumentation-redis (span)": otel,
    }
    ops: dict[str, Callable[[redis.Redis, int], Any]] = {
        "GET hit": lambda c, i: c.get(key),
        "GET miss": lambda c, i: c.get(prefix + "missing"),
        "SET": lambda c, i: c.set(prefix + "w", b"v"),
    }

    try:
        for client in clients.values():  # warm up connections and caches
            for op in ops.values():
                for i in range(200):
                    op(client, i)
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(ROUNDS):
            for op_name, op in ops.items():
                for name, client in clients.items():
                    cost = cpu_per_op(lambda i, c=client, o=op: o(c, i), OPS)
                    results.setdefault((op_name, name), []).append(cost)

        memory = MemoryStore("bench-memory", spans=False)
        plain: dict[str, Any] = {}
        memory.set("k", 1)
        plain["k"] = 1
        mem_rounds: dict[str, list[float]] = {"dict.get": [], "MemoryStore.get": []}
        for _ in range(ROUNDS):
            mem_rounds["dict.get"].append(cpu_per_op(lambda i: plain.get("k"), OPS * 10))
            mem_rounds["MemoryStore.get"].append(cpu_per_op(lambda i: memory.get("k"), OPS * 10))
    finally:
        bare.delete(key, prefix + "w")
        telemetry.stop()
        provider.shutdown()

    print(f"Redis {URL}, {OPS} operations x {ROUNDS} rounds, CPU µs per operation (median)")
    print(f"{'operation':10} {'variant':45} {'CPU µs/op':>10} {'added µs':>9}")
    for op_name in ops:
        base = statistics.median(results[(op_name, "bare redis-py")])
        added: dict[str, float] = {}
        for name in clients:
            cost = statistics.median(results[(op_name, name)])
            added[name] = cost - base
            extra = "" if name == "bare redis-py" else f"{cost - base:+9.2f}"
            print(f"{op_name:10} {name:45} {cost:10.2f} {extra:>9}")
        ours = added["limelight-kv (metrics)"]
        theirs = added["opentelemetry-instrumentation-redis (span)"]
        print(f"{'':10} {comparison(ours, theirs, TARGET_US)}")
    base = statistics.median(mem_rounds["dict.get"])
    store = statistics.median(mem_rounds["MemoryStore.get"])
    print(f"in-memory: dict.get {base:.2f} µs, MemoryStore.get (metrics) {store:.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
