"""The batch span processor across a fork: each process exports its own spans, once."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from limelight._batch import BoundedBatchSpanProcessor
from limelight._spans import TracerProvider
from limelight.metrics import MetricStore
from limelight_hookspecs import BatchSettings


class _ByProcess(SpanExporter):
    """Appends each exported span's name to a file named after the exporting process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with (self.folder / str(os.getpid())).open("a") as out:
            out.writelines(f"{span.name}\n" for span in spans)
        return SpanExportResult.SUCCESS


def _exported(folder: Path, pid: int) -> list[str]:
    path = folder / str(pid)
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
class TestFork:
    """A forked child drops the spans it inherited queued and exports the ones it makes."""

    def test_each_process_exports_its_own_spans(self, tmp_path: Path) -> None:
        processor = BoundedBatchSpanProcessor(
            _ByProcess(tmp_path), "by-process", BatchSettings(schedule_delay=60.0), MetricStore()
        )
        provider = TracerProvider()
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("test")
        tracer.start_span("queued in the parent").end()  # waits for the 60 s schedule
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit status
            code = 1
            try:
                tracer.start_span("made in the child").end()
                code = 0 if processor.flush(10.0) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert 0 == os.waitstatus_to_exitcode(status)
        assert processor.flush(10.0)
        processor.shutdown()
        assert ["made in the child"] == _exported(tmp_path, child)
        assert ["queued in the parent"] == _exported(tmp_path, os.getpid())
