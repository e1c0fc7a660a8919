"""stdlib logging: ids in every line made inside a span, none outside, counts exact."""

from __future__ import annotations

import logging
import logging.config
import logging.handlers
import queue
import re
import threading
from typing import Any

import limelight_logs
import pytest
from conftest import Lines
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Span

import limelight
from limelight.testing import Harness

FORMAT = (
    "%(levelname)s %(name)s %(message)s"
    " trace_id=%(trace_id)s span_id=%(span_id)s flags=%(trace_flags)s"
)
LINE = re.compile(
    r"(?P<level>\w+) (?P<name>\S+) (?P<message>.*) "
    r"trace_id=(?P<trace_id>\w*) span_id=(?P<span_id>\w*) flags=(?P<flags>\w*)"
)


def _ids(span: Span | ReadableSpan) -> tuple[str, str, str]:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", f"{ctx.trace_flags:02x}"


def _parsed(lines: list[str]) -> dict[str, tuple[str, str, str]]:
    """Each line's message and its three fields."""
    out = {}
    for line in lines:
        match = LINE.fullmatch(line.splitlines()[0])  # a traceback follows on its own lines
        assert match is not None, line
        out[match["message"]] = (match["trace_id"], match["span_id"], match["flags"])
    return out


def _dict_config(handler: logging.Handler, **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"lines": {"()": lambda: handler}},
        "root": {"level": "DEBUG", "handlers": ["lines"]},
        **extra,
    }


class TestDictConfigBeforeStart:
    """Logging set up by dictConfig before limelight starts: every line inside a span has the
    ids of that span, every line outside has empty fields; the counts by level are exact."""

    def test_lines_inside_and_outside_spans(self) -> None:
        lines = Lines(FORMAT)
        logging.config.dictConfig(_dict_config(lines))
        log = logging.getLogger("shop.orders")
        with Harness(plugins=[limelight_logs.plugin]) as harness:
            tracer = harness.telemetry.tracer("test")
            log.info("before any span")
            with tracer.start_as_current_span("request") as request:
                log.debug("in request")
                log.warning("in request again")
                with tracer.start_as_current_span("query") as query:
                    log.error("in query")
                log.info("back in request")
            log.critical("after the span")
            try:
                raise ValueError("boom")
            except ValueError:
                with tracer.start_as_current_span("handler") as handler:
                    log.exception("in handler")
            counts = {
                level: harness.value("log_emissions_total", level=level, default=0)
                for level in ("debug", "info", "warning", "error", "critical")
            }
        assert {
            "before any span": ("", "", ""),
            "in request": _ids(request),
            "in request again": _ids(request),
            "in query": _ids(query),
            "back in request": _ids(request),
            "after the span": ("", "", ""),
            "in handler": _ids(handler),
        } == _parsed(lines.lines)
        assert request.get_span_context().trace_id == query.get_span_context().trace_id
        assert {"debug": 1, "info": 2, "warning": 1, "error": 2, "critical": 1} == counts

    def test_an_already_configured_root_logger(self) -> None:
        logging.basicConfig(level=logging.INFO, force=True)
        lines = Lines(FORMAT)
        logging.getLogger().addHandler(lines)
        with Harness(plugins=[limelight_logs.plugin]) as harness:
            with harness.telemetry.tracer("test").start_as_current_span("job") as job:
                logging.getLogger("worker").info("working")
            logging.getLogger("worker").info("idle")
            assert 2 == harness.value("log_emissions_total", level="info")
        assert {"working": _ids(job), "idle": ("", "", "")} == _parsed(lines.lines)


