"""The tracing interceptor against a real Temporal dev server."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from typing import Any

import limelight_temporal
import pytest
from conftest import run, unique, worker
from limelight_testsupport.temporal import TemporalDevServer
from opentelemetry import propagate
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from temporal_workflows import (
    ALL_WORKFLOWS,
    Continuing,
    Failing,
    Flaky,
    Greeting,
    LocalGreeting,
    Parent,
    Signalled,
    Updated,
    WhereAmI,
    where_am_i,
)
from temporalio.client import WorkflowFailureError
from temporalio.runtime import Runtime
from temporalio.worker import Replayer, SharedStateManager

from limelight.testing import Harness

# the suite gives clients the interceptor itself; TestInstrument covers the automatic way
pytestmark = pytest.mark.limelight(
    plugins=[limelight_temporal.plugin], env={"LIMELIGHT_TEMPORAL_INSTRUMENT": "false"}
)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


class TestAWorkflowRun:
    """Client, workflow and activities make one trace with the right parents."""

    def test_spans_and_parents(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        workflow_id = unique("greeting")

        async def scenario() -> str:
            async with worker(temporal, runtime) as (client, queue):
                return await client.execute_workflow(
                    Greeting.run, "ada", id=workflow_id, task_queue=queue
                )

        assert "hello ada; hello ada again" == run(scenario)
        start = telemetry.span("StartWorkflow:Greeting", kind="client")
        assert workflow_id == attrs(start)["temporal.workflow.id"]
        wf = telemetry.span("RunWorkflow:Greeting", kind="server")
        schedules = telemetry.find_spans("StartActivity:greet", kind="client")
        runs = telemetry.find_spans("RunActivity:greet", kind="server")
        done = telemetry.span("CompleteWorkflow:Greeting")
        assert 2 == len(schedules) == len(runs)
        assert {trace_of(start)} == {trace_of(s) for s in [wf, done, *schedules, *runs]}
        assert span_id(start) == parent_of(wf)
        assert {span_id(wf)} == {parent_of(s) for s in [*schedules, done]}
        assert sorted(map(span_id, schedules)) == sorted(p or 0 for p in map(parent_of, runs))
        assert StatusCode.UNSET == done.status.status_code
        assert all(1 == attrs(r)["temporal.activity.attempt"] for r in runs)

    def test_a_workflow_started_without_a_trace_gets_one_of_its_own(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> None:
            # the starting client is not traced, the worker's is
            async with (
                worker(temporal, runtime, interceptors=[]) as (plain, _queue),
                worker(temporal, runtime) as (_, traced_queue),
            ):
                await plain.execute_workflow(
                    Greeting.run, "bo", id=unique("untraced"), task_queue=traced_queue
                )

        run(scenario)
        wf = telemetry.span("RunWorkflow:Greeting")
        assert wf.parent is None
        assert {trace_of(wf)} == {trace_of(s) for s in telemetry.find_spans("RunActivity:greet")}


class TestFailures:
    """Failed activities and workflows end Error with error.type; retries are separate spans."""

    def test_retried_activity_attempts(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> str:
            async with worker(temporal, runtime) as (client, queue):
                return await client.execute_workflow(
                    Flaky.run, 2, id=unique("flaky"), task_queue=queue
                )

        assert "done" == run(scenario)
        attempts = sorted(
            telemetry.find_spans("RunActivity:flaky"),
            key=lambda s: attrs(s)["temporal.activity.attempt"],
        )
        assert [1, 2, 3] == [attrs(a)["temporal.activity.attempt"] for a in attempts]
        assert [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET] == [
            a.status.status_code for a in attempts
        ]
        assert ["NotYet", "NotYet", None] == [attrs(a).get("error.type") for a in attempts]
        # one schedule, every attempt under it
        [schedule] = telemetry.find_spans("StartActivity:flaky")
        assert {span_id(schedule)} == {parent_of(a) for a in attempts}

    def test_failed_workflow(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> None:
            async with worker(temporal, runtime) as (client, queue):
                await client.execute_workflow(Failing.run, id=unique("failing"), task_queue=queue)

        with pytest.raises(WorkflowFailureError):
            run(scenario)
        attempt = telemetry.span("RunActivity:always_fails", status="error")
        assert "PaymentDeclined" == attrs(attempt)["error.type"]
        done = telemetry.span("CompleteWorkflow:Failing", status="error")
        assert "temporalio.exceptions.ActivityError" == attrs(done)["error.type"]
        client = telemetry.span("StartWorkflow:Failing")
        assert StatusCode.UNSET == client.status.status_code  # the start itself succeeded


class TestReplay:
    """Replayed workflow code makes no span twice, and keeps its parent across replays."""

    def test_no_cache_replays_every_task_and_spans_stay_single(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> None:
            async with worker(temporal, runtime, max_cached_workflows=0) as (client, queue):
                await client.execute_workflow(
                    Greeting.run, "cy", id=unique("nocache"), task_queue=queue
                )

        run(scenario)
        [wf] = telemetry.find_spans("RunWorkflow:Greeting")
        schedules = telemetry.find_spans("StartActivity:greet")
        assert 2 == len(schedules)
        # the second activity was scheduled after a replay: still under the run's span
        assert {span_id(wf)} == {parent_of(s) for s in schedules}
        assert 1 == len(telemetry.find_spans("CompleteWorkflow:Greeting"))

    def test_a_replayer_makes_no_spans(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        workflow_id = unique("replayed")

        async def scenario() -> int:
            async with worker(temporal, runtime) as (client, queue):
                handle = await client.start_workflow(
                    Greeting.run, "di", id=workflow_id, task_queue=queue
                )
                await handle.result()
                history = await handle.fetch_history()
            before = len(telemetry.spans())
            replayer = Replayer(
                workflows=ALL_WORKFLOWS,
                interceptors=[limelight_temporal.TracingInterceptor()],
                runtime=runtime,
            )
            await replayer.replay_workflow(history)
            return before

        before = run(scenario)
        assert before == len(telemetry.spans())


class TestHandlersAndChildren:
    """Signals, queries, child workflows and continue-as-new stay in the trace."""

    def test_signal_and_query(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> int:
            async with worker(temporal, runtime) as (client, queue):
                handle = await client.start_workflow(
                    Signalled.run, id=unique("signalled"), task_queue=queue
                )
                await handle.signal(Signalled.add, "ed")
                await handle.result()
                return await handle.query(Signalled.count)

        assert 1 == run(scenario)
        wf = telemetry.span("RunWorkflow:Signalled")
        sent = telemetry.span("SignalWorkflow:add", kind="client")
        handled = telemetry.span("HandleSignal:add", kind="server")
        assert span_id(wf) == parent_of(handled)
        assert [span_id(sent)] == [link.context.span_id for link in handled.links]
        asked = telemetry.span("QueryWorkflow:count", kind="client")
        answered = telemetry.span("HandleQuery:count", kind="server")
        assert span_id(asked) == parent_of(answered)

    def test_update(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> tuple[int, list[str]]:
            async with worker(temporal, runtime) as (client, queue):
                handle = await client.start_workflow(
                    Updated.run, id=unique("updated"), task_queue=queue
                )
                count = await handle.execute_update(Updated.add, "al")
                return count, await handle.result()

        assert (1, ["al"]) == run(scenario)
        wf = telemetry.span("RunWorkflow:Updated")
        sent = telemetry.span("StartWorkflowUpdate:add", kind="client")
        validated = telemetry.span("ValidateUpdate:add", kind="server")
        handled = telemetry.span("HandleUpdate:add", kind="server")
        assert {trace_of(wf)} == {trace_of(s) for s in (validated, handled)}
        for span in (validated, handled):
            assert span_id(wf) == parent_of(span)
            assert [span_id(sent)] == [link.context.span_id for link in span.links]

    def test_local_activity(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> str:
            async with worker(temporal, runtime) as (client, queue):
                return await client.execute_workflow(
                    LocalGreeting.run, "jo", id=unique("local"), task_queue=queue
                )

        assert "hello jo" == run(scenario)
        wf = telemetry.span("RunWorkflow:LocalGreeting")
        start = telemetry.span("StartActivity:greet", kind="client")
        ran = telemetry.span("RunActivity:greet", kind="server")
        assert span_id(wf) == parent_of(start)
        assert span_id(start) == parent_of(ran)
        assert {trace_of(wf)} == {trace_of(start), trace_of(ran)}
        assert attrs(start)["temporal.activity.local"] is True
        assert attrs(ran)["temporal.activity.local"] is True

    def test_child_workflow(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> str:
            async with worker(temporal, runtime) as (client, queue):
                return await client.execute_workflow(
                    Parent.run, "fi", id=unique("parent"), task_queue=queue
                )

        run(scenario)
        parent = telemetry.span("RunWorkflow:Parent")
        start_child = telemetry.span("StartChildWorkflow:Greeting", kind="client")
        child = telemetry.span("RunWorkflow:Greeting")
        assert span_id(parent) == parent_of(start_child)
        assert span_id(start_child) == parent_of(child)
        assert {trace_of(parent)} == {
            trace_of(s) for s in telemetry.find_spans("RunActivity:greet")
        }

    def test_continue_as_new(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        async def scenario() -> str:
            async with worker(temporal, runtime) as (client, queue):
                return await client.execute_workflow(
                    Continuing.run, 2, id=unique("continuing"), task_queue=queue
                )

        assert "hello last" == run(scenario)
        runs = telemetry.find_spans("RunWorkflow:Continuing")
        assert 3 == len(runs)
        ids = {span_id(r): r for r in runs}
        first = next(r for r in runs if parent_of(r) not in ids)
        second = next(r for r in runs if parent_of(r) == span_id(first))
        third = next(r for r in runs if parent_of(r) == span_id(second))
        assert len({trace_of(r) for r in runs}) == 1
        assert parent_of(telemetry.span("StartActivity:greet")) == span_id(third)
        assert 2 == len(telemetry.find_spans("CompleteWorkflow:Continuing", status="unset")) - 1


class TestPools:
    """A synchronous activity keeps its parent in a thread pool and in a process pool."""

    def _where(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime, **options: Any
    ) -> list[str]:
        async def scenario() -> list[str]:
            async with worker(temporal, runtime, activities=[where_am_i], **options) as (
                client,
                queue,
            ):
                return await client.execute_workflow(
                    WhereAmI.run, id=unique("where"), task_queue=queue
                )

        return run(scenario)

    def test_thread_pool(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            trace_hex, span_hex, pid, _ = self._where(
                telemetry, temporal, runtime, activity_executor=pool
            )
        attempt = telemetry.span("RunActivity:where_am_i")
        assert (f"{trace_of(attempt):032x}", f"{span_id(attempt):016x}") == (trace_hex, span_hex)
        assert str(os.getpid()) == pid

    def test_process_pool(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        spawn = multiprocessing.get_context("spawn")
        with (
            spawn.Manager() as manager,
            concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool,
        ):
            trace_hex, span_hex, pid, _ = self._where(
                telemetry,
                temporal,
                runtime,
                activity_executor=pool,
                shared_state_manager=SharedStateManager.create_from_multiprocessing(manager),
            )
        attempt = telemetry.span("RunActivity:where_am_i")
        assert str(os.getpid()) != pid
        assert (f"{trace_of(attempt):032x}", f"{span_id(attempt):016x}") == (trace_hex, span_hex)


class TestSetup:
    """A tracing setup that cannot work raises when it is built, not while work runs."""

    def test_a_propagator_writing_non_text_fields_is_refused(self, telemetry: Harness) -> None:
        class Binary(TextMapPropagator):
            def inject(self, carrier, context=None, setter=None):  # type: ignore[no-untyped-def]
                carrier["bin"] = b"\x00\x01"

            def extract(self, carrier, context=None, getter=None):  # type: ignore[no-untyped-def]
                return context

            @property
            def fields(self):  # type: ignore[no-untyped-def]
                return {"bin"}

        saved = propagate.get_global_textmap()
        propagate.set_global_textmap(Binary())
        try:
            with pytest.raises(limelight_temporal.TracingSetupError, match="not text"):
                limelight_temporal.TracingInterceptor()
        finally:
            propagate.set_global_textmap(saved)

    def test_a_propagator_that_fails_is_refused(self, telemetry: Harness) -> None:
        class Broken(TextMapPropagator):
            def inject(self, carrier, context=None, setter=None):  # type: ignore[no-untyped-def]
                raise RuntimeError("no")

            def extract(self, carrier, context=None, getter=None):  # type: ignore[no-untyped-def]
                return context

            @property
            def fields(self):  # type: ignore[no-untyped-def]
                return set()

        saved = propagate.get_global_textmap()
        propagate.set_global_textmap(Broken())
        try:
            with pytest.raises(limelight_temporal.TracingSetupError, match="failed to inject"):
                limelight_temporal.TracingInterceptor()
        finally:
            propagate.set_global_textmap(saved)


class TestInstrument:
    """instrument() gives every new client the interceptor; uninstrument() restores Client."""

    def test_clients_created_after_instrument_are_traced(
        self, telemetry: Harness, temporal: TemporalDevServer, runtime: Runtime
    ) -> None:
        from temporalio.client import Client

        original = Client.__init__
        assert ("temporalio",) == limelight_temporal.instrument()
        assert limelight_temporal.is_instrumented("temporalio")
        assert () == limelight_temporal.instrument()

        async def scenario() -> None:
            async with worker(temporal, runtime, interceptors=[]) as (client, queue):
                await client.execute_workflow(
                    Greeting.run, "gu", id=unique("auto"), task_queue=queue
                )

        run(scenario)
        telemetry.span("StartWorkflow:Greeting")
        assert 2 == len(telemetry.find_spans("RunActivity:greet"))
        limelight_temporal.uninstrument()
        assert original is Client.__init__
        assert "__init__" in vars(Client)

    @pytest.mark.limelight(plugins=[limelight_temporal.plugin], env={})
    def test_the_plugin_instruments_when_telemetry_starts(self, telemetry: Harness) -> None:
        assert limelight_temporal.is_instrumented()
