"""Fixtures: a reachable Redis and a unique key prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from limelight_testsupport import require_tcp

REDIS_HOST = os.environ.get("LIMELIGHT_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("LIMELIGHT_TEST_REDIS_PORT", "6379"))


@pytest.fixture
def redis_server() -> tuple[str, int]:
    """(host, port) of the Redis the tests use; skips (or fails when required) if unreachable."""
    require_tcp("Redis", REDIS_HOST, REDIS_PORT)
    return REDIS_HOST, REDIS_PORT


@pytest.fixture
def prefix(redis_server: tuple[str, int]) -> Iterator[str]:
    """A key prefix no other test or worker uses; its keys are deleted afterwards."""
    import redis

    value = f"limelight-kv-test:{uuid.uuid4().hex}:"
    yield value
    admin = redis.Redis(host=redis_server[0], port=redis_server[1])
    try:
        keys = list(admin.scan_iter(match=value + "*", count=1000))
        if keys:
            admin.delete(*keys)
    finally:
        admin.close()
