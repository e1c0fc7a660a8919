"""No environment value stops or silently breaks telemetry, with every distribution installed.

A property test drives every variable the core and the installed plugins declare with
hostile values (empty, whitespace, negative, huge, NaN, non-ASCII, the wrong type, a
malformed URL, control characters) and checks what an operator relies on: ``start()``
and ``stop()`` return, ``limelight config`` exits 0, telemetry still records, and an
invalid value is reported naming its variable.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

import limelight
from limelight import _cli, load_config
from limelight._catalog import declared_variables
from limelight.plugins import discover
from limelight.testing import Harness
from limelight_hookspecs import EnvVar

VARIABLES: dict[str, EnvVar[Any]] = {var.name: var for _owner, var in declared_variables()}
OWNERS: dict[str, set[str]] = {}
for _owner, _var in declared_variables():
    OWNERS.setdefault(_var.name, set()).update(o.strip() for o in _owner.split(","))

HOSTILE = [
    "",
    " ",
    "\t \n",
    "-1",
    "-0",
    "0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e300",
    "1234567890" * 4,
    "1.5",
    "abc",
    "TRUE ",
    "\u00e9l\u00e8ve",
    "\u0661\u0662",
    "\x1b[31m",
    "http://[::1",
    "http://localhost:99999",
    "http://",
    "ftp://collector",
    "a=%zz",
    "a=%ff,b",
    "=",
    ",,,",
    "none",
    "x" * 5000,
]

values = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
        max_size=20,
    ),
)
environments = st.dictionaries(st.sampled_from(sorted(VARIABLES)), values, min_size=1, max_size=3)

BASE = {
    # nothing leaves the machine and nothing binds a fixed port, unless a drawn value says
    "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
    "LIMELIGHT_PROMETHEUS_SERVER": "false",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "200",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    "LIMELIGHT_DISABLED_PLUGINS": "faulty-import,faulty-hook",
}


def _invalid(environ: dict[str, str]) -> list[str]:
    return [name for name in environ if VARIABLES[name].read(environ).problem is not None]


def _cli_output(environ: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    with mock.patch.dict(os.environ, environ, clear=True), contextlib.redirect_stdout(out):
        code = _cli.main(["config"])
    return code, out.getvalue()


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawn file paths (the JSON-lines test exporter's LIMELIGHT_JSONL_PATH) are relative
    to the working directory: keep what they write out of the checkout."""
    monkeypatch.chdir(tmp_path)


class TestEveryVariableWithHostileValues:
    """start and stop return, `limelight config` exits 0, spans are recorded, problems named."""

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(drawn=environments)
    def test_property(self, drawn: dict[str, str]) -> None:
        environ = {**BASE, **drawn}
        invalid = _invalid(environ)

        code, output = _cli_output(environ)
        assert 0 == code
        problems = output.partition("problems (the fallback is in use):")[2]
        loaded = set(discover(load_config(environ=environ)).names())
        for name in invalid:
            owners = OWNERS[name]
            if owners & ({"limelight (core)"} | loaded):  # a plugin not loaded reads nothing
                assert f"invalid {name}=" in problems, (name, output[-2000:])

        with capture_logs() as logs:
            harness = Harness(entry_points=True, env=environ)
            try:
                harness.start()
            except limelight.PluginError:
                # LIMELIGHT_STRICT made a plugin failure a boot failure, as documented
                assert harness.telemetry.config.strict
                harness.stop()
                return
            telemetry = harness.telemetry
            try:
                telemetry.tracer("hostile").start_span("still-recorded").end()

                @limelight.instrument
                def work() -> int:
                    return 1

                assert 1 == work()
                if telemetry.enabled:
                    harness.span("still-recorded")
                    if "limelight.function_metrics" in telemetry.plugins.names():
                        namespace = telemetry.config.metrics_namespace
                        name = f"{namespace}_" * bool(namespace) + "function_calls_total"
                        calls = harness.series(name)
                        assert any(
                            s["result"] == "ok" and s["function"].endswith("work") for s in calls
                        ), calls
            finally:
                harness.stop()
            assert telemetry.stopped
        reported = {e.get("variable") for e in logs}
        core = {var.name for owner, var in declared_variables() if owner == "limelight (core)"}
        for name in invalid:
            if name in core:
                assert name in reported, (name, [e for e in logs if "variable" in e])
