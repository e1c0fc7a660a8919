"""Start-up cost with every plugin installed: limelight against the OpenTelemetry setups.

Each variant is a fresh interpreter that sets telemetry up and reports, at
the moment it is ready, its CPU time so far (``time.process_time``, interpreter
start-up included), its resident memory (``VmRSS``) and how many modules it
has imported; the wall time is measured by this process from the spawn to that
report. Every figure is over a bare interpreter (``python -c pass``, in the same
round), as a median of interleaved rounds:

- ``import limelight``;
- ``import limelight; limelight.start()`` exporting spans and metrics over
  OTLP (``OTEL_TRACES_EXPORTER`` and ``OTEL_METRICS_EXPORTER`` ``otlp``,
  ``OTEL_LOGS_EXPORTER=none``: the signals the manual setup below sets up,
  the row the target compares), the same with log records exported over OTLP
  too (the specification's default for ``OTEL_LOGS_EXPORTER``), and with its
  defaults (every installed exporter: OTLP for the three signals and the
  Prometheus server);
- a manual OpenTelemetry SDK + OTLP setup (a tracer provider with a batch span
  processor and the OTLP/HTTP span exporter, a meter provider with a periodic
  reader and the OTLP/HTTP metric exporter, both set as the globals);
- ``opentelemetry-instrument`` with the distro and an instrumentation for each
  library limelight's surfaces cover (``bench/requirements-startup.txt``),
  measured as ``opentelemetry-instrument python -c ...``.

The environment is the bench session's: every limelight distribution installed,
with the libraries they instrument. Nothing listens on the OTLP endpoint and no
variant lives long enough to export: the figures are the cost of being ready.

    nox -s "bench(startup)" [-- --rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPORT = """
import json, os, sys, time
rss = 0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
print(json.dumps({"cpu": time.process_time(), "rss": rss, "modules": len(sys.modules)}), flush=True)
os._exit(0)
"""

MANUAL = """
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

resource = Resource.create({"service.name": "bench"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)
reader = PeriodicExportingMetricReader(OTLPMetricExporter())
metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
"""

OTLP_ONLY = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "none",
}
OURS = "limelight.start() (otlp: spans, metrics)"


def _variants(python: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Name -> (command, extra environment)."""
    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "bare interpreter": ([python, "-c", REPORT], {}),
        "import limelight": ([python, "-c", "import limelight\n" + REPORT], {}),
        OURS: (
            [python, "-c", "import limelight\nlimelight.start()\n" + REPORT],
            OTLP_ONLY,
        ),
        "limelight.start() (otlp: spans, metrics, logs)": (
            [python, "-c", "import limelight\nlimelight.start()\n" + REPORT],
            {**OTLP_ONLY, "OTEL_LOGS_EXPORTER": "otlp"},
        ),
        "limelight.start() (defaults: otlp + prometheus)": (
            [python, "-c", "import limelight\nlimelight.start()\n" + REPORT],
            {"OTEL_EXPORTER_PROMETHEUS_PORT": "0"},
        ),
        "manual SDK + OTLP": ([python, "-c", MANUAL + REPORT], {}),
    }
    instrument = shutil.which("opentelemetry-instrument", path=str(Path(python).parent))
    if instrument is not None:
        variants["opentelemetry-instrument"] = (
            [instrument, python, "-c", REPORT],
            OTLP_ONLY,
        )
    return variants


def _measure(command: list[str], env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{command[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    report: dict[str, float] = json.loads(lines[-1])
    report["wall"] = wall
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    # the warm-up run writes the bytecode caches, as any deployed service has them
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "LIMELIGHT_", "PROMETHEUS_"))
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    base_env.update(
        {
            "OTEL_SERVICE_NAME": "bench",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # nothing listens
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
        }
    )
    variants = _variants(sys.executable)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for command, extra in variants.values():  # warm the file and bytecode caches once
        _measure(command, {**base_env, **extra})
    for _ in range(args.rounds):
        for name, (command, extra) in variants.items():
            results[name].append(_measure(command, {**base_env, **extra}))

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    bare = "bare interpreter"
    print(f"start-up over a bare interpreter, median of {args.rounds} interleaved rounds")
    print(
        f"(bare: {median(bare, 'wall') * 1e3:.0f} ms wall, {median(bare, 'cpu') * 1e3:.0f} ms "
        f"CPU, {median(bare, 'rss') / 1024:.1f} MiB, {median(bare, 'modules'):.0f} modules)\n"
    )
    print(f"{'variant':50} {'wall ms':>8} {'CPU ms':>8} {'RSS MiB':>8} {'modules':>8}")
    for name in variants:
        if name == bare:
            continue
        wall = (median(name, "wall") - median(bare, "wall")) * 1e3
        cpu = (median(name, "cpu") - median(bare, "cpu")) * 1e3
        rss = (median(name, "rss") - median(bare, "rss")) / 1024
        modules = median(name, "modules") - median(bare, "modules")
        print(f"{name:50} {wall:8.0f} {cpu:8.0f} {rss:8.1f} {modules:8.0f}")
    manual = "manual SDK + OTLP"
    ours = OURS

    def ratio(key: str) -> float:
        return (median(ours, key) - median(bare, key)) / (median(manual, key) - median(bare, key))

    print(
        f"\n{OURS} / manual SDK + OTLP: {ratio('cpu'):.2f}x CPU, "
        f"{ratio('wall'):.2f}x wall (target: at most 1x); import limelight: "
        f"{(median('import limelight', 'cpu') - median(bare, 'cpu')) * 1e3:.0f} ms CPU "
        "(target: at most 100 ms)"
    )


if __name__ == "__main__":
    main()
