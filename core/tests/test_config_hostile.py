"""Configuration never takes the service down: each value that once stopped or silently
broke telemetry is reported (variable, value, fallback) and the fallback is used."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from structlog.testing import capture_logs

import limelight
from limelight import load_config
from limelight.testing import Harness
from limelight_hookspecs import (
    MAX_DURATION_MILLIS,
    Config,
    ConfigProblem,
    TelemetryView,
    hookimpl,
    parse_millis,
    parse_url,
)

FORTY_DIGITS = "1234567890" * 4


def _messages(config: Config, variable: str) -> list[str]:
    return [p.message() for p in config.problems if p.variable == variable]


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIMELIGHT_"))}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class _Collecting(SpanExporter):
    def __init__(self) -> None:
        self.names: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.names += [s.name for s in spans]
        return SpanExportResult.SUCCESS


class _Exporter:
    """An exporter plugin called ``mine`` that honours OTEL_TRACES_EXPORTER."""

    limelight_name = "mine"

    def __init__(self) -> None:
        self.exporter = _Collecting()

    @hookimpl
    def limelight_spans_provide_exporters(self, telemetry: TelemetryView) -> Sequence[SpanExporter]:
        if not telemetry.config.exporter_enabled("traces", self.limelight_name):
            return ()
        return (self.exporter,)


def _telemetry(environ: dict[str, str], *plugins: object) -> limelight.Telemetry:
    return limelight.Telemetry(
        environ=environ,
        plugins=plugins,
        entry_points=False,
        install_globals=False,
        handle_signals=False,
    )


class TestEndpoints:
    """A malformed OTLP endpoint (any of the three variables) is reported, never raised."""

    @pytest.mark.parametrize(
        ("variable", "fallback"),
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://localhost:4318/v1/traces"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://localhost:4318/v1/metrics"),
        ],
    )
    def test_an_unclosed_ipv6_literal(self, variable: str, fallback: str) -> None:
        config = load_config(environ={variable: "http://[::1"})
        assert [
            f"invalid {variable}='http://[::1': malformed URL: Invalid IPv6 URL; using {fallback}"
        ] == _messages(config, variable)
        assert config.otlp_traces.endpoint == "http://localhost:4318/v1/traces"
        assert config.otlp_metrics.endpoint == "http://localhost:4318/v1/metrics"
        with Harness(env={variable: "http://[::1"}) as harness:
            harness.telemetry.tracer("t").start_span("still-traced").end()
            harness.span("still-traced")

    def test_a_port_out_of_range_is_reported_at_start(self) -> None:
        config = load_config(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:99999"})
        [message] = _messages(config, "OTEL_EXPORTER_OTLP_ENDPOINT")
        assert "Port out of range" in message and "using http://localhost:4318" in message

    @pytest.mark.parametrize(
        "url",
        ["http://", "http://:4318", "http://exa mple:4318", "http://a..b:4318", "http://h:0"],
    )
    def test_urls_without_a_usable_host_or_port(self, url: str) -> None:
        config = load_config(environ={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": url})
        assert _messages(config, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        assert "http://localhost:4318/v1/traces" == config.otlp_traces.endpoint

    @pytest.mark.parametrize(
        "url", ["http://[::1]:4318", "https://bücher.example/otlp", "http://collector"]
    )
    def test_good_urls_are_kept(self, url: str) -> None:
        assert url == parse_url()(url)
        config = load_config(environ={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": url})
        assert (url, ()) == (config.otlp_traces.endpoint, config.problems)

    def test_grpc_takes_host_and_port(self) -> None:
        config = load_config(
            environ={
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317",
            }
        )
        assert ("collector:4317", ()) == (config.otlp_traces.endpoint, config.problems)


class TestDurations:
    """Durations have a documented maximum; past it the default is used, so no wait overflows."""

    def test_a_shutdown_timeout_of_1e300(self) -> None:
        config = load_config(environ={"LIMELIGHT_SHUTDOWN_TIMEOUT": "1e300"})
        assert [
            "invalid LIMELIGHT_SHUTDOWN_TIMEOUT='1e300': must be <= 86400; using the default 10.0"
        ] == _messages(config, "LIMELIGHT_SHUTDOWN_TIMEOUT")
        telemetry = _telemetry({"LIMELIGHT_SHUTDOWN_TIMEOUT": "1e300"}, _Exporter())
        telemetry.start()
        assert telemetry.stop()

    def test_a_shutdown_timeout_of_1e300_at_interpreter_exit(self) -> None:
        proc = _python(
            """
            import limelight
            limelight.start(entry_points=False)
            limelight.current().tracer("t").start_span("at-exit").end()
            """,
            LIMELIGHT_SHUTDOWN_TIMEOUT="1e300",
        )
        assert 0 == proc.returncode, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "LIMELIGHT_SHUTDOWN_TIMEOUT" in proc.stderr

    @pytest.mark.parametrize(
        ("variable", "field", "default"),
        [
            ("OTEL_BSP_SCHEDULE_DELAY", "schedule_delay", 5.0),
            ("OTEL_METRIC_EXPORT_INTERVAL", "metric_export_interval", 60.0),
        ],
    )
    def test_forty_digit_intervals(self, variable: str, field: str, default: float) -> None:
        config = load_config(environ={variable: FORTY_DIGITS})
        [message] = _messages(config, variable)
        assert "must be <= 86400000 (24 h)" in message
        holder = config.batch if field == "schedule_delay" else config
        assert default == getattr(holder, field)

    def test_the_span_worker_keeps_exporting_after_a_forty_digit_delay(self) -> None:
        plugin = _Exporter()
        telemetry = _telemetry({"OTEL_BSP_SCHEDULE_DELAY": FORTY_DIGITS}, plugin)
        telemetry.start()
        try:
            telemetry.tracer("t").start_span("exported").end()
            assert telemetry.force_flush(10)
            assert ["exported"] == plugin.exporter.names
        finally:
            telemetry.stop()

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("nan", "expected a finite number"),
            ("inf", "expected a finite number"),
            ("-1", "must be > 0"),
            ("0", "must be > 0"),
            ("1e300", "must be <= 86400000"),
            (" 12 ms", "expected a number"),
            ("١٢", "expected ASCII digits"),
        ],
    )
    def test_millisecond_parser(self, raw: str, reason: str) -> None:
        with pytest.raises(ValueError, match=reason):
            parse_millis(positive=True)(raw)

    def test_the_maximum_is_in_the_reference(self) -> None:
        var = limelight._env.OTEL_BSP_SCHEDULE_DELAY
        assert f"> 0 to {MAX_DURATION_MILLIS} ms" == var.describe_range()


class TestExporterNames:
    """An unknown exporter name is reported with the loaded exporters; it exports nothing."""

    def test_garbage_traces_exporter_is_reported_and_turns_no_other_exporter_on(self) -> None:
        plugin = _Exporter()
        telemetry = _telemetry({"OTEL_TRACES_EXPORTER": "garbage"}, plugin)
        with capture_logs() as logs:
            telemetry.start()
        try:
            [problem] = [p for p in telemetry.config.problems if p.variable.endswith("EXPORTER")]
            assert problem.message() == (
                "invalid OTEL_TRACES_EXPORTER='garbage': no installed exporter plugin has that "
                "name (loaded traces exporters: mine; none turns export off); using no "
                "exporter: traces are not exported"
            )
            assert ["OTEL_TRACES_EXPORTER"] == [
                e["variable"] for e in logs if e.get("variable", "").endswith("EXPORTER")
            ]
            assert () == telemetry.config.traces_exporters
            telemetry.tracer("t").start_span("kept-home").end()
            assert telemetry.force_flush(10)
            assert [] == plugin.exporter.names
        finally:
            telemetry.stop()

    def test_known_names_are_kept_and_unknown_ones_reported(self) -> None:
        plugin = _Exporter()
        telemetry = _telemetry({"OTEL_TRACES_EXPORTER": "zipkin,mine"}, plugin)
        telemetry.start()
        try:
            assert ("mine",) == telemetry.config.traces_exporters
            [message] = _messages(telemetry.config, "OTEL_TRACES_EXPORTER")
            assert "'zipkin'" in message and "using mine (the other names listed)" in message
            telemetry.tracer("t").start_span("exported").end()
            assert telemetry.force_flush(10)
            assert ["exported"] == plugin.exporter.names
        finally:
            telemetry.stop()

    def test_garbage_metrics_exporter_names_the_loaded_ones(self) -> None:
        telemetry = _telemetry({"OTEL_METRICS_EXPORTER": "garbage"})
        telemetry.start()
        telemetry.stop()
        [message] = _messages(telemetry.config, "OTEL_METRICS_EXPORTER")
        assert "(loaded metrics exporters: none; none turns export off)" in message
        assert () == telemetry.config.metrics_exporters

    def test_an_installed_plugin_that_is_not_loaded_is_no_problem(self) -> None:
        environ = {"OTEL_TRACES_EXPORTER": "mine", "LIMELIGHT_DISABLED_PLUGINS": "mine"}
        telemetry = _telemetry(environ, _Exporter())
        telemetry.start()
        telemetry.stop()
        assert (("mine",), ()) == (telemetry.config.traces_exporters, telemetry.config.problems)

    def test_none_is_no_problem(self) -> None:
        telemetry = _telemetry({"OTEL_TRACES_EXPORTER": "none"}, _Exporter())
        telemetry.start()
        telemetry.stop()
        assert ((), ()) == (telemetry.config.traces_exporters, telemetry.config.problems)


class TestImportTimeVariables:
    """Variables OpenTelemetry reads at import cannot kill the process before limelight runs."""

    def test_the_sdk_itself_dies_on_them(self) -> None:
        # what limelight guards against; if a release stops raising, the guard is idle
        propagate = _python("import opentelemetry.propagate", OTEL_PROPAGATORS="b3")
        assert "Propagator b3 not found" in propagate.stderr
        sdk = _python("import opentelemetry.sdk.trace", OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="abc")
        assert "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT" in sdk.stderr and sdk.returncode != 0

    @pytest.mark.parametrize("value", ["b3", "b3,tracecontext", "tracecontext,", "TraceContext"])
    def test_propagators_not_installed(self, value: str) -> None:
        proc = _python(
            """
            import os
            import limelight
            from opentelemetry import propagate
            telemetry = limelight.start(entry_points=False)
            carrier = {}
            with telemetry.tracer("t").start_as_current_span("s"):
                propagate.inject(carrier)
            limelight.stop()
            print(sorted(carrier), os.environ["OTEL_PROPAGATORS"])
            """,
            OTEL_PROPAGATORS=value,
        )
        assert 0 == proc.returncode, proc.stderr
        assert f"['traceparent'] {value}" == proc.stdout.strip()
        if "b3" in value:
            assert "variable=OTEL_PROPAGATORS value=b3 " in proc.stderr
            assert "(installed: baggage, tracecontext)" in proc.stderr

    def test_a_span_attribute_limit_the_sdk_refuses(self) -> None:
        proc = _python(
            """
            import limelight
            limelight.start(entry_points=False)
            limelight.stop()
            print("ok")
            """,
            OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="abc",
        )
        assert (0, "ok") == (proc.returncode, proc.stdout.strip()), proc.stderr
        assert "variable=OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT value=abc " in proc.stderr


class TestSdkVariables:
    """The span limits and the exemplar filter are parsed by limelight and given to the SDK."""

    def test_valid_limits_apply(self) -> None:
        env = {"OTEL_ATTRIBUTE_COUNT_LIMIT": "3", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "2"}
        with Harness(env=env) as harness:
            harness.telemetry.tracer("t").start_span("s", attributes={"a": 1, "b": 2, "c": 3}).end()
            assert 2 == len(harness.span("s").attributes or {})
            limits = harness.telemetry.tracer_provider.span_limits
            assert (3, 2, 3) == (
                limits.max_attributes,
                limits.max_span_attributes,
                limits.max_event_attributes,
            )

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "-1"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", FORTY_DIGITS),
            ("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes"),
        ],
    )
    def test_invalid_values_are_reported_and_defaulted(self, variable: str, value: str) -> None:
        with capture_logs() as logs, Harness(env={variable: value}) as harness:
            harness.telemetry.tracer("t").start_span("s").end()
            harness.span("s")
        assert [variable] == [e["variable"] for e in logs if e.get("variable") == variable]


class TestPercentEncoding:
    """Percent-decoding errors are reported, not passed on as literal text."""

    def test_headers(self) -> None:
        config = load_config(environ={"OTEL_EXPORTER_OTLP_HEADERS": "a=%zz,api-key=s%20t"})
        assert [
            "invalid OTEL_EXPORTER_OTLP_HEADERS='a=%zz,api-key=s%20t': malformed member "
            "'a=%zz' (a % not followed by two hex digits); using the well-formed members only"
        ] == _messages(config, "OTEL_EXPORTER_OTLP_HEADERS")
        assert (("api-key", "s t"),) == config.otlp_traces.headers

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("a=%ff", "percent-encoded bytes that are not UTF-8"),
            ("bad name=1", "'bad name' is not an HTTP header name"),
            ("a=x%0Ay", "the value of a has characters an HTTP header cannot carry"),
        ],
    )
    def test_headers_no_export_could_send(self, raw: str, reason: str) -> None:
        config = load_config(environ={"OTEL_EXPORTER_OTLP_TRACES_HEADERS": raw})
        [message] = _messages(config, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        assert reason in message
        assert () == config.otlp_traces.headers

    def test_resource_attributes_are_discarded_whole(self) -> None:
        config = load_config(environ={"OTEL_RESOURCE_ATTRIBUTES": "a=%zz,b=1"})
        [message] = _messages(config, "OTEL_RESOURCE_ATTRIBUTES")
        assert "malformed member 'a=%zz' (a % not followed by two hex digits)" in message
        assert {} == config.resource_attributes


class TestReportsAreBounded:
    """A report shows at most a bounded, escaped part of the value."""

    def test_a_huge_value_with_control_characters(self) -> None:
        value = "\x1b[31m\n" + "9" * 100_000
        with capture_logs() as logs, Harness(env={"OTEL_BSP_MAX_QUEUE_SIZE": value}):
            pass
        [event] = [e for e in logs if e.get("variable") == "OTEL_BSP_MAX_QUEUE_SIZE"]
        assert len(event["value"]) < 300
        assert "\n" not in event["value"] and "\x1b" not in event["value"]
        assert event["value"].endswith("(100006 characters)")
        problem = ConfigProblem("X", value, "1", "expected an integer")
        assert len(problem.message()) < 400 and "\n" not in problem.message()
