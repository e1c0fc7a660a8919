"""The installed `limelight` console script: plugins, config, catalog, demo."""

from __future__ import annotations

import json
import re
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


class TestConfigNeverFails:
    """`limelight config` exits 0 and shows the fallback whatever the environment holds."""

    def test_values_that_used_to_raise_or_pass_silently(self) -> None:
        proc = _run(
            "config",
            OTEL_EXPORTER_OTLP_ENDPOINT="http://[::1",
            OTEL_TRACES_EXPORTER="garbage",
            OTEL_SPAN_EVENT_COUNT_LIMIT="-1",
            LIMELIGHT_SHUTDOWN_TIMEOUT="1e300",
        )
        assert 0 == proc.returncode, proc.stderr
        assert "Traceback" not in proc.stderr
        rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[3:] if line}
        assert ["(none)", "OTEL_TRACES_EXPORTER"] == rows["traces_exporters"]
        assert ["128", "default"] == rows["OTEL_SPAN_EVENT_COUNT_LIMIT"]
        assert ["10.0", "default"] == rows["shutdown_timeout"]
        assert "invalid OTEL_EXPORTER_OTLP_ENDPOINT='http://[::1': malformed URL" in proc.stdout
        assert "invalid OTEL_TRACES_EXPORTER='garbage'" in proc.stdout
        assert "invalid LIMELIGHT_SHUTDOWN_TIMEOUT='1e300': must be <= 86400" in proc.stdout

    def test_json_lists_the_same_problems(self) -> None:
        proc = _run("config", "--json", OTEL_METRICS_EXPORTER="garbage")
        assert 0 == proc.returncode, proc.stderr
        data = json.loads(proc.stdout)
        assert "(none)" == data["settings"]["metrics_exporters"]["value"]
        [problem] = data["problems"]
        assert problem.startswith("invalid OTEL_METRICS_EXPORTER='garbage'")


class TestPluginsCommand:
    """`limelight plugins` works from a fresh install."""

    def test_check_shows_a_hook_that_raises_as_failed(self) -> None:
        listed = _run("plugins", "--json")
        assert 0 == listed.returncode, listed.stderr
        statuses = {p["name"]: p["status"] for p in json.loads(listed.stdout)["plugins"]}
        assert "loaded" == statuses["faulty-hook"]  # nothing was started
        checked = _run("plugins", "--check", "--json")
        assert 1 == checked.returncode, checked.stderr
        data = json.loads(checked.stdout)
        by_name = {p["name"]: p for p in data["plugins"]}
        assert "failed" == by_name["faulty-hook"]["status"]
        assert (
            "hook limelight_lifecycle_start: RuntimeError: faulty-hook refuses to start"
            == by_name["faulty-hook"]["error"]
        )
        assert "loaded" == by_name["alpha"]["status"]
        assert {"faulty-import", "faulty-hook"} == {f["plugin"] for f in data["failures"]}

    def test_check_exports_nothing_and_says_when_all_is_well(self) -> None:
        proc = _run(
            "plugins",
            "--check",
            LIMELIGHT_DISABLED_PLUGINS="faulty-import,faulty-hook",
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="console",
        )
        assert 0 == proc.returncode, proc.stdout + proc.stderr
        assert "every plugin configured, started and stopped without a failure" in proc.stdout
        assert "limelight.function_metrics" in proc.stdout

    def test_builtins_are_listed(self) -> None:
        proc = _run("plugins", "--json")
        assert 0 == proc.returncode, proc.stderr
        names = [p["name"] for p in json.loads(proc.stdout)["plugins"]]
        assert {"limelight.function_metrics", "limelight.function_tracing"} <= set(names)


def _catalog_rows(stdout: str) -> dict[str, list[str]]:
    """``limelight catalog``'s table by metric name (columns are 2+ spaces apart)."""
    lines = stdout.splitlines()
    assert ["metric", "kind", "unit", "labels", "declared by"] == re.split(r"\s{2,}", lines[0])
    assert set(lines[1]) == {"-", " "}
    return {row[0]: row[1:] for row in (re.split(r"\s{2,}", ln) for ln in lines[2:] if ln)}


class TestCatalogCommand:
    """`limelight catalog` lists every metric the installed plugins declare, and who declares it."""

    def test_core_and_installed_plugins_metrics(self) -> None:
        proc = _run("catalog")
        assert 0 == proc.returncode, proc.stderr
        rows = _catalog_rows(proc.stdout)
        assert ["counter", "1", "function, result", "limelight.function_metrics"] == rows[
            "function_calls_total"
        ]
        assert ["histogram", "s", "function, result", "limelight.function_metrics"] == rows[
            "function_duration_seconds"
        ]
        assert ["gauge_add", "1", "function", "limelight.function_metrics"] == rows[
            "function_in_flight"
        ]
        assert ["counter", "1", "-", "limelight"] == rows["limelight_spans_dropped_total"]
        assert ["counter", "1", "exporter", "limelight"] == rows["limelight_export_errors_total"]
        # a test-only distribution installed like any plugin
        assert ["counter", "-", "-", "alpha"] == rows["alpha_events_total"]

    def test_lists_what_is_installed_whatever_the_environment_selects(self) -> None:
        proc = _run("catalog", LIMELIGHT_PLUGINS="", LIMELIGHT_METRICS_NAMESPACE="shop")
        rows = _catalog_rows(proc.stdout)
        assert {"function_calls_total", "alpha_events_total", "beta_events_total"} <= set(rows)

    def test_a_plugin_that_fails_to_load_is_reported_and_the_rest_listed(self) -> None:
        proc = _run("catalog")
        assert 0 == proc.returncode
        assert "plugin 'faulty-import' failed (load)" in proc.stderr
        assert "beta" == _catalog_rows(proc.stdout)["beta_events_total"][-1]

    def test_markdown_is_the_documentation_page(self) -> None:
        proc = _run("catalog", "--markdown")
        assert 0 == proc.returncode, proc.stderr
        lines = proc.stdout.splitlines()
        assert "# Metric catalog" == lines[0]
        assert "| metric | kind | unit | labels | declared by | help |" in lines
        assert (
            "| `function_calls_total` | counter | 1 | function, result | "
            "limelight.function_metrics | Calls of instrumented functions, by function and "
            "result (ok/error). |"
        ) in lines
        assert "| `alpha_events_total` | counter | — | — | alpha | Test events. |" in lines


class TestDemoCommand:
    """`limelight demo` runs without any external service."""

    def test_demo_prints_a_trace_and_metrics(self) -> None:
        proc = _run("demo", "--once")
        assert 0 == proc.returncode, proc.stderr
        assert "SERVER" in proc.stdout
        assert "function_calls_total" in proc.stdout
