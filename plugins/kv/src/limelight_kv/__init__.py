"""limelight-kv: rate, errors and latency of key-value operations.

Metrics by default (``kv_ops_total``, ``kv_op_duration_seconds`` by
namespace, op and result), CLIENT spans on request::

    import redis
    from limelight_kv import MemoryStore, instrument_redis

    sessions = instrument_redis(redis.Redis(), namespace="sessions")
    cache = MemoryStore("cache")

Or every redis-py client made from then on, through the instrument contract
every limelight surface follows::

    import limelight_kv

    limelight_kv.instrument()        # redis-py, if installed: namespace "redis"
    limelight_kv.uninstrument()      # redis-py exactly as it was

See ``docs/plugins/kv.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._instrumentation import instrument, is_instrumented, uninstrument
    from ._instruments import MAX_OPS, OTHER_OP, op_label
    from ._memory import MemoryStore
    from ._plugin import KV_BUCKETS, KV_OP_DURATION, KV_OPS, LIMELIGHT_KV_SPANS, KvPlugin, plugin
    from ._redis import (
        DEFAULT_NAMESPACE,
        default_namespace,
        instrument_redis,
        is_client_instrumented,
        uninstrument_redis,
    )

__all__ = [
    "DEFAULT_NAMESPACE",
    "KV_BUCKETS",
    "KV_OPS",
    "KV_OP_DURATION",
    "LIMELIGHT_KV_SPANS",
    "MAX_OPS",
    "OTHER_OP",
    "KvPlugin",
    "MemoryStore",
    "default_namespace",
    "instrument",
    "instrument_redis",
    "is_client_instrumented",
    "is_instrumented",
    "op_label",
    "plugin",
    "uninstrument",
    "uninstrument_redis",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._instrumentation": (
            "instrument",
            "is_instrumented",
            "uninstrument",
        ),
        "._instruments": (
            "MAX_OPS",
            "OTHER_OP",
            "op_label",
        ),
        "._memory": ("MemoryStore",),
        "._plugin": (
            "KV_BUCKETS",
            "KV_OP_DURATION",
            "KV_OPS",
            "LIMELIGHT_KV_SPANS",
            "KvPlugin",
            "plugin",
        ),
        "._redis": (
            "DEFAULT_NAMESPACE",
            "default_namespace",
            "instrument_redis",
            "is_client_instrumented",
            "uninstrument_redis",
        ),
    },
)
