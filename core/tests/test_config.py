"""Configuration from the OTEL_* and LIMELIGHT_* variables: values, sources, fallbacks."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from limelight import load_config
from limelight._config import ProblemReporter
from limelight._env import CORE_VARIABLES, SAMPLER_NAMES


def _problem(config: object, variable: str) -> str:
    problems = [p for p in config.problems if p.variable == variable]  # type: ignore[attr-defined]
    assert problems, f"expected a problem for {variable}"
    return str(problems[0].message())


class TestDefaults:
    """With an empty environment every setting has its documented default."""

    def test_defaults(self) -> None:
        config = load_config(environ={})
        assert not config.sdk_disabled
        assert config.service_name.startswith("unknown_service")
        assert "parentbased_always_on" == config.traces_sampler
        assert ("tracecontext", "baggage") == config.propagators
        assert "http://localhost:4318/v1/traces" == config.otlp_traces.endpoint
        assert "http://localhost:4318/v1/metrics" == config.otlp_metrics.endpoint
        assert "http/protobuf" == config.otlp_traces.protocol
        assert 10.0 == config.otlp_traces.timeout
        assert None is config.plugins
        assert () == config.problems
        assert all(source == "default" for source in config.sources.values())


class TestServiceAndResource:
    """Service name and resource attributes follow the specification's precedence."""

    def test_service_name_variable_wins_over_resource_attribute(self) -> None:
        config = load_config(
            environ={
                "OTEL_SERVICE_NAME": "checkout",
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment.name=prod",
            }
        )
        assert "checkout" == config.service_name
        assert "OTEL_SERVICE_NAME" == config.sources["service_name"]
        assert "prod" == config.resource_attributes["deployment.environment.name"]

    def test_service_name_and_version_from_resource_attributes(self) -> None:
        config = load_config(
            environ={
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=cart,service.version=1.4.2,k=a%20b",
            }
        )
        assert "cart" == config.service_name
        assert "1.4.2" == config.service_version
        assert "a b" == config.resource_attributes["k"]

    def test_malformed_resource_attributes_are_discarded_whole_and_reported(self) -> None:
        config = load_config(environ={"OTEL_RESOURCE_ATTRIBUTES": "a=1,garbage,b=2"})
        assert {} == dict(config.resource_attributes)
        assert "'garbage'" in _problem(config, "OTEL_RESOURCE_ATTRIBUTES")

    def test_argument_wins_and_is_shown_as_such(self) -> None:
        config = load_config(environ={"OTEL_SERVICE_NAME": "env"}, service_name="arg")
        assert "arg" == config.service_name
        assert "argument" == config.sources["service_name"]

    def test_unknown_argument_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="no_such_field"):
            load_config(environ={}, no_such_field=1)


