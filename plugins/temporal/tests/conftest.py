"""One Temporal dev server for the session; helpers to run a worker around a scenario."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import limelight_temporal
import pytest
from limelight_testsupport.temporal import TemporalDevServer, temporal_dev_server
from temporal_workflows import ALL_ACTIVITIES, ALL_WORKFLOWS
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

T = TypeVar("T")


@pytest.fixture(scope="session")
def temporal() -> Iterator[TemporalDevServer]:
    """The dev server for the whole session."""
    with temporal_dev_server() as server:
        yield server


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    """The process's bridged runtime."""
    return limelight_temporal.runtime()


@pytest.fixture(autouse=True)
def not_instrumented() -> Iterator[None]:
    """Clients get the interceptor only where a test gives or installs it."""
    limelight_temporal.uninstrument()
    yield
    limelight_temporal.uninstrument()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def worker(
    server: TemporalDevServer,
    runtime: Runtime,
    *,
    interceptors: list[Any] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[Client, str]]:
    """A client (with *interceptors*, the tracing one by default) and a worker on a
    fresh task queue running every test workflow and activity."""
    if interceptors is None:
        interceptors = [limelight_temporal.TracingInterceptor()]
    client = await Client.connect(server.address, runtime=runtime, interceptors=interceptors)
    queue = unique("queue")
    options.setdefault("workflows", ALL_WORKFLOWS)
    options.setdefault("activities", ALL_ACTIVITIES)
    async with Worker(client, task_queue=queue, **options):
        yield client, queue


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())
