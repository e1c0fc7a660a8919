"""Plugin discovery, ordering, selection and isolation with real installed distributions.

The test-only distributions under ``core/tests/dists`` (alpha, priority 300;
beta, priority 250; faulty-hook, priority 260, whose start hook raises; and
faulty-import, which cannot be imported) are installed by the core's test
session, exactly as a user would install a plugin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import limelight
from limelight import PluginError, Telemetry

DISTS = ("limelight-testplugin-alpha", "limelight-testplugin-beta", "limelight-testplugin-faulty")
BUILTINS = ["limelight.function_metrics", "limelight.function_tracing"]
OURS = {*BUILTINS, "alpha", "beta", "faulty-hook", "faulty-import"}


def _ours(names: object) -> list[str]:
    """Only this suite's plugins: other installed plugins may sit in between."""
    return [n for n in names if n in OURS]  # type: ignore[attr-defined]


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    missing = []
    for dist in DISTS:
        try:
            distribution(dist)
        except PackageNotFoundError:
            missing.append(dist)
    if missing:
        pytest.fail(
            f"test-only plugin distributions not installed: {missing}; run "
            "`nox -s 'tests(core)'` or `pip install core/tests/dists/*`"
        )


@pytest.fixture
def started() -> Iterator[list[Telemetry]]:
    made: list[Telemetry] = []
    yield made
    for telemetry in made:
        telemetry.stop(timeout=2)


def _start(made: list[Telemetry], **env: str) -> Telemetry:
    """Start with this suite's plugins only: other installed plugins (exporters opening
    ports or exporting to a collector that is not there) stay out of these tests."""
    environ = {
        "OTEL_TRACES_SAMPLER": "always_on",
        "LIMELIGHT_PLUGINS": ",".join(sorted(OURS)),
        **env,
    }
    telemetry = Telemetry(environ=environ, handle_signals=False)
    made.append(telemetry)
    telemetry.start()
    return telemetry


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "limelight._cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )


class TestDiscovery:
    """Installed plugins are found through the limelight.plugins entry points."""

    def test_every_installed_plugin_is_found_with_its_distribution(self) -> None:
        manager = limelight.discover(limelight.load_config(environ={}))
        infos = {i.name: i for i in manager.infos()}
        assert "limelight-testplugin-alpha" == infos["alpha"].distribution
        assert "1.2.3" == infos["alpha"].version
        assert "0.4.0" == infos["beta"].version
        assert 250 == infos["beta"].priority
        assert "loaded" == infos["beta"].status

    def test_resolved_order_is_priority_then_name(self) -> None:
        manager = limelight.discover(limelight.load_config(environ={}))
        assert [*BUILTINS, "beta", "faulty-hook", "alpha"] == _ours(manager.names())

    def test_pluggy_holds_the_implementations_in_resolved_order(self) -> None:
        manager = limelight.discover(limelight.load_config(environ={}))
        impls = manager.pm.hook.limelight_lifecycle_start.get_hookimpls()
        assert ["beta", "faulty-hook", "alpha"] == _ours(i.plugin_name for i in impls)

    def test_start_runs_in_priority_order_and_stop_in_reverse(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Telemetry]
    ) -> None:
        log = tmp_path / "calls.log"
        monkeypatch.setenv("LIMELIGHT_TEST_LOG", str(log))
        telemetry = _start(started)
        telemetry.stop()
        calls = [c for c in log.read_text().split() if not c.endswith(":configure")]
        assert ["beta:start", "alpha:start", "alpha:stop", "beta:stop"] == calls

    def test_declared_metrics_of_installed_plugins_are_in_the_store(
        self, started: list[Telemetry]
    ) -> None:
        telemetry = _start(started)
        assert "alpha_events_total" in telemetry.store
        assert "beta" == telemetry.store.get("beta_events_total").declarer


