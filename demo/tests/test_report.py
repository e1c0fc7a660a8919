"""The waterfall and the metrics table read well in a wide terminal and in an 80-column one."""

from __future__ import annotations

import contextlib
import io
import logging

import pytest
from limelight_demo import format_duration, log_lines, metrics_table, waterfall
from rich.console import Console, RenderableType

import limelight
from limelight.testing import Harness


@limelight.instrument(name="tea.brew")
def brew() -> None:
    steep()
    with contextlib.suppress(ValueError):
        pour()


@limelight.instrument(name="tea.steep")
def steep() -> None:
    return None


@limelight.instrument(name="tea.pour")
def pour() -> None:
    raise ValueError("cup is full")


def _text(renderable: RenderableType, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return [line.rstrip() for line in out.getvalue().splitlines()]


class TestWaterfall:
    """A trace is a tree of spans with kind, duration, status and a bar on one timeline."""

    def test_wide(self, telemetry: Harness) -> None:
        brew()
        lines = _text(waterfall(telemetry.spans(), 120), 120)
        assert lines[0].split()[:5] == ["span", "kind", "duration", "status", "0"]
        assert "detail" == lines[0].split()[-1]
        assert lines[1].startswith("tea.brew ")
        assert " SERVER " in lines[1]
        assert lines[2].startswith("├─ tea.steep ")
        assert lines[3].startswith("└─ tea.pour ")
        assert "ERROR" in lines[3]
        assert lines[3].endswith("ValueError: cup is full")
        assert 4 == len(lines)
        # the root's bar spans the whole timeline
        assert "█" * 24 in lines[1]

    def test_narrow_lists_errors_below(self, telemetry: Harness) -> None:
        brew()
        lines = _text(waterfall(telemetry.spans(), 80), 80)
        assert "detail" not in lines[0]
        assert all(len(line) <= 80 for line in lines)
        assert ["tea.pour: ValueError: cup is full"] == lines[4:]


class TestMetricsTable:
    """Each surface's series, counters with the mean of their duration histogram."""

    def test_wide_has_a_surface_column(self, telemetry: Harness) -> None:
        brew()
        lines = _text(metrics_table(telemetry.store, 140), 140)
        assert lines[0].startswith("surface")
        assert lines[1].startswith('functions  function_calls_total{function="tea.brew", ')
        row = next(line for line in lines if 'function="tea.pour", result="error"' in line)
        assert row.startswith(" ")
        assert row.split()[-3] == "1"
        assert row.split()[-1] in {"µs", "ms"}
        # counters at zero are left out, gauges are shown
        assert not any('function="tea.pour", result="ok"' in line for line in lines)
        assert any('function_in_flight{function="tea.pour"}' in line for line in lines)

    def test_narrow_heads_each_surface(self, telemetry: Harness) -> None:
        brew()
        lines = _text(metrics_table(telemetry.store, 60), 60)
        assert lines[0].startswith("series")
        assert "functions" == lines[1].strip()
        assert all(len(line) <= 60 for line in lines)


class TestLogLines:
    """Each line shows its trace and span ids and the name of the span they point to."""

    def _record(self, message: str, **ids: str) -> logging.LogRecord:
        record = logging.LogRecord("shop", logging.INFO, __file__, 1, message, (), None)
        record.__dict__.update(ids)
        return record

    def test_names_the_span_of_the_trace(self, telemetry: Harness) -> None:
        brew()
        spans = telemetry.spans()
        steeped = next(s for s in spans if s.name == "tea.steep")
        assert steeped.context is not None
        trace_id, span_id = f"{steeped.context.trace_id:032x}", f"{steeped.context.span_id:016x}"
        records = [
            self._record("steeped", trace_id=trace_id, span_id=span_id),
            self._record("elsewhere", trace_id=trace_id, span_id="1" * 16),
        ]
        assert [
            f"INFO    shop: steeped trace_id={trace_id} span_id={span_id}  ← tea.steep",
            f"INFO    shop: elsewhere trace_id={trace_id} span_id={'1' * 16}  "
            "← no span of this trace",
        ] == _text(log_lines(records, spans), 200)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.000_042, "42 µs"), (0.004_2, "4.20 ms"), (1.5, "1.50 s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert text == format_duration(seconds)
