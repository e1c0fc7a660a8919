"""pyee emitters: listeners counted by event, rejections counted, the library unchanged."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import limelight_eventbus
import pyee
import pytest
from conftest import REJECTED, SUBSCRIBERS, bare, collect
from limelight_eventbus import plugin
from opentelemetry import trace
from pyee.asyncio import AsyncIOEventEmitter
from pyee.executor import ExecutorEventEmitter

from limelight import semconv as sc
from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])
SPANS = pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_EVENTBUS_SPANS": "true"})

tracer = trace.get_tracer("test")


def _listener(*args: Any) -> None:
    pass


class TestSubscribers:
    """eventbus_subscribers_active follows the listeners an emitter holds, per event."""

    def test_on_and_remove_listener(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()

        def other(*args: Any) -> None: ...

        emitter.on("data", _listener)
        emitter.add_listener("data", other)

        @emitter.listens_to("end")
        def at_end() -> None: ...

        assert 2 == telemetry.value(SUBSCRIBERS, topic="data")
        assert 1 == telemetry.value(SUBSCRIBERS, topic="end")
        emitter.remove_listener("data", other)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="data")
        emitter.remove_listener("data", _listener)
        emitter.remove_listener("end", at_end)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="data")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="end")

    def test_a_once_listener_removes_itself(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        emitter.once("ready", _listener)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="ready")
        assert emitter.emit("ready")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="ready")
        assert not emitter.emit("ready")

    def test_remove_all_listeners(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        for event in ("a", "a", "b"):
            emitter.on(event, lambda: None)
        emitter.on("c", _listener)
        emitter.remove_all_listeners("a")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="a")
        assert 1 == telemetry.value(SUBSCRIBERS, topic="b")
        emitter.remove_all_listeners()
        assert 0 == telemetry.value(SUBSCRIBERS, topic="b")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="c")

    def test_emitters_share_an_event_topic(self, telemetry: Harness) -> None:
        first, second = pyee.EventEmitter(), AsyncIOEventEmitter()
        first.on("message", _listener)
        second.on("message", _listener)
        assert 2 == telemetry.value(SUBSCRIBERS, topic="message")

    def test_an_emitter_collected_with_its_listeners(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        emitter.on("tick", _listener)
        emitter.on("tock", _listener)
        emitter.once("tick", lambda: None)
        assert 2 == telemetry.value(SUBSCRIBERS, topic="tick")
        del emitter
        collect()
        assert 0 == telemetry.value(SUBSCRIBERS, topic="tick")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="tock")

    def test_listeners_added_before_instrumentation(self, telemetry: Harness) -> None:
        with bare("pyee"):
            emitter = pyee.EventEmitter()
            emitter.on("early", _listener)
        assert 0 == telemetry.value(SUBSCRIBERS, default=0, topic="early")
        emitter.emit("early")  # known from its first use
        assert 1 == telemetry.value(SUBSCRIBERS, topic="early")
        emitter.remove_listener("early", _listener)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="early")

    def test_uninstrument_takes_the_listeners_out(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        emitter.on("kept", _listener)
        limelight_eventbus.uninstrument("pyee")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="kept")
        assert [_listener] == emitter.listeners("kept")

    def test_threads_adding_and_removing(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        start = threading.Barrier(4)

        def churn(n: int) -> None:
            start.wait()
            for i in range(300):

                def listener() -> None: ...

                emitter.on(f"e{i % 7}", listener)
                emitter.emit(f"e{i % 7}")
                if (i + n) % 3:
                    emitter.remove_listener(f"e{i % 7}", listener)

        threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i in range(7):
            event = f"e{i}"
            assert len(emitter.listeners(event)) == telemetry.value(SUBSCRIBERS, topic=event)


class TestRejections:
    """eventbus_rejected_total: a listener that raised, an event nobody listened to."""

    def test_a_listener_that_raised(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        error = ValueError("bad payload")

        def listener(payload: object) -> None:
            raise error

        emitter.on("payload", listener)
        with pytest.raises(ValueError, match="bad payload") as raised:
            emitter.emit("payload", 1)
        assert raised.value is error
        assert 1 == telemetry.value(REJECTED, topic="payload", reason="error")

    def test_no_listener(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        assert not emitter.emit("unheard", 1)
        assert 1 == telemetry.value(REJECTED, topic="unheard", reason="no_receiver")
        emitter.on("heard", _listener)
        assert emitter.emit("heard")
        assert 0 == telemetry.value(REJECTED, topic="heard", reason="no_receiver")

    def test_an_error_event_nobody_listens_to_reaches_the_caller(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        error = ConnectionError("lost")
        with pytest.raises(ConnectionError) as raised:
            emitter.emit("error", error)
        assert raised.value is error
        assert 1 == telemetry.value(REJECTED, topic="error", reason="no_receiver")
        assert 0 == telemetry.value(REJECTED, topic="error", reason="error")
        emitter.on("error", _listener)
        assert emitter.emit("error", error)
        assert 1 == telemetry.value(REJECTED, topic="error", reason="no_receiver")

    def test_new_listener_is_pyee_s_own(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        emitter.on("x", _listener)  # pyee emits new_listener, which nobody listens to
        assert 0 == telemetry.value(REJECTED, default=0, topic="new_listener", reason="no_receiver")

    def test_asyncio_a_listener_that_raised_goes_to_the_error_event(
        self, telemetry: Harness
    ) -> None:
        errors: list[BaseException] = []
        failure = KeyError("k")

        def listener() -> None:
            raise failure

        async def main() -> None:
            emitter = AsyncIOEventEmitter()
            emitter.on("error", errors.append)
            emitter.on("job", listener)
            assert emitter.emit("job")

        asyncio.run(main())
        assert [failure] == errors
        assert 1 == telemetry.value(REJECTED, topic="job", reason="error")
        assert 0 == telemetry.value(REJECTED, topic="error", reason="no_receiver")

    def test_asyncio_without_an_error_listener(self, telemetry: Harness) -> None:
        def listener() -> None:
            raise KeyError("k")

        async def main() -> None:
            emitter = AsyncIOEventEmitter()
            emitter.on("job", listener)
            with pytest.raises(KeyError):
                emitter.emit("job")

        asyncio.run(main())
        assert 1 == telemetry.value(REJECTED, topic="job", reason="error")  # once
        assert 1 == telemetry.value(REJECTED, topic="error", reason="no_receiver")

    def test_asyncio_a_coroutine_that_failed_later(self, telemetry: Harness) -> None:
        errors: list[BaseException] = []

        async def listener() -> None:
            await asyncio.sleep(0)
            raise TimeoutError("late")

        async def main() -> None:
            emitter = AsyncIOEventEmitter()
            emitter.on("error", errors.append)
            emitter.on("slow", listener)
            emitter.emit("slow")
            assert 0 == telemetry.value(REJECTED, topic="slow", reason="error")
            await emitter.wait_for_complete()

        asyncio.run(main())
        assert [TimeoutError] == [type(e) for e in errors]
        assert 1 == telemetry.value(REJECTED, topic="slow", reason="error")

    def test_asyncio_a_future_that_failed(self, telemetry: Harness) -> None:
        errors: list[BaseException] = []

        async def main() -> None:
            emitter = AsyncIOEventEmitter()
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            emitter.on("error", errors.append)
            emitter.on("pending", lambda: future)
            emitter.emit("pending")
            future.set_exception(OSError("io"))
            await emitter.wait_for_complete()

        asyncio.run(main())
        assert [OSError] == [type(e) for e in errors]
        assert 1 == telemetry.value(REJECTED, topic="pending", reason="error")

    def test_executor_a_listener_that_raised(self, telemetry: Harness) -> None:
        errors: list[BaseException] = []
        with ExecutorEventEmitter() as emitter:
            emitter.on("error", errors.append)
            emitter.on("work", lambda: 1 / 0)
            emitter.emit("work")
        assert [ZeroDivisionError] == [type(e) for e in errors]
        assert 1 == telemetry.value(REJECTED, topic="work", reason="error")


def _run(step: Callable[[], object]) -> tuple[object, ...]:
    try:
        result = step()
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    return ("returned", result)


def _sync_transcript() -> list[object]:
    """What an application sees of an EventEmitter, step by step."""
    calls: list[object] = []
    error = ValueError("listener failed")
    emitter = pyee.EventEmitter()
    seen: list[object] = []

    def first(*args: Any, **kwargs: Any) -> str:
        calls.append(("first", args, kwargs))
        return "ignored"

    def failing(*args: Any) -> None:
        calls.append(("failing", args))
        raise error

    def third(*args: Any) -> None:
        calls.append(("third", args))

    emitter.on("new_listener", lambda e, f: calls.append(("new", e)))
    seen.append(("on returns f", emitter.on("data", first) is first))
    seen.append(_run(lambda: emitter.emit("data", 1, key="v")))
    seen.append(_run(lambda: emitter.emit("nothing")))
    emitter.on("data", failing)
    emitter.on("data", third)
    try:
        emitter.emit("data", 2)
    except ValueError as exc:
        seen.append(("raised the listener's own", exc is error))
    seen.append(_run(lambda: emitter.emit("error", KeyError("raw"))))
    seen.append(_run(lambda: emitter.emit("error", "not an exception")))
    seen.append(_run(lambda: emitter.emit("error")))
    emitter.once("once", first)
    seen.append(_run(lambda: [emitter.emit("once", "a"), emitter.emit("once", "b")]))
    seen.append(_run(lambda: emitter.remove_listener("data", _listener)))
    seen.append(_run(lambda: emitter.remove_listener("absent", _listener)))
    emitter.remove_listener("data", failing)
    seen.append(_run(lambda: emitter.listeners("data") == [first, third]))
    seen.append(_run(lambda: sorted(emitter.event_names())))
    emitter.remove_all_listeners("data")
    seen.append(_run(lambda: (emitter.emit("data"), sorted(emitter.event_names()))))
    emitter.remove_all_listeners()
    seen.append(_run(lambda: sorted(emitter.event_names())))
    seen.append(("calls", calls))
    return seen


def _asyncio_transcript() -> list[object]:
    """What an application sees of an AsyncIOEventEmitter, step by step."""
    seen: list[object] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        unhandled: list[object] = []
        loop.set_exception_handler(
            lambda loop, context: unhandled.append(type(context.get("exception")))
        )
        emitter = AsyncIOEventEmitter()
        errors: list[object] = []
        failure = RuntimeError("sync failure")

        def failing() -> None:
            raise failure

        async def coroutine(value: int) -> int:
            await asyncio.sleep(0)
            if value < 0:
                raise ArithmeticError("negative")
            seen.append(("coroutine ran", value))
            return value

        emitter.on("sync", failing)
        seen.append(_run(lambda: emitter.emit("sync")))  # no error listener: raised here
        emitter.on("error", errors.append)
        seen.append(_run(lambda: emitter.emit("sync")))
        seen.append(("error is the listener's", [e is failure for e in errors]))
        emitter.on("co", coroutine)
        seen.append(_run(lambda: emitter.emit("co", 1)))
        seen.append(("complete before", emitter.complete))
        await emitter.wait_for_complete()
        seen.append(("complete after", emitter.complete))
        emitter.emit("co", -1)
        await emitter.wait_for_complete()
        seen.append(("errors", [type(e) for e in errors]))
        emitter.remove_all_listeners("error")
        emitter.emit("co", -2)  # the error event raised in the done callback: loop's handler
        await emitter.wait_for_complete()
        await asyncio.sleep(0)
        emitter.emit("co", 5)
        emitter.cancel()
        await asyncio.sleep(0)
        seen.append(("unhandled", unhandled))

    asyncio.run(main())
    return seen


def _executor_transcript() -> list[object]:
    """What an application sees of an ExecutorEventEmitter (one worker: a fixed order)."""
    seen: list[object] = []
    worker: list[object] = []  # what the listeners saw, in the one worker thread
    routed = threading.Event()

    def on_error(exc: BaseException) -> None:
        worker.append(("error", type(exc), str(exc)))
        routed.set()

    def job(n: int) -> int:
        worker.append(("job", n))
        return n

    def fail() -> None:
        raise LookupError("missing")

    with ExecutorEventEmitter(concurrent.futures.ThreadPoolExecutor(1)) as emitter:
        emitter.on("error", on_error)
        emitter.on("job", job)
        emitter.on("fail", fail)
        seen.append(_run(lambda: emitter.emit("job", 1)))
        seen.append(_run(lambda: emitter.emit("fail")))
        seen.append(_run(lambda: emitter.emit("none")))
        seen.append(("routed", routed.wait(10)))
    return [*seen, ("worker", worker)]


class TestUnchanged:
    """Each emitter behaves exactly as the bare library, listeners' exceptions included."""

    @pytest.mark.parametrize(
        "transcript",
        [_sync_transcript, _asyncio_transcript, _executor_transcript],
        ids=["EventEmitter", "AsyncIOEventEmitter", "ExecutorEventEmitter"],
    )
    @pytest.mark.parametrize("spans", ["false", "true"])
    def test_side_by_side(self, transcript: Callable[[], list[object]], spans: str) -> None:
        with Harness(plugins=[plugin], env={"LIMELIGHT_EVENTBUS_SPANS": spans}) as telemetry:
            with bare("pyee"):
                assert not limelight_eventbus.is_instrumented("pyee")
                expected = transcript()
            assert limelight_eventbus.is_instrumented("pyee")
            assert expected == transcript()
            assert (spans == "true") == bool(telemetry.spans())

    def test_the_library_restored_exactly(self, telemetry: Harness) -> None:
        owners = {
            pyee.EventEmitter: (
                "emit",
                "_add_event_handler",
                "_remove_listener",
                "remove_all_listeners",
                "_emit_run",
            ),
            AsyncIOEventEmitter: ("emit", "_emit_run"),
            ExecutorEventEmitter: ("emit", "_emit_run"),
        }

        def state() -> dict[tuple[type, str], object]:
            return {(o, n): vars(o).get(n) for o, names in owners.items() for n in names}

        limelight_eventbus.uninstrument()
        before = state()
        limelight_eventbus.instrument("pyee")
        assert before != state()
        limelight_eventbus.uninstrument("pyee")
        assert before == state()


