"""The contract is a document: every hook is named, placed and documented by the same rules."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import limelight_hookspecs
from limelight_hookspecs import PROJECT_NAME, SPEC_MODULES


def _hooks() -> list[tuple[str, Callable[..., Any], dict[str, Any]]]:
    out = []
    for module in SPEC_MODULES:
        for fn in vars(module).values():
            opts = getattr(fn, f"{PROJECT_NAME}_spec", None)
            if opts is not None:
                out.append((module.__name__.rsplit(".", 1)[1], fn, opts))
    return out


HOOKS = _hooks()
IDS = [fn.__name__ for _, fn, _ in HOOKS]


class TestNaming:
    """Every hook is limelight_<area>_<verb> and lives in the module of its area."""

    def test_there_are_hooks_in_every_module(self) -> None:
        assert {m.__name__.rsplit(".", 1)[1] for m in SPEC_MODULES} == {a for a, _, _ in HOOKS}

    @pytest.mark.parametrize(("area", "fn", "opts"), HOOKS, ids=IDS)
    def test_name_is_area_then_verb(
        self, area: str, fn: Callable[..., Any], opts: dict[str, Any]
    ) -> None:
        assert re.fullmatch(rf"limelight_{area}_[a-z]+(_[a-z]+)*", fn.__name__)


class TestDocumentation:
    """Every spec says when it is called, documents each parameter and what it returns."""

    @pytest.mark.parametrize(("area", "fn", "opts"), HOOKS, ids=IDS)
    def test_every_parameter_is_documented(
        self, area: str, fn: Callable[..., Any], opts: dict[str, Any]
    ) -> None:
        doc = inspect.getdoc(fn) or ""
        assert len(doc.splitlines()[0]) > 10
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in doc, f"{fn.__name__} does not document {param}"

    @pytest.mark.parametrize(("area", "fn", "opts"), HOOKS, ids=IDS)
    def test_return_is_documented_when_there_is_one(
        self, area: str, fn: Callable[..., Any], opts: dict[str, Any]
    ) -> None:
        doc = inspect.getdoc(fn) or ""
        returns = inspect.signature(fn).return_annotation not in ("None", None)
        assert returns == (":return:" in doc)

    @pytest.mark.parametrize(("area", "fn", "opts"), HOOKS, ids=IDS)
    def test_firstresult_hooks_say_so(
        self, area: str, fn: Callable[..., Any], opts: dict[str, Any]
    ) -> None:
        doc = inspect.getdoc(fn) or ""
        assert opts["firstresult"] == ("Stops at first non-None result." in doc)

    @pytest.mark.parametrize(("area", "fn", "opts"), HOOKS, ids=IDS)
    def test_a_spec_body_is_its_docstring_only(
        self, area: str, fn: Callable[..., Any], opts: dict[str, Any]
    ) -> None:
        [spec] = ast.parse(textwrap.dedent(inspect.getsource(fn))).body
        assert isinstance(spec, ast.FunctionDef)
        [only] = spec.body
        assert isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant)

    def test_configure_is_historic(self) -> None:
        from limelight_hookspecs import lifecycle

        opts = lifecycle.limelight_lifecycle_configure.limelight_spec  # type: ignore[attr-defined]
        assert opts["historic"]


class TestPublicApi:
    """The package's __all__ is explicit, complete and importable."""

    def test_no_private_module_is_named_like_a_spec_module(self) -> None:
        package = Path(limelight_hookspecs.__file__).parent
        modules = {p.stem for p in package.glob("*.py")}
        specs = {m.__name__.rsplit(".", 1)[1] for m in SPEC_MODULES}
        assert set() == {f"_{name}" for name in specs} & modules

    @pytest.mark.parametrize(
        "module", ["config", "interceptors", "lifecycle", "logs", "metrics", "spans"]
    )
    def test_the_spec_modules_import_by_their_public_path(self, module: str) -> None:
        imported = importlib.import_module(f"limelight_hookspecs.{module}")
        assert imported in SPEC_MODULES

    def test_all_names_exist(self) -> None:
        for name in limelight_hookspecs.__all__:
            assert hasattr(limelight_hookspecs, name), name

    def test_every_public_name_is_in_all(self) -> None:
        public = {
            n
            for n, v in vars(limelight_hookspecs).items()
            if not n.startswith("_") and not inspect.ismodule(v) and n not in {"annotations"}
        }
        assert public == set(limelight_hookspecs.__all__)