class TestSelection:
    """LIMELIGHT_PLUGINS and LIMELIGHT_DISABLED_PLUGINS choose what loads."""

    def test_allow_list_loads_only_the_named_plugins(self) -> None:
        config = limelight.load_config(environ={"LIMELIGHT_PLUGINS": "alpha"})
        manager = limelight.discover(config)
        assert ["alpha"] == list(manager.names())
        assert "disabled" == {i.name: i for i in manager.infos()}["beta"].status

    def test_empty_allow_list_loads_nothing(self) -> None:
        config = limelight.load_config(environ={"LIMELIGHT_PLUGINS": ""})
        assert () == limelight.discover(config).names()

    def test_block_list_wins_over_the_allow_list(self) -> None:
        config = limelight.load_config(
            environ={"LIMELIGHT_PLUGINS": "alpha,beta", "LIMELIGHT_DISABLED_PLUGINS": "beta"}
        )
        assert ["alpha"] == list(limelight.discover(config).names())

    def test_builtins_can_be_disabled_like_any_plugin(self, started: list[Telemetry]) -> None:
        telemetry = _start(started, LIMELIGHT_DISABLED_PLUGINS="limelight.function_tracing")
        assert ["limelight.function_metrics"] == _ours(i.name for i in telemetry.interceptors)

    def test_unknown_name_in_the_allow_list_is_reported(self) -> None:
        config = limelight.load_config(environ={"LIMELIGHT_PLUGINS": "alpha,nosuch"})
        with capture_logs() as logs:
            limelight.discover(config)
        [event] = [e for e in logs if e.get("plugin") == "nosuch"]
        assert "warning" == event["log_level"]
        assert "alpha" in event["message"]


class TestIsolation:
    """A plugin that fails is reported by name; the others keep working."""

    def test_import_failure_is_named_and_the_rest_load(self) -> None:
        with capture_logs() as logs:
            manager = limelight.discover(limelight.load_config(environ={}))
        info = {i.name: i for i in manager.infos()}["faulty-import"]
        assert "failed" == info.status
        assert "ImportError: faulty-import is missing a dependency" == info.error
        assert "alpha" in manager.names()
        assert any(e.get("plugin") == "faulty-import" for e in logs)

    def test_a_raising_hook_is_named_and_later_plugins_still_run(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Telemetry]
    ) -> None:
        log = tmp_path / "calls.log"
        monkeypatch.setenv("LIMELIGHT_TEST_LOG", str(log))
        telemetry = _start(started)
        failures = [f for f in telemetry.plugins.failures if f.plugin == "faulty-hook"]
        assert ["hook limelight_lifecycle_start"] == [f.phase for f in failures]
        assert "RuntimeError: faulty-hook refuses to start" == failures[0].error
        # alpha has a higher priority number than faulty-hook: it started after the failure
        assert "alpha:start" in log.read_text().split()
        assert telemetry.enabled

    def test_strict_mode_turns_a_failure_into_a_boot_failure(self) -> None:
        telemetry = Telemetry(environ={"LIMELIGHT_STRICT": "1"}, handle_signals=False)
        with pytest.raises(PluginError, match="faulty-import"):
            telemetry.start()
        assert not telemetry.enabled


class TestCli:
    """`limelight plugins` shows what loaded, in order, with versions, hooks and errors."""

    def test_plugins_command_lists_resolved_order_and_errors(self) -> None:
        out = _cli("plugins").stdout
        lines = out.splitlines()
        assert "plugins (resolved order):" == lines[0]
        order = _ours(ln.split()[0] for ln in lines[3:] if ln.strip())
        assert [*BUILTINS, "beta", "faulty-hook", "alpha", "faulty-import"] == order
        alpha = next(ln for ln in lines if ln.startswith("alpha "))
        assert "1.2.3" in alpha and "300" in alpha and "metrics_declare" in alpha
        assert "plugin 'faulty-import' failed (load): ImportError" in out

    def test_plugins_command_json_respects_the_allow_list(self) -> None:
        out = _cli("plugins", "--json", LIMELIGHT_PLUGINS="beta").stdout
        data = json.loads(out)
        loaded = [p["name"] for p in data["plugins"] if p["status"] == "loaded"]
        assert ["beta"] == loaded


class _Typo:
    limelight_name = "typo"

    @limelight.hookimpl
    def limelight_metrics_readers(self) -> list[object]:
        return []


class TestContractChecks:
    """A plugin implementing a hook that does not exist is reported, not silently ignored."""

    def test_unknown_hook_is_reported_by_name(self) -> None:
        manager = limelight.discover(
            limelight.load_config(environ={"LIMELIGHT_PLUGINS": ""}), extra=[_Typo()]
        )
        [failure] = [f for f in manager.failures if f.plugin == "typo"]
        assert "limelight_metrics_readers, which is not a limelight hook" in failure.error
