"""Development output: trace trees as traces complete, a metrics summary at stop."""

from __future__ import annotations

import contextlib
import io
import time

import limelight_console
import pytest
from limelight_console import ConsoleSpanProcessor, plugin, render_metrics
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

import limelight
import limelight.metrics
from limelight.testing import Harness


@limelight.instrument(name="shop.load")
def load() -> None:
    time.sleep(0.002)


@limelight.instrument(name="shop.charge")
def charge() -> None:
    raise RuntimeError("card declined")


@limelight.instrument(name="shop.checkout")
def checkout() -> None:
    load()
    with contextlib.suppress(RuntimeError):
        charge()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _tree(lines: list[str]) -> list[str]:
    """The tree part of printed span lines (without trace headers and durations)."""
    return [line.strip().split("  ", 1)[1] for line in lines if not line.startswith("trace ")]


class TestTraceTree:
    """A trace is printed to stderr as an indented tree with durations when its root ends."""

    @pytest.mark.limelight(plugins=[plugin], env={"OTEL_METRICS_EXPORTER": "none"})
    def test_tree_with_durations_kinds_and_errors(
        self, telemetry: Harness, capsys: pytest.CaptureFixture[str]
    ) -> None:
        checkout()
        root = telemetry.span("shop.checkout")
        assert root.context is not None
        lines = _lines(capsys.readouterr().err)
        assert f"trace {root.context.trace_id:032x}" == lines[0]
        body = [line.split("  ", 2)[-1] for line in lines[1:]]
        assert body[0].startswith("shop.checkout [server]")
        assert body[1].startswith("├─ shop.load")
        assert body[2].startswith("└─ shop.charge  ERROR RuntimeError: card declined")
        assert len(body) == 3
        duration = lines[2].strip().split("  ")[0]
        assert duration.endswith(" ms")
        assert float(duration.removesuffix(" ms")) >= 2.0

    def test_nothing_is_printed_before_the_root_ends(self) -> None:
        out = io.StringIO()
        with Harness(plugins=[], env={}) as harness:
            processor = ConsoleSpanProcessor(out, attributes=False)
            harness.telemetry.tracer_provider.add_span_processor(processor)
            tracer = harness.telemetry.tracer("t")
            with tracer.start_as_current_span("request"):
                with tracer.start_as_current_span("db"):
                    pass
                assert out.getvalue() == ""
        lines = _lines(out.getvalue())
        assert [line.split("  ", 2)[-1] for line in lines[1:]] == ["request", "└─ db"]

    def test_a_remote_parent_makes_a_local_root(self) -> None:
        out = io.StringIO()
        with Harness() as harness:
            harness.telemetry.tracer_provider.add_span_processor(ConsoleSpanProcessor(out))
            tracer = harness.telemetry.tracer("t")
            incoming = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
            ctx = propagate.extract(incoming)
            with tracer.start_as_current_span("GET /items", context=ctx, kind=SpanKind.SERVER):
                pass
        lines = _lines(out.getvalue())
        assert lines[0] == "trace 0af7651916cd43dd8448eb211c80319c"
        assert "GET /items [server]" in lines[1]

    def test_local_roots_of_one_trace_are_printed_apart(self) -> None:
        out = io.StringIO()
        with Harness() as harness:
            harness.telemetry.tracer_provider.add_span_processor(
                ConsoleSpanProcessor(out, attributes=False)
            )
            tracer = harness.telemetry.tracer("t")
            incoming = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
            ctx = propagate.extract(incoming)
            first = tracer.start_span("first", context=ctx)
            second = tracer.start_span("second", context=ctx)
            with trace.use_span(second):
                tracer.start_span("second.child").end()
            with trace.use_span(first), tracer.start_as_current_span("first.child"):
                tracer.start_span("first.grandchild").end()
            first.end()
            printed_first = _lines(out.getvalue())
            second.end()
        first_tree = ["first", "└─ first.child", "   └─ first.grandchild"]
        assert _tree(printed_first) == first_tree
        assert _tree(_lines(out.getvalue())) == [*first_tree, "second", "└─ second.child"]

    def test_spans_that_outlive_their_root_are_printed_at_shutdown(self) -> None:
        out = io.StringIO()
        processor = ConsoleSpanProcessor(out, attributes=False)
        with Harness() as harness:
            harness.telemetry.tracer_provider.add_span_processor(processor)
            tracer = harness.telemetry.tracer("t")
            with tracer.start_as_current_span("request"):
                background = tracer.start_span("background")
            background.end()
            printed_before = out.getvalue().count("background")
            processor.shutdown()
        assert printed_before == 0
        assert out.getvalue().count("background") == 1

    @pytest.mark.limelight(plugins=[plugin], env={"OTEL_TRACES_EXPORTER": "otlp"})
    def test_traces_exporter_selection_is_respected(
        self, telemetry: Harness, capsys: pytest.CaptureFixture[str]
    ) -> None:
        checkout()
        assert "shop.checkout" not in capsys.readouterr().err

    def test_attributes_can_be_hidden(self, capsys: pytest.CaptureFixture[str]) -> None:
        env = {"LIMELIGHT_CONSOLE_ATTRIBUTES": "false", "OTEL_METRICS_EXPORTER": "none"}
        with Harness(plugins=[plugin], env=env):
            checkout()
        assert "code.function.name" not in capsys.readouterr().err


class TestMetricsSummary:
    """At stop the store is summarised: counters above zero, histograms, every gauge."""

    def test_summary_at_stop(self, capsys: pytest.CaptureFixture[str]) -> None:
        with Harness(plugins=[plugin], env={"OTEL_TRACES_EXPORTER": "none"}):
            checkout()
            checkout()
            assert "metrics" not in capsys.readouterr().err
        err = capsys.readouterr().err
        assert 'function_calls_total{function="shop.checkout",result="ok"}  2' in err
        assert 'function_calls_total{function="shop.charge",result="error"}  2' in err
        assert 'function_in_flight{function="shop.load"}  0' in err
        hist = next(
            line
            for line in err.splitlines()
            if "function_duration_seconds" in line and "shop.load" in line
        )
        assert "count=2" in hist
        assert "p50≤5.00 ms" in hist
        assert "limelight_spans_dropped_total" not in err

    def test_empty_store(self) -> None:
        store = limelight.metrics.MetricStore()
        assert render_metrics(store.snapshot()) == ["metrics: nothing recorded"]


def test_public_api() -> None:
    assert sorted(limelight_console.__all__) == sorted(
        n for n in dir(limelight_console) if not n.startswith("_") and n != "annotations"
    )
