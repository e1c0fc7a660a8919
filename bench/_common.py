"""What the benchmarks share: span sinks, CPU timing, the verdict, instruction counts.

Both sides of a comparison send their spans through a batch processor with the
same queue and delay into an exporter that drops them, so the figure is the cost
of making spans, not of shipping them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import limelight
from limelight_hookspecs import TelemetryView, hookimpl

# both span pipelines get a queue large enough that no span is dropped (dropping is cheaper)
BSP_QUEUE = 1 << 17
BSP_DELAY_MS = 200


class NullExporter(SpanExporter):
    """Accepts spans and drops them: the cost measured is making them, not shipping them."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class NullExporterPlugin:
    limelight_name = "bench.null_exporter"
    limelight_priority = 190

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        return (NullExporter(),)


def start_limelight(
    plugin: object, service_name: str, environ: Mapping[str, str] | None = None
) -> limelight.Telemetry:
    """A started telemetry with *plugin*, every span sampled and dropped at export
    (*environ*: more configuration variables)."""
    return limelight.Telemetry(
        plugins=[plugin, NullExporterPlugin()],
        entry_points=False,
        install_globals=False,
        handle_signals=False,
        environ={
            "OTEL_BSP_MAX_QUEUE_SIZE": str(BSP_QUEUE),
            "OTEL_BSP_SCHEDULE_DELAY": str(BSP_DELAY_MS),
            **(environ or {}),
        },
        service_name=service_name,
        traces_sampler="always_on",
    ).start()


def otel_provider() -> TracerProvider:
    """An OpenTelemetry SDK provider for the peers, with the same batch settings."""
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(
            NullExporter(), max_queue_size=BSP_QUEUE, schedule_delay_millis=BSP_DELAY_MS
        )
    )
    return provider


def cpu_per_op(op: Callable[[int], Any], n: int) -> float:
    """Process CPU time per call of ``op(i)`` for ``i`` in ``range(n)``, in µs."""
    start = time.process_time()
    for i in range(n):
        op(i)
    return (time.process_time() - start) / n * 1e6


def comparison(ours: float, theirs: float, target_us: float | None = None) -> str:
    """The line comparing limelight's added µs with OpenTelemetry's (and the target, if any)."""
    ratio = theirs / ours if ours > 0 else float("inf")
    target = ""
    if target_us is not None:
        verdict = "within" if ours <= target_us else "over"
        target = f" ({verdict} the {target_us:g} µs target)"
    return (
        f"limelight metrics adds {ours:.2f} µs{target}; "
        f"OpenTelemetry adds {theirs:.2f} µs ({ratio:.1f}x ours)"
    )


def add_instruction_options(parser: argparse.ArgumentParser) -> None:
    """``--instructions`` (count under callgrind instead of timing) and ``--jobs``."""
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under callgrind instead of timing",
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="with --instructions: runs at once"
    )


def instructions_per_unit(
    script: str,
    children: Sequence[tuple[str, ...]],
    count_option: str,
    count: int,
    jobs: int,
) -> dict[tuple[str, ...], float] | None:
    """Instructions per unit of work of each child ``python script *arguments``: the
    count with ``count_option 1 + count`` less the count with ``count_option 1``, over
    *count* (what starting the child costs cancels out). Every thread is counted by
    ``valgrind --tool=callgrind``, children of the child not followed, *jobs* runs at
    once. ``None`` (said on stderr) when valgrind is not installed."""
    if shutil.which("valgrind") is None:
        print("--instructions needs valgrind (Debian's package valgrind)", file=sys.stderr)
        return None
    runs = [(child, n) for child in children for n in (1, 1 + count)]

    def counted(run: tuple[tuple[str, ...], int]) -> int:
        child, n = run
        return _callgrind_instructions(script, *child, count_option, str(n))

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        totals = dict(zip(runs, pool.map(counted, runs), strict=True))
    return {child: (totals[(child, 1 + count)] - totals[(child, 1)]) / count for child in children}


def _callgrind_instructions(script: str, *args: str) -> int:
    """The instructions ``python script *args`` executes (every thread, children not
    followed), counted by ``valgrind --tool=callgrind``; run from *script*'s directory."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            script,
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=os.path.dirname(os.path.abspath(script)),
        timeout=3600,
    )
    collected = [line for line in out.stderr.splitlines() if "Collected :" in line]
    if out.returncode != 0 or not collected:
        raise RuntimeError(f"{' '.join(args)} under callgrind failed:\n{out.stderr[-4000:]}")
    return int(collected[-1].rsplit(":", 1)[1].strip())