class TestValueTypes:
    """Value types crossing the boundary validate themselves."""

    def test_envvar_reads_and_reports(self) -> None:
        var = limelight_hookspecs.EnvVar(
            "X_PORT", 9464, limelight_hookspecs.parse_int(minimum=1), "Port.", "9000"
        )
        assert 9000 == var.read({"X_PORT": " 9000 "}).value
        assert "X_PORT" == var.read({"X_PORT": "9000"}).source
        bad = var.read({"X_PORT": "0"})
        assert 9464 == bad.value
        assert bad.problem is not None
        assert "invalid X_PORT='0': must be >= 1; using the default 9464" == bad.problem.message()
        assert "default" == var.read({"X_PORT": ""}).source

    def test_envvar_reports_the_default_as_the_variable_spells_it(self) -> None:
        millis = limelight_hookspecs.EnvVar(
            "X_DELAY",
            5.0,
            limelight_hookspecs.parse_float(minimum=1),
            "Milliseconds between two runs.",
            "100",
            default_text="5000",
        )
        flag = limelight_hookspecs.EnvVar(
            "X_FLAG", False, limelight_hookspecs.parse_bool, "A flag.", "true"
        )
        problems = [
            millis.read({"X_DELAY": "0.5"}).problem,
            flag.read({"X_FLAG": "maybe"}).problem,
        ]
        assert [
            "invalid X_DELAY='0.5': must be >= 1; using the default 5000",
            "invalid X_FLAG='maybe': expected true or false; using the default false",
        ] == [p.message() for p in problems if p is not None]
        assert ("5000", "false") == (millis.describe_default(), flag.describe_default())

    def test_otel_booleans_follow_the_specification(self) -> None:
        parse = limelight_hookspecs.parse_otel_bool
        assert (True, True, False, False) == (
            parse("true"),
            parse(" TRUE "),
            parse("false"),
            parse("False"),
        )
        for raw in ("1", "yes", "on", "0", ""):
            with pytest.raises(ValueError, match="expected true or false"):
                parse(raw)
        assert limelight_hookspecs.parse_bool("yes")  # limelight's own stay lenient

    def test_key_values_are_percent_decoded(self) -> None:
        pairs = limelight_hookspecs.parse_key_values("a=1, b = x%2Cy ,c=")
        assert (("a", "1"), ("b", "x,y"), ("c", "")) == pairs
        with pytest.raises(ValueError, match="'nokey'"):
            limelight_hookspecs.parse_key_values("a=1,nokey")

    def test_histogram_point_cumulative_counts(self) -> None:
        point = limelight_hookspecs.HistogramPoint(
            labels={}, count=6, sum=3.0, bounds=(1.0, 2.0), bucket_counts=(1, 2, 3)
        )
        assert (1, 3, 6) == point.cumulative_counts()

    def test_histogram_point_min_max_and_counter_exemplar_default_to_none(self) -> None:
        point = limelight_hookspecs.HistogramPoint(
            labels={}, count=0, sum=0.0, bounds=(1.0,), bucket_counts=(0, 0)
        )
        assert (None, None) == (point.min, point.max)
        assert limelight_hookspecs.NumberPoint(labels={}, value=1.0).exemplar is None

    def test_intervals_that_would_make_a_worker_spin_are_refused(self) -> None:
        with pytest.raises(ValueError, match="schedule_delay"):
            limelight_hookspecs.BatchSettings(schedule_delay=0)
        with pytest.raises(ValueError, match="metric_export_interval"):
            limelight_hookspecs.Config(metric_export_interval=-1.0)

    def test_config_exporter_selection(self) -> None:
        config = limelight_hookspecs.Config(traces_exporters=("otlp",), metrics_exporters=())
        assert config.exporter_enabled("traces", "otlp")
        assert not config.exporter_enabled("traces", "console")
        assert not config.exporter_enabled("metrics", "prometheus")


class TestUnits:
    """A declared unit with a Prometheus name ends the metric name, as Prometheus names go."""

    @pytest.mark.parametrize(
        ("unit", "expected"),
        [
            ("s", "seconds"),
            ("ms", "milliseconds"),
            ("By", "bytes"),
            ("MiBy", "mebibytes"),
            ("By/s", "bytes_per_second"),
            ("m/s", "meters_per_second"),
            ("1/s", "per_second"),
            ("{request}/s", "per_second"),
            ("Cel", "celsius"),
            ("%", "percent"),
            ("widgets", "widgets"),
            ("1", ""),
            ("", ""),
            ("{request}", ""),
        ],
    )
    def test_ucum_units_get_their_prometheus_names(self, unit: str, expected: str) -> None:
        assert expected == limelight_hookspecs.prometheus_unit(unit)

    @pytest.mark.parametrize(
        ("name", "kind", "unit", "message"),
        [
            (
                "job_duration",
                "histogram",
                "s",
                "histogram 'job_duration' has unit 's': its name must end in '_seconds'"
                ".*'job_duration_seconds'",
            ),
            (
                "sent_total",
                "counter",
                "By",
                "counter 'sent_total' has unit 'By': its name must end in '_bytes' "
                "before '_total'.*'sent_bytes_total'",
            ),
            ("queue_lag", "gauge_set", "ms", "'queue_lag_milliseconds'"),
            ("latency_seconds", "histogram", "ms", "must end in '_milliseconds'"),
        ],
    )
    def test_a_name_without_its_unit_is_refused_with_the_name_to_use(
        self, name: str, kind: str, unit: str, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            limelight_hookspecs.MetricDeclaration(name, kind, "Help.", unit=unit)

    def test_names_that_carry_their_unit_are_accepted(self) -> None:
        decl = limelight_hookspecs.MetricDeclaration
        assert "seconds" == decl("job_duration_seconds", "histogram", "h", unit="s").prometheus_unit
        assert "seconds" == decl("cpu_seconds_total", "counter", "h", unit="s").prometheus_unit
        assert "bytes" == decl("wal_bytes", "gauge_set", "h", unit="By").prometheus_unit
        # counts are unitless; a ratio says so by its name
        assert "" == decl("http_requests_total", "counter", "h", unit="1").prometheus_unit
        assert "" == decl("jobs_in_flight", "gauge_add", "h", unit="{job}").prometheus_unit
        assert "ratio" == decl("cache_hit_ratio", "gauge_set", "h", unit="1").prometheus_unit
        assert "" == decl("anything", "gauge_set", "h").prometheus_unit
