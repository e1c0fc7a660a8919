"""Pool tasks: N tasks, N task spans at a real receiver, in the submitter's trace; counted."""

from __future__ import annotations

import importlib
import multiprocessing
import pickle
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import limelight_process
import pytest
from limelight_testsupport.otlp import OtlpReceiver
from opentelemetry import trace

from limelight.testing import Harness

Received = Callable[[Callable[[Any], bool], int], list[Any]]
"""The ``received`` fixture: spans at the receiver matching a predicate, once there are N."""
_targets: Any = importlib.import_module("_targets")  # next to this file

N = 4


def _attrs(span: Any) -> dict[str, Any]:
    """A finished span's attributes (never ``None``)."""
    return dict(span.attributes or {})


def _context(method: str) -> Any:
    """The multiprocessing context of a start method."""
    return multiprocessing.get_context(method)


def _in_trace(span: trace.Span) -> tuple[bytes, bytes]:
    ctx = span.get_span_context()
    return ctx.trace_id.to_bytes(16, "big"), ctx.span_id.to_bytes(8, "big")


def _task_spans(received: Received, parent: trace.Span, name: str, count: int) -> list[Any]:
    trace_id, span_id = _in_trace(parent)
    return received(
        lambda s: s.name == name and s.trace_id == trace_id and s.parent_span_id == span_id,
        count,
    )


def _pool_counts(harness: Harness) -> tuple[float, float, float, float]:
    return (
        harness.value("process_started_total", kind="pool_task"),
        harness.value("process_terminated_total", kind="pool_task", result="completed"),
        harness.value("process_terminated_total", kind="pool_task", result="error"),
        harness.value("process_active", kind="pool_task"),
    )


class TestExecutor:
    """ProcessPoolExecutor: each task runs in a span under its submitter's span."""

    @pytest.mark.parametrize("method", ["spawn", "forkserver"])
    def test_recycled_workers_lose_nothing(
        self, method: str, exporting: Harness, received: Received
    ) -> None:
        context = _context(method)
        tracer = exporting.telemetry.tracer("t")
        with (
            tracer.start_as_current_span(f"batch-{method}") as batch,
            ProcessPoolExecutor(
                2, mp_context=context, initializer=_targets.start_telemetry, max_tasks_per_child=1
            ) as pool,
        ):
            results = [pool.submit(_targets.square, i) for i in range(N)]
            assert [i * i for i in range(N)] == [f.result(60) for f in results]
        spans = _task_spans(received, batch, "_targets.square", N)
        assert N == len(spans)
        # one worker per task: every task came from its own process, flushed as it was recycled
        assert N == len({s.span_id for s in spans})
        inner = received(
            lambda s: s.name == "square.inner" and s.trace_id == _in_trace(batch)[0], N
        )
        assert {s.span_id for s in spans} == {s.parent_span_id for s in inner}
        assert (N, N, 0, 0) == _pool_counts(exporting)

    def test_map_under_fork(self, exporting: Harness, received: Received) -> None:
        tracer = exporting.telemetry.tracer("t")
        with (
            tracer.start_as_current_span("batch-map") as batch,
            ProcessPoolExecutor(2, mp_context=_context("fork")) as pool,
        ):
            assert [i * i for i in range(N)] == list(pool.map(_targets.square, range(N)))
        assert N == len(_task_spans(received, batch, "_targets.square", N))
        assert (N, N, 0, 0) == _pool_counts(exporting)

    def test_the_submitters_context_not_the_workers_spawn_context(
        self, exporting: Harness, received: Received, receiver: OtlpReceiver
    ) -> None:
        tracer = exporting.telemetry.tracer("t")

        def roots() -> int:
            return len(
                [
                    s
                    for s in receiver.spans()
                    if s.name == "_targets.pid_of" and not s.parent_span_id
                ]
            )

        before = roots()
        with ProcessPoolExecutor(1, mp_context=_context("fork")) as pool:
            with tracer.start_as_current_span("spawning") as spawning:
                pool.submit(_targets.pid_of, None).result(60)  # the worker is forked here
            with tracer.start_as_current_span("later") as later:
                pool.submit(_targets.pid_of, None).result(60)
            untraced = pool.submit(_targets.pid_of, None)
            untraced.result(60)
        [first] = _task_spans(received, spawning, "_targets.pid_of", 1)
        [second] = _task_spans(received, later, "_targets.pid_of", 1)
        assert first.span_id != second.span_id
        # no current span at submit: a root of its own, not a child of the spawning span
        assert exporting.wait_until(lambda: roots() == before + 1, 20)

    def test_a_task_that_raises(self, exporting: Harness, received: Received) -> None:
        tracer = exporting.telemetry.tracer("t")
        with (
            tracer.start_as_current_span("failing") as failing,
            ProcessPoolExecutor(1, mp_context=_context("fork")) as pool,
        ):
            future = pool.submit(_targets.fail, 7)
            with pytest.raises(ValueError, match="task 7 failed"):
                future.result(60)
        [span] = _task_spans(received, failing, "_targets.fail", 1)
        assert 2 == span.status.code  # STATUS_CODE_ERROR
        assert "ValueError" in [
            a.value.string_value for a in span.attributes if a.key == "error.type"
        ]
        assert (1, 0, 1, 0) == _pool_counts(exporting)

    def test_a_cancelled_task(self, exporting: Harness) -> None:
        with ProcessPoolExecutor(1, mp_context=_context("fork")) as pool:
            blocker = pool.submit(_targets.sleep, 0.5)
            queued = [pool.submit(_targets.sleep, 0) for _ in range(5)]
            cancelled = sum(f.cancel() for f in queued)
            blocker.result(60)
        assert cancelled >= 1
        started, completed, errors, active = _pool_counts(exporting)
        assert (6, 6 - cancelled, cancelled, 0) == (started, completed, errors, active)

    def test_telemetry_off_passes_through(self) -> None:
        limelight_process.instrument()
        with ProcessPoolExecutor(1, mp_context=_context("fork")) as pool:
            assert 9 == pool.submit(_targets.square, 3).result(60)