class TestSampler:
    """Every sampler name of the specification is understood."""

    @pytest.mark.parametrize("name", SAMPLER_NAMES[:6])
    def test_spec_samplers_are_accepted(self, name: str) -> None:
        config = load_config(environ={"OTEL_TRACES_SAMPLER": name.upper()})
        assert name == config.traces_sampler
        assert () == config.problems

    @pytest.mark.parametrize("name", ["jaeger_remote", "parentbased_jaeger_remote", "xray"])
    def test_remote_samplers_fall_back_with_a_report(self, name: str) -> None:
        config = load_config(environ={"OTEL_TRACES_SAMPLER": name})
        assert "parentbased_always_on" == config.traces_sampler
        assert "remote service" in _problem(config, "OTEL_TRACES_SAMPLER")

    def test_unknown_sampler_falls_back_with_a_report(self) -> None:
        config = load_config(environ={"OTEL_TRACES_SAMPLER": "sometimes"})
        assert "parentbased_always_on" == config.traces_sampler
        message = _problem(config, "OTEL_TRACES_SAMPLER")
        assert "'sometimes'" in message and "parentbased_always_on" in message

    def test_ratio_argument(self) -> None:
        config = load_config(
            environ={"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
        )
        assert 0.25 == config.traces_sampler_arg

    @pytest.mark.parametrize("raw", ["1.5", "-0.1", "half", "nan"])
    def test_invalid_ratio_falls_back_to_one(self, raw: str) -> None:
        config = load_config(
            environ={
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": raw,
            }
        )
        assert 1.0 == config.traces_sampler_arg
        assert "ratio 1.0" in _problem(config, "OTEL_TRACES_SAMPLER_ARG")


class TestPropagators:
    """OTEL_PROPAGATORS names propagators; unknown ones are reported and skipped."""

    def test_known_names_in_order(self) -> None:
        config = load_config(environ={"OTEL_PROPAGATORS": "baggage, tracecontext"})
        assert ("baggage", "tracecontext") == config.propagators

    def test_none_disables_propagation(self) -> None:
        assert () == load_config(environ={"OTEL_PROPAGATORS": "none"}).propagators

    def test_unknown_name_is_reported_and_the_rest_kept(self) -> None:
        config = load_config(environ={"OTEL_PROPAGATORS": "tracecontext,nosuch"})
        assert ("tracecontext",) == config.propagators
        assert "'nosuch'" in _problem(config, "OTEL_PROPAGATORS")


class TestOtlp:
    """OTLP settings: generic variables, signal-specific overrides, validation."""

    def test_generic_endpoint_gets_the_signal_path_for_http(self) -> None:
        config = load_config(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
        assert "http://collector:4318/v1/traces" == config.otlp_traces.endpoint
        assert "http://collector:4318/v1/metrics" == config.otlp_metrics.endpoint

    def test_signal_endpoint_is_used_as_given(self) -> None:
        config = load_config(
            environ={
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example/ingest",
            }
        )
        assert "https://traces.example/ingest" == config.otlp_traces.endpoint
        assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" == config.sources["otlp_traces.endpoint"]
        assert "http://collector:4318/v1/metrics" == config.otlp_metrics.endpoint

    def test_grpc_endpoint_has_no_path_and_its_own_default(self) -> None:
        config = load_config(environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
        assert "http://localhost:4317" == config.otlp_traces.endpoint
        config = load_config(
            environ={
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
            }
        )
        assert "http://c:4317" == config.otlp_metrics.endpoint
        assert "http://c:4317/v1/traces" == config.otlp_traces.endpoint

    def test_headers_timeout_compression_insecure(self) -> None:
        config = load_config(
            environ={
                "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%3Dcret,tenant=a",
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x=1",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
            }
        )
        assert (("api-key", "s=cret"), ("tenant", "a")) == config.otlp_traces.headers
        assert (("x", "1"),) == config.otlp_metrics.headers
        assert 2.5 == config.otlp_traces.timeout
        assert "gzip" == config.otlp_traces.compression
        assert "none" == config.otlp_metrics.compression
        assert config.otlp_metrics.insecure is True

    @pytest.mark.parametrize(
        ("variable", "value", "field", "fallback"),
        [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon", "protocol", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "timeout", 10.0),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "-5", "timeout", 10.0),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "compression", "none"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "collector:4318",
                "endpoint",
                "http://localhost:4318/v1/traces",
            ),
            ("OTEL_EXPORTER_OTLP_INSECURE", "maybe", "insecure", None),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "ftp://collector",
                "endpoint",
                "http://localhost:4318/v1/traces",
            ),
        ],
    )
    def test_invalid_values_fall_back_with_a_report(
        self, variable: str, value: str, field: str, fallback: object
    ) -> None:
        config = load_config(environ={variable: value})
        assert fallback == getattr(config.otlp_traces, field)
        message = _problem(config, variable)
        assert variable in message and repr(value) in message

    def test_malformed_header_members_are_dropped_and_reported(self) -> None:
        config = load_config(environ={"OTEL_EXPORTER_OTLP_HEADERS": "a=1,oops,b=2"})
        assert (("a", "1"), ("b", "2")) == config.otlp_traces.headers
        assert "'oops'" in _problem(config, "OTEL_EXPORTER_OTLP_HEADERS")


class TestProblemMessages:
    """A report names the variable, the value and the fallback actually used, once."""

    @pytest.mark.parametrize(
        ("environ", "message"),
        [
            (
                {"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
                "invalid OTEL_EXPORTER_OTLP_PROTOCOL='carrier-pigeon': expected one of grpc, "
                "http/protobuf, http/json; using the default http/protobuf",
            ),
            (
                {"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
                "invalid OTEL_EXPORTER_OTLP_TIMEOUT='soon': expected a number; "
                "using the default 10000",
            ),
            (
                {"OTEL_EXPORTER_OTLP_INSECURE": "maybe"},
                "invalid OTEL_EXPORTER_OTLP_INSECURE='maybe': expected true or false; "
                "using the default (plaintext for an http:// endpoint, TLS otherwise)",
            ),
            (
                {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
                "invalid OTEL_EXPORTER_OTLP_COMPRESSION='zstd': expected gzip or none; "
                "using the default none",
            ),
            (
                {"OTEL_BSP_SCHEDULE_DELAY": "soon"},
                "invalid OTEL_BSP_SCHEDULE_DELAY='soon': expected a number; using the default 5000",
            ),
            (
                {"OTEL_METRIC_EXPORT_INTERVAL": "often"},
                "invalid OTEL_METRIC_EXPORT_INTERVAL='often': expected a number; "
                "using the default 60000",
            ),
            (
                {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "soon", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500"},
                "invalid OTEL_EXPORTER_OTLP_TRACES_TIMEOUT='soon': expected a number; "
                "using 2500 from OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            (
                {
                    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "pigeon",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                },
                "invalid OTEL_EXPORTER_OTLP_METRICS_PROTOCOL='pigeon': expected one of grpc, "
                "http/protobuf, http/json; using grpc from OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                {
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                },
                "invalid OTEL_EXPORTER_OTLP_TRACES_ENDPOINT='ftp://collector': expected an "
                "http:// or https:// URL; using http://collector:4318/v1/traces from "
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
                "invalid OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318': expected an http:// or "
                "https:// URL; using http://localhost:4318",
            ),
            (
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://collector",
                    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                },
                "invalid OTEL_EXPORTER_OTLP_ENDPOINT='ftp://collector': expected an http:// or "
                "https:// URL; using http://localhost:4317 for traces, "
                "http://localhost:4318 for metrics, http://localhost:4318 for logs",
            ),
            (
                {"OTEL_EXPORTER_OTLP_HEADERS": "a=1,oops"},
                "invalid OTEL_EXPORTER_OTLP_HEADERS='a=1,oops': malformed member 'oops' "
                "(expected key=value); using the well-formed members only",
            ),
        ],
    )
    def test_exact_message_reported_once(self, environ: dict[str, str], message: str) -> None:
        config = load_config(environ=environ)
        assert [message] == [p.message() for p in config.problems]

    @pytest.mark.parametrize("variable", ["OTEL_BSP_SCHEDULE_DELAY", "OTEL_METRIC_EXPORT_INTERVAL"])
    @pytest.mark.parametrize("value", ["0", "-250", "0.0"])
    def test_intervals_must_be_positive(self, variable: str, value: str) -> None:
        config = load_config(environ={variable: value})
        default = {"OTEL_BSP_SCHEDULE_DELAY": "5000", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}
        assert [
            f"invalid {variable}={value!r}: must be > 0; using the default {default[variable]}"
        ] == [p.message() for p in config.problems]
        assert (5.0, 60.0) == (config.batch.schedule_delay, config.metric_export_interval)

    def test_the_fallback_named_is_the_value_used(self) -> None:
        config = load_config(
            environ={
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "soon",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
            }
        )
        assert (2.5, "OTEL_EXPORTER_OTLP_TIMEOUT") == (
            config.otlp_traces.timeout,
            config.sources["otlp_traces.timeout"],
        )

    def test_an_invalid_signal_endpoint_falls_back_to_the_generic_one(self) -> None:
        config = load_config(
            environ={
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            }
        )
        assert ("http://collector:4318/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT") == (
            config.otlp_traces.endpoint,
            config.sources["otlp_traces.endpoint"],
        )


class TestOtherSettings:
    """Batch, export interval, exporter selection and limelight's own variables."""

    def test_batch_settings_in_milliseconds(self) -> None:
        config = load_config(
            environ={
                "OTEL_BSP_SCHEDULE_DELAY": "250",
                "OTEL_BSP_MAX_QUEUE_SIZE": "100",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500",
            }
        )
        assert 0.25 == config.batch.schedule_delay
        assert 100 == config.batch.max_export_batch_size  # clamped to the queue size
        assert "OTEL_BSP_MAX_QUEUE_SIZE" in _problem(config, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")

    def test_exporter_selection(self) -> None:
        config = load_config(
            environ={"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_METRICS_EXPORTER": "none"}
        )
        assert config.exporter_enabled("traces", "console")
        assert not config.exporter_enabled("traces", "prometheus")
        assert not config.exporter_enabled("metrics", "prometheus")
        assert load_config(environ={}).exporter_enabled("metrics", "anything")

    @pytest.mark.parametrize(
        ("raw", "disabled"), [("true", True), ("TRUE", True), ("False", False)]
    )
    def test_sdk_disabled_is_a_specification_boolean(self, raw: str, disabled: bool) -> None:
        config = load_config(environ={"OTEL_SDK_DISABLED": raw})
        assert (disabled, ()) == (config.sdk_disabled, config.problems)

    @pytest.mark.parametrize("raw", ["1", "yes", "on", "enabled"])
    def test_other_sdk_disabled_values_are_reported_and_false(self, raw: str) -> None:
        config = load_config(environ={"OTEL_SDK_DISABLED": raw})
        assert not config.sdk_disabled
        assert [
            f"invalid OTEL_SDK_DISABLED={raw!r}: expected true or false; using the default false"
        ] == [p.message() for p in config.problems]

    def test_otlp_insecure_is_a_specification_boolean(self) -> None:
        config = load_config(environ={"OTEL_EXPORTER_OTLP_INSECURE": "1"})
        assert None is config.otlp_traces.insecure
        assert ["OTEL_EXPORTER_OTLP_INSECURE"] == [p.variable for p in config.problems]

    def test_limelight_booleans_stay_lenient(self) -> None:
        config = load_config(environ={"LIMELIGHT_STRICT": "yes"})
        assert (True, ()) == (config.strict, config.problems)

    def test_sdk_disabled_disables_every_exporter(self) -> None:
        config = load_config(environ={"OTEL_SDK_DISABLED": "true"})
        assert config.sdk_disabled
        assert not config.exporter_enabled("traces", "otlp")

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("OTEL_SDK_DISABLED", "perhaps"),
            ("LIMELIGHT_SERIES_LIMIT", "0"),
            ("LIMELIGHT_SERIES_LIMIT", "lots"),
            ("LIMELIGHT_METRICS_NAMESPACE", "has space"),
            ("LIMELIGHT_SHUTDOWN_TIMEOUT", "-1"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "often"),
        ],
    )
    def test_invalid_values_never_raise(self, variable: str, value: str) -> None:
        config = load_config(environ={variable: value})
        assert variable in _problem(config, variable)

    def test_limelight_variables(self) -> None:
        config = load_config(
            environ={
                "LIMELIGHT_METRICS_NAMESPACE": "shop",
                "LIMELIGHT_SERIES_LIMIT": "50",
                "LIMELIGHT_DISABLED_PLUGINS": "a, b",
                "LIMELIGHT_STRICT": "1",
            }
        )
        assert ("shop", 50, ("a", "b"), True) == (
            config.metrics_namespace,
            config.series_limit,
            config.disabled_plugins,
            config.strict,
        )


class TestReporting:
    """An invalid value is reported once, naming the variable, the value and the fallback."""

    def test_reported_once_per_distinct_value(self) -> None:
        reporter = ProblemReporter()
        config = load_config(environ={"OTEL_TRACES_SAMPLER": "sometimes"})
        with capture_logs() as logs:
            for _ in range(3):
                for problem in config.problems:
                    reporter(problem)
        [event] = logs
        assert "warning" == event["log_level"]
        assert ("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_always_on") == (
            event["variable"],
            event["value"],
            event["fallback"],
        )

    def test_every_core_variable_is_documented_with_an_example(self) -> None:
        names = [v.name for v in CORE_VARIABLES]
        assert len(names) == len(set(names))
        for var in CORE_VARIABLES:
            assert var.doc.endswith(".") and var.example, var.name
