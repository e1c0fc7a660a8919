"""An in-memory key-value store with TTL, instrumented like a redis client.

For demos, tests and single-process caches that need no server. Keys are any
hashable value; values are kept as given (not copied).
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar, overload

from limelight.semconv import DB_SYSTEM_NAME

from ._instruments import IF_NONE, NEVER, Bound, Op, client_binding, perf_counter, report_failure

__all__ = ["MemoryStore"]

V = TypeVar("V")
D = TypeVar("D")
R = TypeVar("R")

_SWEEP_EVERY = 1024
"""Writes between two sweeps of expired entries (reads drop what they find expired)."""


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING = _Missing.MISSING
"""What a read of a missing or expired key gives (a stored ``None`` is a value)."""


def _record(
    bound: Bound, op: Op, span: Any, elapsed: float, exc: BaseException | None, found: bool
) -> None:
    try:
        if exc is not None:
            op.error(elapsed)
        elif found:
            op.ok(elapsed)
        else:
            op.not_found(elapsed)
        if span is not None:
            bound.end_span(span, exc)
    except Exception as failure:
        report_failure("memory store", failure)


def _expiry(ttl: float | None, now: float) -> float:
    if ttl is None:
        return math.inf
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
    return now + ttl  # an infinite ttl gives math.inf


class MemoryStore(Generic[V]):
    """A dict-backed key-value store with per-entry TTL, safe across threads.

    Every operation records ``kv_ops_total`` and ``kv_op_duration_seconds``
    with the store's namespace and ``op`` = ``get``/``set``/``put``/``delete``
    (``result=not_found`` for a ``get`` of a missing or expired key; ``error``
    when the operation raised, for example on an unhashable key or an invalid
    TTL, the exception propagating unchanged)::

        sessions = MemoryStore("sessions")
        sessions.set("abc", {"user": 1}, ttl=1800)
        sessions.get("abc")

    :param namespace: what the store holds, the ``namespace`` label.
    :param spans: create a CLIENT span per operation; ``None`` follows
        ``LIMELIGHT_KV_SPANS`` (off by default).
    :param clock: the monotonic clock TTLs are measured with (seconds).
    """

    def __init__(
        self,
        namespace: str = "memory",
        *,
        spans: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.namespace = namespace
        self._binding = client_binding(namespace, spans, {DB_SYSTEM_NAME: "memory"})
        self._clock = clock
        self._data: dict[Hashable, tuple[V, float]] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def __repr__(self) -> str:
        return f"MemoryStore(namespace={self.namespace!r}, entries={len(self._data)})"

    def __len__(self) -> int:
        """The number of live (unexpired) entries."""
        with self._lock:
            self._sweep(self._clock())
            return len(self._data)

    # -- operations ---------------------------------------------------------------------

    @overload
    def get(self, key: Hashable) -> V | None: ...

    @overload
    def get(self, key: Hashable, default: D) -> V | D: ...

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value stored under *key*, or *default* when missing or expired (``not_found``)."""
        value = self._measured("get", IF_NONE, self._get, key)
        return default if value is _MISSING else value

    def set(self, key: Hashable, value: V, ttl: float | None = None) -> None:
        """Store *value* under *key*, replacing any entry; it expires after *ttl* seconds.

        :raises ValueError: *ttl* is not a positive number (nothing is stored).
        """
        self._measured("set", NEVER, self._store, key, value, ttl, True)

    def put(self, key: Hashable, value: V, ttl: float | None = None) -> bool:
        """Store *value* under *key* only when the key is absent or expired.

        :return: true when stored, false when a live entry was already there.
        :raises ValueError: *ttl* is not a positive number (nothing is stored).
        """
        return self._measured("put", NEVER, self._store, key, value, ttl, False)

    def delete(self, key: Hashable) -> bool:
        """Remove *key*; true when a live entry was removed."""
        return self._measured("delete", NEVER, self._delete, key)

    # -- internals ----------------------------------------------------------------------

    def _measured(self, name: str, missing: int, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)``, recorded as operation *name* (``not_found`` when it returns _MISSING)."""
        bound = self._binding.get()
        ns = bound.ns
        if ns is None:
            return fn(*args)
        op = ns.op(name, missing)
        span = bound.try_start_span(name) if bound.tracer is not None else None
        start = perf_counter()
        try:
            result = fn(*args)
        except BaseException as exc:
            _record(bound, op, span, perf_counter() - start, exc, True)
            raise
        _record(bound, op, span, perf_counter() - start, None, result is not _MISSING)
        return result

    def _get(self, key: Hashable) -> V | _Missing:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return _MISSING
            value, expires = entry
            if expires <= self._clock():
                del self._data[key]
                return _MISSING
            return value

    def _store(self, key: Hashable, value: V, ttl: float | None, replace: bool) -> bool:
        with self._lock:
            now = self._clock()
            expires = _expiry(ttl, now)
            if not replace:
                entry = self._data.get(key)
                if entry is not None and entry[1] > now:
                    return False
            self._data[key] = (value, expires)
            self._writes += 1
            if self._writes >= _SWEEP_EVERY:
                self._sweep(now)
            return True

    def _delete(self, key: Hashable) -> bool:
        with self._lock:
            entry = self._data.pop(key, None)
            return entry is not None and entry[1] > self._clock()

    def _sweep(self, now: float) -> None:
        self._writes = 0
        expired = [k for k, (_v, expires) in self._data.items() if expires <= now]
        for key in expired:
            del self._data[key]
