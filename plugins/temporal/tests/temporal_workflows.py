"""Workflows and activities the suite runs on the dev server (a module of its own: the
workflow sandbox re-imports it, so it imports nothing but temporalio and the stdlib)."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from opentelemetry import trace


def _current_ids() -> list[str]:
    ctx = trace.get_current_span().get_span_context()
    return [f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", str(os.getpid())]


@activity.defn
async def greet(name: str) -> str:
    activity.metric_meter().create_counter("greetings", "Greetings made.", "1").add(
        2, {"greeting": "hello"}
    )
    return f"hello {name}"


@activity.defn
async def flaky(fail_times: int) -> str:
    if activity.info().attempt <= fail_times:
        raise ApplicationError("not yet", type="NotYet")
    return "done"


@activity.defn
async def always_fails() -> str:
    raise ApplicationError("declined", type="PaymentDeclined", non_retryable=True)


@activity.defn
def where_am_i() -> list[str]:
    """The current span's ids and this process id, from a sync activity (pool executor)."""
    return [*_current_ids(), threading.current_thread().name]


@workflow.defn
class Greeting:
    @workflow.run
    async def run(self, name: str) -> str:
        workflow.metric_meter().create_counter("greeting_runs", "Greeting runs.").add(1)
        first = await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )
        second = await workflow.execute_activity(
            greet, name + " again", start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{first}; {second}"


@workflow.defn
class Flaky:
    @workflow.run
    async def run(self, fail_times: int) -> str:
        return await workflow.execute_activity(
            flaky,
            fail_times,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=1), backoff_coefficient=1.0
            ),
        )


@workflow.defn
class Failing:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            always_fails, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class WhereAmI:
    @workflow.run
    async def run(self) -> list[str]:
        return await workflow.execute_activity(
            where_am_i, start_to_close_timeout=timedelta(seconds=20)
        )


@workflow.defn
class Signalled:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.names) >= 1)
        await workflow.execute_activity(
            greet, self.names[0], start_to_close_timeout=timedelta(seconds=10)
        )
        return self.names

    @workflow.signal
    def add(self, name: str) -> None:
        self.names.append(name)

    @workflow.query
    def count(self) -> int:
        return len(self.names)


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_child_workflow(
            Greeting.run, name, id=workflow.info().workflow_id + "-child"
        )


@workflow.defn
class Continuing:
    @workflow.run
    async def run(self, left: int) -> str:
        if left > 0:
            workflow.continue_as_new(left - 1)
        return await workflow.execute_activity(
            greet, "last", start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class LocalGreeting:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_local_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class Updated:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.names) >= 1)
        return self.names

    @workflow.update
    def add(self, name: str) -> int:
        self.names.append(name)
        return len(self.names)

    @add.validator
    def check(self, name: str) -> None:
        if not name:
            raise ValueError("a name is needed")


ALL_WORKFLOWS = [
    Greeting,
    Flaky,
    Failing,
    WhereAmI,
    Signalled,
    Parent,
    Continuing,
    LocalGreeting,
    Updated,
]
ALL_ACTIVITIES = [greet, flaky, always_fails]
