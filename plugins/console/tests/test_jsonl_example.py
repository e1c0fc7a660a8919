"""The exporter guide's example plugin, installed as a real distribution, exports JSON lines."""

from __future__ import annotations

import json
import re
from importlib.metadata import entry_points
from pathlib import Path

import limelight
from limelight.testing import Harness

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = Path(__file__).parent / "dists" / "limelight-jsonl"


class TestJsonLinesExample:
    """The guide's example is discovered through its entry point and writes every signal."""

    def test_installed_plugin_writes_spans_and_metrics(self, tmp_path: Path) -> None:
        found = [ep for ep in entry_points(group="limelight.plugins") if ep.name == "jsonl"]
        assert found, "the limelight-jsonl example distribution is not installed"
        out = tmp_path / "telemetry.jsonl"
        environ = {
            "LIMELIGHT_PLUGINS": "jsonl,limelight.function_metrics,limelight.function_tracing",
            "LIMELIGHT_JSONL_PATH": str(out),
            "OTEL_SERVICE_NAME": "jsonl-test",
        }

        @limelight.instrument(name="jobs.run")
        def run(n: int) -> int:
            return n + 1

        telemetry = limelight.Telemetry(environ=environ, handle_signals=False)
        telemetry.start()
        try:
            assert "jsonl" in telemetry.plugins.names()
            assert [run(1), run(2)] == [2, 3]
        finally:
            assert telemetry.stop()
        records = [json.loads(line) for line in out.read_text().splitlines()]
        spans = [r for r in records if r["type"] == "span"]
        assert [s["name"] for s in spans] == ["jobs.run", "jobs.run"]
        calls = [
            r for r in records if r["type"] == "metric" and r["name"] == "function_calls_total"
        ]
        assert [
            r["value"] for r in calls if r["labels"] == {"function": "jobs.run", "result": "ok"}
        ] == [2.0]

    def test_a_file_that_cannot_be_written_never_breaks_the_service(self, tmp_path: Path) -> None:
        out = tmp_path / "missing-directory" / "telemetry.jsonl"
        environ = {
            "LIMELIGHT_PLUGINS": "jsonl,limelight.function_metrics,limelight.function_tracing",
            "LIMELIGHT_JSONL_PATH": str(out),
        }

        @limelight.instrument(name="jobs.run")
        def run(n: int) -> int:
            return n + 1

        with Harness(entry_points=True, env=environ) as harness:
            assert [run(1), run(2)] == [2, 3]
            assert not harness.telemetry.force_flush(5.0)
            # the span exporter's FAILURE and the reader's own count
            assert harness.value("limelight_spans_dropped_total") == 2.0
            assert harness.value("limelight_export_errors_total", exporter="jsonl") == 2.0
        assert not out.exists()

    def test_the_guide_shows_the_example_as_it_is(self) -> None:
        guide = (ROOT / "docs" / "exporter-guide.md").read_text()
        blocks = re.findall(r"```(?:python|toml)\n(.*?)```", guide, flags=re.DOTALL)
        source = (EXAMPLE / "src" / "limelight_jsonl" / "__init__.py").read_text()
        project = (EXAMPLE / "pyproject.toml").read_text()
        assert source in blocks
        assert project in blocks
