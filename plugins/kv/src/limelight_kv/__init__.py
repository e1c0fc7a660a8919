"""limelight-kv: rate, errors and latency of key-value operations.

Metrics by default (``kv_ops_total``, ``kv_op_duration_seconds`` by
namespace, op and result), CLIENT spans on request::

    import redis
    from limelight_kv import MemoryStore, instrument_redis

    sessions = instrument_redis(redis.Redis(), namespace="sessions")
    cache = MemoryStore("cache")

See ``docs/plugins/kv.md``.
"""

from __future__ import annotations

from ._instruments import MAX_OPS, OTHER_OP, op_label
from ._memory import MemoryStore
from ._plugin import KV_BUCKETS, KV_OP_DURATION, KV_OPS, LIMELIGHT_KV_SPANS, KvPlugin, plugin
from ._redis import instrument_redis, is_instrumented, uninstrument_redis

__all__ = [
    "KV_BUCKETS",
    "KV_OPS",
    "KV_OP_DURATION",
    "LIMELIGHT_KV_SPANS",
    "MAX_OPS",
    "OTHER_OP",
    "KvPlugin",
    "MemoryStore",
    "instrument_redis",
    "is_instrumented",
    "op_label",
    "plugin",
    "uninstrument_redis",
]
