"""The installed `limelight` console script: plugins, config, demo."""

from __future__ import annotations

import json
import subprocess

from limelight_testsupport import console_script


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("limelight"), *args],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestConfigCommand:
    """`limelight config` shows each effective value and where it came from."""

    def test_sources_and_values(self) -> None:
        proc = _run("config", OTEL_SERVICE_NAME="checkout", OTEL_EXPORTER_OTLP_TIMEOUT="2500")
        assert 0 == proc.returncode, proc.stderr
        rows = {
            line.split()[0]: line.split()[1:]
            for line in proc.stdout.splitlines()[3:]
            if line.strip() and not line.startswith(" ")
        }
        assert ["checkout", "OTEL_SERVICE_NAME"] == rows["service_name"]
        assert ["2.5", "OTEL_EXPORTER_OTLP_TIMEOUT"] == rows["otlp_traces.timeout"]
        assert ["parentbased_always_on", "default"] == rows["traces_sampler"]

    def test_invalid_values_are_listed_with_their_fallback(self) -> None:
        proc = _run("config", OTEL_TRACES_SAMPLER="sometimes", LIMELIGHT_SERIES_LIMIT="-3")
        assert 0 == proc.returncode
        assert "invalid OTEL_TRACES_SAMPLER='sometimes'" in proc.stdout
        assert "using parentbased_always_on" in proc.stdout
        assert "invalid LIMELIGHT_SERIES_LIMIT='-3': must be >= 1" in proc.stdout

    def test_json_output_and_secret_headers(self) -> None:
        proc = _run("config", "--json", OTEL_EXPORTER_OTLP_HEADERS="api-key=hunter2")
        data = json.loads(proc.stdout)
        assert "OTEL_EXPORTER_OTLP_HEADERS" == data["settings"]["otlp_traces.headers"]["source"]
        assert "hunter2" not in proc.stdout


class TestPluginsCommand:
    """`limelight plugins` works from a fresh install."""

    def test_builtins_are_listed(self) -> None:
        proc = _run("plugins", "--json")
        assert 0 == proc.returncode, proc.stderr
        names = [p["name"] for p in json.loads(proc.stdout)["plugins"]]
        assert {"limelight.function_metrics", "limelight.function_tracing"} <= set(names)


class TestDemoCommand:
    """`limelight demo` runs without any external service."""

    def test_demo_prints_a_trace_and_metrics(self) -> None:
        proc = _run("demo", "--once")
        assert 0 == proc.returncode, proc.stderr
        assert "SERVER" in proc.stdout
        assert "function_calls_total" in proc.stdout