class TestSpans:
    """With LIMELIGHT_EVENTBUS_SPANS=true, a CONSUMER span per emit, under the publisher's."""

    @SPANS
    def test_a_child_of_the_publisher_linked_to_it(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()

        def listener(value: int) -> None:
            with tracer.start_as_current_span("handle"):
                pass

        emitter.on("value", listener)
        with tracer.start_as_current_span("publish") as publisher:
            emitter.emit("value", 1)
        dispatch = telemetry.span("emit value", kind="consumer", status="unset")
        assert dispatch.parent is not None
        assert publisher.get_span_context().span_id == dispatch.parent.span_id
        assert [publisher.get_span_context()] == [link.context for link in dispatch.links]
        assert {
            sc.MESSAGING_SYSTEM: "pyee",
            sc.MESSAGING_OPERATION_TYPE: "process",
            sc.MESSAGING_OPERATION_NAME: "emit",
            sc.MESSAGING_DESTINATION_NAME: "value",
        } == dict(dispatch.attributes or {})
        telemetry.span("handle", parent=dispatch)

    @SPANS
    def test_new_listener_has_none(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        emitter.on("x", _listener)
        assert [] == telemetry.spans()

    @SPANS
    def test_a_listener_that_raised(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()

        def listener() -> None:
            raise IndexError("empty")

        emitter.on("x", listener)
        with pytest.raises(IndexError):
            emitter.emit("x")
        dispatch = telemetry.span("emit x", status="error")
        assert "IndexError" == (dispatch.attributes or {})[sc.ERROR_TYPE]

    @SPANS
    def test_asyncio_routed_failure_and_coroutines(self, telemetry: Harness) -> None:
        async def later() -> None:
            await asyncio.sleep(0)
            with tracer.start_as_current_span("later"):
                pass

        def failing() -> None:
            raise ValueError("sync")

        async def main() -> None:
            emitter = AsyncIOEventEmitter()
            emitter.on("error", _listener)
            emitter.on("work", failing)
            emitter.on("work", later)
            with tracer.start_as_current_span("publish"):
                emitter.emit("work")
            await emitter.wait_for_complete()

        asyncio.run(main())
        dispatch = telemetry.span("emit work", status="error")  # a listener raised in it
        telemetry.span("emit error", parent=dispatch, status="unset")  # pyee routed it
        telemetry.span("later", parent=dispatch)  # the coroutine ran in its context