class TestCounting:
    """A record counts once as it is made, whatever the handlers do with it afterwards."""

    def test_dropped_by_handlers_still_counted_below_level_never_made(self) -> None:
        quiet = Lines(level=logging.ERROR)
        filtered = Lines()
        filtered.addFilter(lambda record: False)
        log = logging.getLogger("counting")
        log.setLevel(logging.INFO)
        log.propagate = False
        log.addHandler(quiet)
        log.addHandler(filtered)
        try:
            with Harness(plugins=[limelight_logs.plugin]) as harness:
                log.debug("never made")
                log.info("made, written nowhere")
                log.warning("made, written nowhere")
                log.error("made, written once")
                lonely = logging.getLogger("lonely")
                lonely.propagate = False
                lonely.error("no handler anywhere")
                lonely.propagate = True
                assert (0, 1, 1, 2) == tuple(
                    harness.value("log_emissions_total", level=level, default=0)
                    for level in ("debug", "info", "warning", "error")
                )
        finally:
            log.handlers.clear()
            log.propagate = True
            log.setLevel(logging.NOTSET)
        assert ["made, written once"] == quiet.lines
        assert [] == filtered.lines

    def test_a_telemetry_started_inside_another_counts_until_it_stops(self) -> None:
        # the lines are counted by the telemetry started last; the one it started inside
        # counts again once it stops, and none counts the lines made before its start
        log = logging.getLogger("nested")
        log.setLevel(logging.INFO)
        log.propagate = False
        log.addHandler(logging.NullHandler())
        try:
            log.info("before any")
            with Harness(plugins=[limelight_logs.plugin]) as outer:
                log.info("outer 1")
                with Harness(plugins=[limelight_logs.plugin]) as inner:
                    for _ in range(3):
                        log.info("inner")
                    assert 3 == inner.value("log_emissions_total", level="info")
                log.info("outer 2")
                log.warning("outer 3")
                assert 2 == outer.value("log_emissions_total", level="info")
                assert 1 == outer.value("log_emissions_total", level="warning")
        finally:
            log.handlers.clear()
            log.propagate = True
            log.setLevel(logging.NOTSET)

    def test_custom_levels_by_name(self, logs_telemetry: Harness) -> None:
        logging.addLevelName(25, "NOTICE")
        log = logging.getLogger("custom")
        log.setLevel(1)
        log.log(25, "notice")
        log.log(25, "notice")
        log.log(5, "unnamed")
        assert 2 == logs_telemetry.value("log_emissions_total", level="notice")
        assert 1 == logs_telemetry.value("log_emissions_total", level="level 5")
        log.setLevel(logging.NOTSET)

    def test_threads_each_count_and_carry_their_own_span(self, logs_telemetry: Harness) -> None:
        lines = Lines(FORMAT)
        log = logging.getLogger("threads")
        log.setLevel(logging.INFO)
        log.addHandler(lines)
        tracer = logs_telemetry.telemetry.tracer("test")
        spans: dict[str, Span] = {}

        def work(n: int) -> None:
            with tracer.start_as_current_span(f"t{n}") as span:
                spans[f"t{n}"] = span
                for i in range(50):
                    log.info("t%d line %d", n, i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.handlers.clear()
        log.setLevel(logging.NOTSET)
        found = _parsed(lines.lines)
        assert 200 == len(found)
        for message, fields in found.items():
            assert _ids(spans[message.split()[0]]) == fields, message
        assert 200 == logs_telemetry.value("log_emissions_total", level="info")

    def test_nothing_counted_when_telemetry_is_not_running(self) -> None:
        limelight_logs.instrument("logging")
        lines = Lines(FORMAT)
        logging.getLogger("idle").addHandler(lines)
        logging.getLogger("idle").warning("no telemetry")  # fields present, empty
        assert {"no telemetry": ("", "", "")} == _parsed(lines.lines)
        logging.getLogger("idle").handlers.clear()


class TestRecordsOfTheirOwn:
    """What the application puts in a record itself wins, and nothing raises."""

    def test_extra_trace_id_is_kept(self, logs_telemetry: Harness) -> None:
        lines = Lines(FORMAT)
        log = logging.getLogger("extra")
        log.addHandler(lines)
        with logs_telemetry.telemetry.tracer("test").start_as_current_span("s") as span:
            log.warning("mine", extra={"trace_id": "f" * 32})
        log.handlers.clear()
        [(trace_id, span_id, flags)] = _parsed(lines.lines).values()
        assert ("f" * 32, _ids(span)[1], _ids(span)[2]) == (trace_id, span_id, flags)

    def test_a_queue_handler_keeps_the_ids_of_the_thread_that_logged(
        self, logs_telemetry: Harness
    ) -> None:
        lines = Lines(FORMAT)
        records: queue.Queue[logging.LogRecord] = queue.Queue()
        listener = logging.handlers.QueueListener(records, lines)
        log = logging.getLogger("queued")
        log.addHandler(logging.handlers.QueueHandler(records))
        listener.start()
        try:
            with logs_telemetry.telemetry.tracer("test").start_as_current_span("s") as span:
                log.warning("through a queue")
        finally:
            listener.stop()
            log.handlers.clear()
        assert {"through a queue": _ids(span)} == _parsed(lines.lines)


class TestTraceContextFilter:
    """The filter adds the fields from a dictConfig, without instrumenting anything."""

    def test_from_dict_config(self, logs_telemetry: Harness) -> None:
        limelight_logs.uninstrument()
        lines = Lines(FORMAT)
        logging.config.dictConfig(
            _dict_config(
                lines,
                filters={"trace": {"()": "limelight_logs.TraceContextFilter"}},
                handlers={"lines": {"()": lambda: lines, "filters": ["trace"]}},
            )
        )
        with logs_telemetry.telemetry.tracer("test").start_as_current_span("s") as span:
            logging.getLogger("filtered").info("inside")
        logging.getLogger("filtered").info("outside")
        assert {"inside": _ids(span), "outside": ("", "", "")} == _parsed(lines.lines)
        assert 0 == logs_telemetry.value("log_emissions_total", level="info", default=0)


class TestInstrumentedFunctions:
    """A line written inside an @limelight.instrument function has that function's span."""

    def test_the_function_span(self, logs_telemetry: Harness) -> None:
        lines = Lines(FORMAT)
        log = logging.getLogger("functions")
        log.addHandler(lines)

        @limelight.instrument
        def charge(order: int) -> None:
            log.warning("charging %d", order)

        @limelight.instrument
        async def refund(order: int) -> None:
            log.warning("refunding %d", order)

        import asyncio

        charge(7)
        asyncio.run(refund(8))
        log.handlers.clear()
        found = _parsed(lines.lines)
        charge_span = logs_telemetry.span(name=f"{__name__}.{charge.__qualname__}")
        refund_span = logs_telemetry.span(name=f"{__name__}.{refund.__qualname__}")
        assert _ids(charge_span) == found["charging 7"]
        assert _ids(refund_span) == found["refunding 8"]


class TestInstrumentContract:
    """instrument() is idempotent, uninstrument() restores logging exactly."""

    def test_round_trip(self) -> None:
        handle = vars(logging.Logger)["handle"]
        assert ("logging",) == limelight_logs.instrument("logging")
        assert () == limelight_logs.instrument("logging")
        assert limelight_logs.is_instrumented("logging")
        assert vars(logging.Logger)["handle"] is not handle
        assert ("logging",) == limelight_logs.uninstrument("logging")
        assert vars(logging.Logger)["handle"] is handle
        assert not limelight_logs.is_instrumented("logging")
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        logging.getLogger("after").handle(record)
        assert not hasattr(record, "trace_id")

    def test_unknown_library(self) -> None:
        with pytest.raises(ValueError, match="cannot instrument 'loguru'"):
            limelight_logs.instrument("loguru")

    def test_instrumented_at_start_as_the_variable_says(self) -> None:
        with Harness(
            plugins=[limelight_logs.plugin], env={"LIMELIGHT_LOGS_INSTRUMENT": "structlog"}
        ):
            assert limelight_logs.is_instrumented("structlog")
            assert not limelight_logs.is_instrumented("logging")
        limelight_logs.uninstrument()
        with Harness(plugins=[limelight_logs.plugin], env={"LIMELIGHT_LOGS_INSTRUMENT": "none"}):
            assert not limelight_logs.is_instrumented()
        with Harness(plugins=[limelight_logs.plugin]):
            assert limelight_logs.is_instrumented("logging")
            assert limelight_logs.is_instrumented("structlog")