class TestPool:
    """multiprocessing.Pool: apply_async, map, imap; workers recycled by maxtasksperchild."""

    def test_recycled_workers_lose_nothing(self, exporting: Harness, received: Received) -> None:
        # fork: a recycled worker ends through os._exit (spawn and forkserver: TestExecutor)
        method = "fork"
        context = _context(method)
        tracer = exporting.telemetry.tracer("t")
        pool = context.Pool(2, initializer=_targets.start_telemetry, maxtasksperchild=1)
        try:
            with tracer.start_as_current_span(f"pool-{method}") as batch:
                applied = [pool.apply_async(_targets.square, (i,)) for i in range(N)]
                mapped = pool.map(_targets.square, range(N), chunksize=1)
                assert [i * i for i in range(N)] == [r.get(60) for r in applied] == mapped
                assert [0, 1] == list(pool.imap(_targets.square, range(2)))
        finally:
            pool.close()
            pool.join()
        # every call of the function is one span in a worker: N applied, N mapped, 2 imap'd
        assert 2 * N + 2 == len(_task_spans(received, batch, "_targets.square", 2 * N + 2))
        # apply_async: one task each; a map: one task; imap: not counted
        assert (N + 1, N + 1, 0, 0) == _pool_counts(exporting)

    def test_errors_and_an_empty_map(self, exporting: Harness) -> None:
        with _context("fork").Pool(1) as pool:
            with pytest.raises(ValueError, match="task 1 failed"):
                pool.apply(_targets.fail, (1,))
            with pytest.raises(ValueError, match="failed"):
                pool.map(_targets.fail, range(3))
            assert [] == pool.map(_targets.square, [])
            errors: list[BaseException] = []
            pool.apply_async(_targets.fail, (2,), error_callback=errors.append).wait(60)
        assert ["task 2 failed"] == [str(e) for e in errors]
        assert (4, 1, 3, 0) == _pool_counts(exporting)


class TestTask:
    """The wrapper pickles with its function and carries the context as a text map."""

    def test_pickles(self) -> None:
        from limelight_process._pools import Task

        task = Task(
            _targets.square,
            {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
            "_targets.square",
        )
        copy = pickle.loads(pickle.dumps(task))
        assert (task.fn, task.carrier, task.name) == (copy.fn, copy.carrier, copy.name)
        assert 16 == copy(4)

    def test_a_name_for_anything_callable(self) -> None:
        import functools

        from limelight_process._names import callable_name

        assert "_targets.square" == callable_name(functools.partial(_targets.square, 2))
        assert "builtins.len" == callable_name(len)
        assert "uuid.UUID" == callable_name(uuid.UUID)
