"""The function surface: @instrument on every kind of function, through the interceptor chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from structlog.testing import capture_logs

import limelight
from limelight.testing import Harness
from limelight_hookspecs import (
    CallHandler,
    FunctionTarget,
    Interceptor,
    TelemetryView,
    hookimpl,
)


@limelight.instrument(name="svc.add")
def add(a: int, b: int) -> int:
    return a + b


@limelight.instrument(name="svc.outer")
def outer() -> int:
    return add(1, 2)


@limelight.instrument(name="svc.fail")
def fail() -> None:
    raise KeyError("missing")


@limelight.instrument(name="svc.fetch")
async def fetch(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


@limelight.instrument(name="svc.fetch_fail")
async def fetch_fail() -> None:
    await asyncio.sleep(0)
    raise ValueError("bad")


@limelight.instrument(name="svc.count")
def count(n: int) -> Generator[int, None, None]:
    yield from range(n)


@limelight.instrument(name="svc.count_fail")
def count_fail() -> Iterator[int]:
    yield 1
    raise RuntimeError("stream broke")


@limelight.instrument(name="svc.acount")
async def acount(n: int) -> AsyncGenerator[int, None]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


@limelight.instrument(name="svc.resilient")
def resilient() -> Generator[str, None, None]:
    try:
        yield "first"
    except KeyError:
        yield "recovered"


@limelight.instrument(name="svc.atick")
async def atick() -> AsyncIterator[int]:
    yield 0
    await asyncio.sleep(30)  # cancelled here
    yield 1


@limelight.instrument(name="svc.slow")
async def slow() -> None:
    await asyncio.sleep(30)  # cancelled here


@limelight.instrument(name="svc.consume", role="consumer")
def consume() -> None:
    return None


def _calls(telemetry: Harness, name: str, result: str) -> float:
    return telemetry.value("function_calls_total", function=name, result=result)


def _outcome(telemetry: Harness, name: str) -> tuple[float, float, float, str, object]:
    """(ok calls, error calls, in flight, span status, error.type) of one finished call."""
    span = telemetry.span(name)
    return (
        _calls(telemetry, name, "ok"),
        _calls(telemetry, name, "error"),
        telemetry.value("function_in_flight", function=name),
        span.status.status_code.name,
        (span.attributes or {}).get("error.type"),
    )


def _exemplar_span_ids(telemetry: Harness, name: str) -> list[str]:
    point = telemetry.histogram("function_duration_seconds", function=name, result="ok")
    return [e.span_id for e in point.exemplars if e is not None]


def _span_id(telemetry: Harness, name: str) -> str:
    context = telemetry.span(name).context
    assert context is not None
    return f"{context.span_id:016x}"


class TestSyncFunctions:
    """A plain function gets calls, duration, in-flight and a span."""

    def test_success(self, telemetry: Harness) -> None:
        assert 5 == add(2, 3)
        span = telemetry.span("svc.add")
        assert SpanKind.SERVER == span.kind
        assert StatusCode.UNSET == span.status.status_code
        assert f"{__name__}.add" == (span.attributes or {})["code.function.name"]
        assert 1 == _calls(telemetry, "svc.add", "ok")
        assert 0 == _calls(telemetry, "svc.add", "error")
        assert (
            1
            == telemetry.histogram(
                "function_duration_seconds", function="svc.add", result="ok"
            ).count
        )
        assert 0 == telemetry.value("function_in_flight", function="svc.add")

    def test_root_is_server_and_nested_is_internal_child(self, telemetry: Harness) -> None:
        assert 3 == outer()
        parent = telemetry.span("svc.outer", kind="server")
        child = telemetry.span("svc.add", kind="internal", parent=parent)
        assert parent.context is not None and child.context is not None
        assert parent.context.trace_id == child.context.trace_id

    def test_exception_propagates_unchanged_and_is_recorded(self, telemetry: Harness) -> None:
        with pytest.raises(KeyError, match="missing"):
            fail()
        span = telemetry.span("svc.fail", status="error")
        assert "KeyError" == (span.attributes or {})["error.type"]
        assert ["exception"] == [e.name for e in span.events]
        assert 1 == _calls(telemetry, "svc.fail", "error")
        assert 0 == telemetry.value("function_in_flight", function="svc.fail")

    def test_role_sets_the_span_kind(self, telemetry: Harness) -> None:
        consume()
        assert SpanKind.CONSUMER == telemetry.span("svc.consume").kind

    def test_default_name_is_module_and_qualname(self, telemetry: Harness) -> None:
        @limelight.instrument
        def local() -> str:
            return "x"

        local()
        name = (
            f"{__name__}.TestSyncFunctions.test_default_name_is_module_and_qualname.<locals>.local"
        )
        assert 1 == _calls(telemetry, name, "ok")
        assert local.__name__ == "local"  # functools.wraps keeps the identity


class TestAsyncFunctions:
    """Coroutine functions are measured across their awaits."""

    def test_success_and_error(self, telemetry: Harness) -> None:
        assert 4 == asyncio.run(fetch(2))
        with pytest.raises(ValueError, match="bad"):
            asyncio.run(fetch_fail())
        assert 1 == _calls(telemetry, "svc.fetch", "ok")
        assert 1 == _calls(telemetry, "svc.fetch_fail", "error")
        telemetry.span("svc.fetch_fail", status="error")
        assert 0 == telemetry.value("function_in_flight", function="svc.fetch_fail")

    def test_cancelled_call_is_an_error_and_balanced(self, telemetry: Harness) -> None:
        async def main() -> None:
            task = asyncio.create_task(slow())
            await asyncio.sleep(0)  # slow() is sleeping
            assert 1 == telemetry.value("function_in_flight", function="svc.slow")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert (0, 1, 0, "ERROR", "asyncio.exceptions.CancelledError") == _outcome(
            telemetry, "svc.slow"
        )

    def test_concurrent_calls_each_get_their_own_span(self, telemetry: Harness) -> None:
        async def main() -> list[int]:
            return list(await asyncio.gather(*(fetch(i) for i in range(5))))

        assert [0, 2, 4, 6, 8] == asyncio.run(main())
        spans = telemetry.find_spans("svc.fetch")
        assert 5 == len({s.context.trace_id for s in spans if s.context})
        assert 0 == telemetry.value("function_in_flight", function="svc.fetch")


class TestGenerators:
    """A generator call spans its whole iteration; the span never leaks to the consumer."""

    def test_span_covers_the_iteration(self, telemetry: Harness) -> None:
        gen = count(3)
        assert 0 == next(gen)
        assert 1 == telemetry.value("function_in_flight", function="svc.count")
        assert [] == telemetry.find_spans("svc.count")
        assert [1, 2] == list(gen)
        telemetry.span("svc.count")
        assert 1 == _calls(telemetry, "svc.count", "ok")
        assert 0 == telemetry.value("function_in_flight", function="svc.count")

    def test_consumer_does_not_see_the_generator_span(self, telemetry: Harness) -> None:
        seen = []
        for _ in count(2):
            seen.append(trace.get_current_span().get_span_context().is_valid)
        assert [False, False] == seen

    def test_early_close_is_ok_and_balanced(self, telemetry: Harness) -> None:
        gen = count(10)
        assert 0 == next(gen)
        assert 1 == telemetry.value("function_in_flight", function="svc.count")
        gen.close()
        assert 1 == _calls(telemetry, "svc.count", "ok")
        assert 0 == telemetry.value("function_in_flight", function="svc.count")

    def test_error_during_iteration(self, telemetry: Harness) -> None:
        with pytest.raises(RuntimeError, match="stream broke"):
            list(count_fail())
        telemetry.span("svc.count_fail", status="error")
        assert 1 == _calls(telemetry, "svc.count_fail", "error")
        assert 0 == telemetry.value("function_in_flight", function="svc.count_fail")

    def test_exemplar_links_the_duration_to_the_generator_span(self, telemetry: Harness) -> None:
        assert [0, 1, 2] == list(count(3))
        assert [_span_id(telemetry, "svc.count")] == _exemplar_span_ids(telemetry, "svc.count")

    def test_exemplar_links_the_duration_to_the_async_generator_span(
        self, telemetry: Harness
    ) -> None:
        async def main() -> list[int]:
            return [i async for i in acount(2)]

        assert [0, 1] == asyncio.run(main())
        assert [_span_id(telemetry, "svc.acount")] == _exemplar_span_ids(telemetry, "svc.acount")

    def test_throw_that_escapes_is_an_error(self, telemetry: Harness) -> None:
        gen = count(5)
        assert 0 == next(gen)
        with pytest.raises(ValueError, match="stop"):
            gen.throw(ValueError("stop"))
        assert (0, 1, 0, "ERROR", "ValueError") == _outcome(telemetry, "svc.count")

    def test_throw_the_generator_handles_is_not_an_error(self, telemetry: Harness) -> None:
        gen = resilient()
        assert "first" == next(gen)
        assert "recovered" == gen.throw(KeyError("k"))
        assert [] == list(gen)
        assert (1, 0, 0, "UNSET", None) == _outcome(telemetry, "svc.resilient")

    def test_async_generator_aclose_is_ok_and_balanced(self, telemetry: Harness) -> None:
        async def main() -> int:
            agen = acount(10)
            first = await agen.__anext__()
            await agen.aclose()
            return first

        assert 0 == asyncio.run(main())
        assert (1, 0, 0, "UNSET", None) == _outcome(telemetry, "svc.acount")

    def test_async_generator_athrow_that_escapes_is_an_error(self, telemetry: Harness) -> None:
        async def main() -> None:
            agen = acount(10)
            await agen.__anext__()
            await agen.athrow(ValueError("bad"))

        with pytest.raises(ValueError, match="bad"):
            asyncio.run(main())
        assert (0, 1, 0, "ERROR", "ValueError") == _outcome(telemetry, "svc.acount")

    def test_cancelled_async_generator_is_an_error_and_balanced(self, telemetry: Harness) -> None:
        async def main() -> None:
            first = asyncio.Event()

            async def consume() -> None:
                async for _ in atick():
                    first.set()

            task = asyncio.create_task(consume())
            await first.wait()
            await asyncio.sleep(0)  # the consumer is back in the generator, sleeping
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert (0, 1, 0, "ERROR", "asyncio.exceptions.CancelledError") == _outcome(
            telemetry, "svc.atick"
        )

    def test_async_generator(self, telemetry: Harness) -> None:
        async def main() -> list[int]:
            return [i async for i in acount(3)]

        assert [0, 1, 2] == asyncio.run(main())
        telemetry.span("svc.acount")
        assert 1 == _calls(telemetry, "svc.acount", "ok")
        assert 0 == telemetry.value("function_in_flight", function="svc.acount")


class _Recorder(CallHandler):
    def __init__(self, log: list[str], tag: str, fail_at: str = "") -> None:
        self.log, self.tag, self.fail_at = log, tag, fail_at

    def enter(self) -> object:
        self.log.append(f"{self.tag}:enter")
        if self.fail_at == "enter":
            raise RuntimeError("enter broke")
        return None

    def exit(self, state: object, error: BaseException | None) -> None:
        self.log.append(f"{self.tag}:exit")
        if self.fail_at == "exit":
            raise RuntimeError("exit broke")


class _InterceptorPlugin:
    limelight_name = "test-interceptors"

    def __init__(self, specs: Sequence[tuple[str, int, str]]) -> None:
        self.log: list[str] = []
        self.specs = specs

    @hookimpl
    def limelight_interceptors_provide(self, telemetry: TelemetryView) -> Sequence[Interceptor]:
        def make(tag: str, order: int, fail_at: str) -> Interceptor:
            def bind(target: FunctionTarget) -> CallHandler:
                return _Recorder(self.log, tag, fail_at)

            return Interceptor(tag, order, bind)

        out = []
        for tag, order, fail_at in self.specs:
            out.append(make(tag, order, fail_at))
        return out


class TestInterceptorChain:
    """Interceptors from plugins are ordered by their order value, outermost first."""

    def test_chain_order(self) -> None:
        plugin = _InterceptorPlugin([("late", 150, ""), ("early", 10, ""), ("mid", 75, "")])
        with Harness(plugins=[plugin]) as harness:
            names = [i.name for i in harness.telemetry.interceptors]
            assert [
                "early",
                "limelight.function_metrics",
                "mid",
                "limelight.function_tracing",
                "late",
            ] == names
            add(1, 1)
        assert [
            "early:enter",
            "mid:enter",
            "late:enter",
            "late:exit",
            "mid:exit",
            "early:exit",
        ] == plugin.log

    def test_metrics_duration_includes_the_span(self, telemetry: Harness) -> None:
        add(1, 1)
        span = telemetry.span("svc.add")
        duration = telemetry.histogram(
            "function_duration_seconds", function="svc.add", result="ok"
        ).sum
        assert span.end_time is not None and span.start_time is not None
        assert duration * 1e9 >= span.end_time - span.start_time

    def test_exemplar_links_the_duration_to_the_function_span(self, telemetry: Harness) -> None:
        add(1, 1)
        span = telemetry.span("svc.add")
        point = telemetry.histogram("function_duration_seconds", function="svc.add", result="ok")
        exemplars = [e for e in point.exemplars if e is not None]
        assert span.context is not None
        assert [f"{span.context.span_id:016x}"] == [e.span_id for e in exemplars]

    def test_an_interceptor_that_cannot_bind_stays_out_of_the_chain(self) -> None:
        def refuse(target: FunctionTarget) -> CallHandler:
            raise RuntimeError("bind broke")

        class Refusing:
            limelight_name = "refusing"

            @hookimpl
            def limelight_interceptors_provide(
                self, telemetry: TelemetryView
            ) -> Sequence[Interceptor]:
                return [Interceptor("refusing", 60, refuse)]

        with capture_logs() as logs, Harness(plugins=[Refusing()]) as harness:
            assert 3 == add(1, 2)
            assert 1 == harness.value("function_calls_total", function="svc.add", result="ok")
        [event] = [e for e in logs if e.get("component") == "function"]
        assert "bind refusing" == event["where"]

    @pytest.mark.parametrize("fail_at", ["enter", "exit"])
    def test_a_failing_interceptor_never_breaks_the_call(self, fail_at: str) -> None:
        plugin = _InterceptorPlugin([("bad", 60, fail_at)])
        with Harness(plugins=[plugin]) as harness:
            assert 3 == add(1, 2)
            assert 1 == harness.value("function_calls_total", function="svc.add", result="ok")
            harness.span("svc.add")


class TestBinding:
    """The chain is bound per telemetry start; without telemetry the call goes straight through."""

    def test_no_telemetry_means_no_overhead_path(self) -> None:
        assert 3 == add(1, 2)
        assert not limelight.current().enabled

    def test_rebinds_to_a_new_telemetry(self) -> None:
        with Harness() as first:
            add(1, 1)
        with Harness() as second:
            add(1, 1)
            add(1, 1)
        assert 1 == first.value("function_calls_total", function="svc.add", result="ok")
        assert 2 == second.value("function_calls_total", function="svc.add", result="ok")

    def test_disabled_sdk_records_nothing(self) -> None:
        with Harness(env={"OTEL_SDK_DISABLED": "true"}) as harness:
            assert 2 == add(1, 1)
            assert not harness.telemetry.enabled
            # nothing was declared, so nothing could be recorded or exported
            assert "function_calls_total" not in [f.name for f in harness.snapshot()]
            assert isinstance(harness.telemetry.tracer("t"), trace.NoOpTracer)
