"""structlog: the processor before the renderer, ids inside spans, none outside, counts exact."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import limelight_logs
import structlog
from conftest import Lines
from opentelemetry import baggage, context, trace
from opentelemetry.trace import Span

from limelight.testing import Harness


def _ids(span: Span) -> dict[str, str]:
    ctx = span.get_span_context()
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "trace_flags": f"{ctx.trace_flags:02x}",
    }


def _fields(event: dict[str, Any]) -> dict[str, str]:
    return {k: event[k] for k in ("trace_id", "span_id", "trace_flags") if k in event}


def _json_lines(out: io.StringIO) -> dict[str, dict[str, Any]]:
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    return {e["event"]: e for e in events}


def _configure_json(out: io.StringIO, **extra: Any) -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(out),
        **extra,
    )


class TestJsonRenderer:
    """structlog configured with a JSON renderer before limelight starts."""

    def test_lines_inside_and_outside_spans(self) -> None:
        out = io.StringIO()
        _configure_json(out, cache_logger_on_first_use=True)
        log = structlog.get_logger()
        log.info("bound before start")  # a cached logger, bound before the processor was placed
        with Harness(plugins=[limelight_logs.plugin]) as harness:
            tracer = harness.telemetry.tracer("test")
            log.info("outside")
            with tracer.start_as_current_span("request") as request:
                log.info("in request", order=7)
                log.warn("warned")
                with tracer.start_as_current_span("query") as query:
                    log.error("in query")
                try:
                    raise ValueError("boom")
                except ValueError:
                    log.exception("failed")
            structlog.get_logger("other").critical("after")
            counts = {
                level: harness.value("log_emissions_total", level=level, default=0)
                for level in ("debug", "info", "warning", "error", "critical")
            }
        events = _json_lines(out)
        assert {
            "bound before start": {},
            "outside": {},
            "in request": _ids(request),
            "warned": _ids(request),
            "in query": _ids(query),
            "failed": _ids(request),
            "after": {},
        } == {name: _fields(e) for name, e in events.items()}
        assert 7 == events["in request"]["order"]
        assert {"debug": 0, "info": 2, "warning": 1, "error": 2, "critical": 1} == counts

    def test_the_processor_sits_before_the_renderer(self, logs_telemetry: Harness) -> None:
        out = io.StringIO()
        _configure_json(out)  # configured after limelight started
        chain = structlog.get_config()["processors"]
        assert limelight_logs.add_trace_context is chain[-2]
        assert isinstance(chain[-1], structlog.processors.JSONRenderer)
        structlog.reset_defaults()
        chain = structlog.get_config()["processors"]
        assert limelight_logs.add_trace_context is chain[-2]
        assert isinstance(chain[-1], structlog.dev.ConsoleRenderer)
        structlog.reset_defaults()
        structlog.configure_once(processors=[structlog.processors.KeyValueRenderer()])
        assert [limelight_logs.add_trace_context] == structlog.get_config()["processors"][:-1]
        structlog.reset_defaults()
        chain = structlog.get_config()["processors"]
        assert limelight_logs.add_trace_context is chain[-2]
        assert isinstance(chain[-1], structlog.dev.ConsoleRenderer)

    def test_keys_the_event_has_are_kept(self, logs_telemetry: Harness) -> None:
        out = io.StringIO()
        _configure_json(out)
        with logs_telemetry.telemetry.tracer("t").start_as_current_span("s"):
            structlog.get_logger().info("own", trace_id="mine")
        assert "mine" == _json_lines(out)["own"]["trace_id"]

    def test_uninstrument_takes_it_out(self, logs_telemetry: Harness) -> None:
        out = io.StringIO()
        _configure_json(out)
        limelight_logs.uninstrument("structlog")
        assert limelight_logs.add_trace_context not in structlog.get_config()["processors"]
        with logs_telemetry.telemetry.tracer("t").start_as_current_span("s"):
            structlog.get_logger().info("plain")
        assert {} == _fields(_json_lines(out)["plain"])
        assert 0 == logs_telemetry.value("log_emissions_total", level="info", default=0)
        _configure_json(out)
        assert limelight_logs.add_trace_context not in structlog.get_config()["processors"]


class TestThroughLogging:
    """structlog over the standard library: one count per event, ids in the rendered line,
    and foreign logging lines rendered with their ids through foreign_pre_chain."""

    def test_processor_formatter(self, logs_telemetry: Harness) -> None:
        lines = Lines()
        lines.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.processors.JSONRenderer(),
                foreign_pre_chain=[limelight_logs.add_trace_context],
            )
        )
        root = logging.getLogger()
        root.addHandler(lines)
        root.setLevel(logging.INFO)
        structlog.configure(
            processors=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        with logs_telemetry.telemetry.tracer("t").start_as_current_span("s") as span:
            structlog.get_logger("app").info("from structlog")
            logging.getLogger("lib").warning("from logging")
        structlog.get_logger("app").info("outside")
        events = {e["event"]: e for e in map(json.loads, lines.lines)}
        assert _ids(span) == _fields(events["from structlog"])
        assert _ids(span) == _fields(events["from logging"])
        assert {} == _fields(events["outside"])
        assert 2 == logs_telemetry.value("log_emissions_total", level="info")
        assert 1 == logs_telemetry.value("log_emissions_total", level="warning")

    def test_counted_by_the_processor_when_logging_is_not_instrumented(self) -> None:
        lines = Lines()
        logging.getLogger("app").addHandler(lines)
        logging.getLogger("app").setLevel(logging.INFO)
        structlog.configure(
            processors=[structlog.stdlib.render_to_log_kwargs],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        with Harness(
            plugins=[limelight_logs.plugin], env={"LIMELIGHT_LOGS_INSTRUMENT": "structlog"}
        ) as harness:
            structlog.get_logger("app").info("once")
            assert 1 == harness.value("log_emissions_total", level="info")
        logging.getLogger("app").handlers.clear()
        logging.getLogger("app").setLevel(logging.NOTSET)
        assert ["once"] == lines.lines

    def test_interleaved_tasks_and_contexts_each_get_their_own_span(
        self, logs_telemetry: Harness
    ) -> None:
        # the ids are kept per context: lines that alternate between spans, a context
        # holding the same span with baggage, and an unsampled span are all told apart
        out = io.StringIO()
        _configure_json(out)
        log = structlog.get_logger()
        tracer = logs_telemetry.telemetry.tracer("test")
        spans: dict[str, Span] = {}

        async def task(name: str) -> None:
            with tracer.start_as_current_span(name) as span:
                spans[name] = span
                for i in range(3):
                    log.info(f"{name} {i}")
                    await asyncio.sleep(0)

        async def both() -> None:
            await asyncio.gather(task("a"), task("b"))

        asyncio.run(both())
        with tracer.start_as_current_span("outer") as outer:
            token = context.attach(baggage.set_baggage("tenant", "t1"))
            log.info("with baggage")
            context.detach(token)
            unsampled = trace.NonRecordingSpan(
                trace.SpanContext(
                    outer.get_span_context().trace_id,
                    0xFF,
                    is_remote=False,
                    trace_flags=trace.TraceFlags(0),
                )
            )
            with trace.use_span(unsampled):
                log.info("unsampled")
            log.info("outer again")
        log.info("outside")
        events = _json_lines(out)
        for name in ("a", "b"):
            for i in range(3):
                assert _ids(spans[name]) == _fields(events[f"{name} {i}"])
        assert _ids(outer) == _fields(events["with baggage"])
        assert _ids(outer) == _fields(events["outer again"])
        assert {
            "trace_id": f"{outer.get_span_context().trace_id:032x}",
            "span_id": "00000000000000ff",
            "trace_flags": "00",
        } == _fields(events["unsampled"])
        assert {} == _fields(events["outside"])
        assert 10 == logs_telemetry.value("log_emissions_total", level="info")
