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
import threading
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import limelight
import limelight.http
import limelight.plugins
from limelight import PluginError, Telemetry
from limelight_hookspecs import EnvVar, Interceptor

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
        manager = limelight.plugins.discover(limelight.load_config(environ={}))
        infos = {i.name: i for i in manager.infos()}
        assert "limelight-testplugin-alpha" == infos["alpha"].distribution
        assert "1.2.3" == infos["alpha"].version
        assert "0.4.0" == infos["beta"].version
        assert 250 == infos["beta"].priority
        assert "loaded" == infos["beta"].status

    def test_resolved_order_is_priority_then_name(self) -> None:
        manager = limelight.plugins.discover(limelight.load_config(environ={}))
        assert [*BUILTINS, "beta", "faulty-hook", "alpha"] == _ours(manager.names())

    def test_pluggy_calls_the_implementations_in_resolved_order(self) -> None:
        manager = limelight.plugins.discover(limelight.load_config(environ={}))
        order = manager.call_order("limelight_lifecycle_start")
        assert ["beta", "faulty-hook", "alpha"] == _ours(order)

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
        manager = limelight.plugins.discover(config)
        assert ["alpha"] == list(manager.names())
        assert "disabled" == {i.name: i for i in manager.infos()}["beta"].status

    def test_empty_allow_list_loads_nothing(self) -> None:
        config = limelight.load_config(environ={"LIMELIGHT_PLUGINS": ""})
        assert () == limelight.plugins.discover(config).names()

    def test_block_list_wins_over_the_allow_list(self) -> None:
        config = limelight.load_config(
            environ={"LIMELIGHT_PLUGINS": "alpha,beta", "LIMELIGHT_DISABLED_PLUGINS": "beta"}
        )
        assert ["alpha"] == list(limelight.plugins.discover(config).names())

    def test_builtins_can_be_disabled_like_any_plugin(self, started: list[Telemetry]) -> None:
        telemetry = _start(started, LIMELIGHT_DISABLED_PLUGINS="limelight.function_tracing")
        assert ["limelight.function_metrics"] == _ours(i.name for i in telemetry.interceptors)

    def test_unknown_name_in_the_allow_list_is_reported(self) -> None:
        config = limelight.load_config(environ={"LIMELIGHT_PLUGINS": "alpha,nosuch"})
        with capture_logs() as logs:
            limelight.plugins.discover(config)
        [event] = [e for e in logs if e.get("plugin") == "nosuch"]
        assert "warning" == event["log_level"]
        assert "alpha" in event["message"]


class TestIsolation:
    """A plugin that fails is reported by name; the others keep working."""

    def test_import_failure_is_named_and_the_rest_load(self) -> None:
        with capture_logs() as logs:
            manager = limelight.plugins.discover(limelight.load_config(environ={}))
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
        manager = limelight.plugins.discover(
            limelight.load_config(environ={"LIMELIGHT_PLUGINS": ""}), extra=[_Typo()]
        )
        [failure] = [f for f in manager.failures if f.plugin == "typo"]
        assert "limelight_metrics_readers, which is not a limelight hook" in failure.error


class _Returns:
    """A plugin returning *value* from one contribution hook."""

    def __init__(self, name: str, hook: str, value: object) -> None:
        self.limelight_name = name
        setattr(self, hook, limelight.hookimpl(specname=hook)(lambda **kwargs: value))


class _Started:
    """Records its start and stop; optionally raises in start."""

    def __init__(self, name: str, priority: int, log: list[str], fail: bool = False) -> None:
        self.limelight_name = name
        self.limelight_priority = priority
        self.log = log
        self.fail = fail

    @limelight.hookimpl
    def limelight_lifecycle_start(self, telemetry: object) -> None:
        self.log.append(f"{self.limelight_name}:start")
        if self.fail:
            raise RuntimeError(f"{self.limelight_name} cannot start")

    @limelight.hookimpl
    def limelight_lifecycle_stop(self, telemetry: object, timeout: float) -> None:
        self.log.append(f"{self.limelight_name}:stop")


def _harness_telemetry(*plugins: object, strict: bool = False) -> Telemetry:
    env = {"LIMELIGHT_STRICT": "1"} if strict else {}
    return Telemetry(
        plugins=plugins,
        entry_points=False,
        environ=env,
        handle_signals=False,
        install_globals=False,
    )


class TestReturnedValues:
    """A hook that returns something of the wrong type is that plugin's failure, not a crash."""

    @pytest.mark.parametrize(
        ("hook", "value"),
        [
            ("limelight_metrics_declare", ["jobs_total"]),
            ("limelight_metrics_declare", "jobs_total"),
            ("limelight_metrics_provide_readers", [object()]),
            ("limelight_metrics_provide_otel_readers", ["reader"]),
            ("limelight_spans_provide_exporters", [42]),
            ("limelight_spans_provide_processors", [None]),
            ("limelight_interceptors_provide", ["not an interceptor"]),
            ("limelight_spans_provide_sampler", "always_on"),
        ],
    )
    def test_wrong_type_is_reported_by_name_and_start_goes_on(
        self, hook: str, value: object
    ) -> None:
        telemetry = _harness_telemetry(_Returns("odd", hook, value))
        try:
            telemetry.start()
            assert telemetry.enabled
            [failure] = telemetry.plugins.failures
            assert ("odd", f"hook {hook}") == (failure.plugin, failure.phase)
            assert failure.error.startswith("TypeError: expected ")
            # the core's own contributions are unaffected
            assert ["limelight.function_metrics", "limelight.function_tracing"] == [
                i.name for i in telemetry.interceptors
            ]
            assert "function_calls_total" in telemetry.store
        finally:
            telemetry.stop(timeout=2)

    def test_interceptor_with_a_non_integer_order_is_left_out(self) -> None:
        bad = Interceptor("late", "last", lambda target: None)  # type: ignore[arg-type]
        telemetry = _harness_telemetry(_Returns("odd", "limelight_interceptors_provide", [bad]))
        try:
            telemetry.start()
            assert ["odd"] == [f.plugin for f in telemetry.plugins.failures]
            assert "late" not in [i.name for i in telemetry.interceptors]
        finally:
            telemetry.stop(timeout=2)

    def test_strict_mode_makes_it_a_boot_failure(self) -> None:
        plugin = _Returns("odd", "limelight_metrics_declare", ["jobs_total"])
        telemetry = _harness_telemetry(plugin, strict=True)
        with pytest.raises(PluginError, match="plugin 'odd' failed"):
            telemetry.start()
        assert not telemetry.enabled


class _LateConfigure:
    limelight_name = "late"

    @limelight.hookimpl
    def limelight_lifecycle_configure(self, config: object) -> None:
        raise RuntimeError("late plugin cannot configure")

    @limelight.hookimpl
    def limelight_metrics_declare(self, config: object) -> list[object]:
        raise RuntimeError("late plugin cannot declare")


class _HalfValid:
    limelight_name = "half"

    @limelight.hookimpl
    def limelight_lifecycle_start(self, telemetry: object) -> None:
        return None

    @limelight.hookimpl
    def limelight_metrics_declare(self, cfg: object) -> list[object]:  # not the spec's argument
        return []


class TestLateRegistration:
    """A plugin registered after start is guarded from its first call, or not registered at all."""

    def test_a_failing_configure_is_reported_and_the_plugin_stays_guarded(self) -> None:
        manager = limelight.plugins.discover(
            limelight.load_config(environ={"LIMELIGHT_PLUGINS": ""})
        )
        config = limelight.load_config(environ={})
        manager.lifecycle_configure(config)
        manager.register(_LateConfigure())
        assert [] == manager.metrics_declare(config)  # guarded: reported, not raised
        assert [
            ("late", "hook limelight_lifecycle_configure", "late plugin cannot configure"),
            ("late", "hook limelight_metrics_declare", "late plugin cannot declare"),
        ] == [(f.plugin, f.phase, f.error.split(": ", 1)[1]) for f in manager.failures]
        assert "late" in manager.names()

    def test_strict_refuses_the_plugin_whole(self) -> None:
        manager = limelight.plugins.PluginManager(strict=True)
        manager.lifecycle_configure(limelight.load_config(environ={}))
        with pytest.raises(PluginError, match="late plugin cannot configure"):
            manager.register(_LateConfigure())
        assert None is manager.plugin("late")
        assert () == manager.call_order("limelight_metrics_declare")
        assert "failed" == {i.name: i for i in manager.infos()}["late"].status

    def test_a_plugin_pluggy_refuses_leaves_nothing_behind(self) -> None:
        manager = limelight.plugins.PluginManager()
        manager.register(_HalfValid())
        [failure] = manager.failures
        assert ("half", "load") == (failure.plugin, failure.phase)
        assert None is manager.plugin("half")
        assert () == manager.call_order("limelight_lifecycle_start")
        assert "half" not in manager.names()


class _Reader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def force_flush(self, timeout: float) -> bool:
        self.calls.append("flush")
        return True

    def shutdown(self, timeout: float) -> None:
        self.calls.append("shutdown")


class _Exporter:
    def __init__(self) -> None:
        self.shut = False

    def export(self, spans: object) -> object:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


class _Exporting:
    limelight_name = "exporting"
    limelight_priority = 100

    def __init__(self) -> None:
        self.reader = _Reader()
        self.exporter = _Exporter()

    @limelight.hookimpl
    def limelight_metrics_provide_readers(self, telemetry: object) -> list[object]:
        return [self.reader]

    @limelight.hookimpl
    def limelight_spans_provide_exporters(self, telemetry: object) -> list[object]:
        return [self.exporter]


class TestStrictAbort:
    """Under LIMELIGHT_STRICT a failing start hook leaves nothing running."""

    def test_readers_processors_and_started_plugins_are_stopped(self) -> None:
        log: list[str] = []
        exporting = _Exporting()
        first = _Started("first", 200, log)
        broken = _Started("broken", 210, log, fail=True)
        never = _Started("never", 220, log)
        telemetry = _harness_telemetry(exporting, first, broken, never, strict=True)
        with pytest.raises(PluginError, match="broken cannot start"):
            telemetry.start()
        assert ["first:start", "broken:start", "broken:stop", "first:stop"] == log
        assert ["start", "shutdown"] == exporting.reader.calls
        assert exporting.exporter.shut
        assert not telemetry.enabled
        assert telemetry is not limelight.current()
        names = {t.name for t in threading.enumerate()}
        assert "limelight-span-export-exporting" not in names

    def test_without_strict_the_others_start_and_run(self) -> None:
        log: list[str] = []
        telemetry = _harness_telemetry(
            _Started("first", 200, log), _Started("broken", 210, log, fail=True)
        )
        telemetry.start()
        try:
            assert telemetry.enabled
            assert ["first:start", "broken:start"] == log
        finally:
            telemetry.stop(timeout=2)


class _Ordered:
    def __init__(
        self,
        name: str,
        priority: int,
        log: list[str],
        tryfirst: bool = False,
        trylast: bool = False,
    ) -> None:
        self.limelight_name = name
        self.limelight_priority = priority

        def start(telemetry: object) -> None:
            log.append(name)

        marker = limelight.hookimpl(tryfirst=tryfirst, trylast=trylast)
        self.limelight_lifecycle_start = marker(start)


class _Wrapper:
    limelight_name = "wrapping"

    @limelight.hookimpl(wrapper=True)
    def limelight_lifecycle_start(self, telemetry: object) -> Iterator[None]:
        yield


class TestHookimplOptions:
    """tryfirst and trylast reorder an implementation; wrappers are refused clearly."""

    def test_tryfirst_and_trylast_are_honoured_over_priority(self) -> None:
        log: list[str] = []
        plugins = [
            _Ordered("a", 10, log, trylast=True),
            _Ordered("b", 20, log),
            _Ordered("c", 30, log, tryfirst=True),
            _Ordered("d", 40, log),
        ]
        telemetry = _harness_telemetry(*plugins)
        telemetry.start()
        telemetry.stop(timeout=2)
        assert ["c", "b", "d", "a"] == log

    def test_a_wrapper_is_refused_by_name(self) -> None:
        log: list[str] = []
        telemetry = _harness_telemetry(_Wrapper(), _Ordered("plain", 10, log))
        telemetry.start()
        try:
            [failure] = telemetry.plugins.failures
            assert ("wrapping", "load") == (failure.plugin, failure.phase)
            assert "as a wrapper, which limelight does not support" in failure.error
            assert "wrapping" not in telemetry.plugins.names()
            assert ["plain"] == log
        finally:
            telemetry.stop(timeout=2)

    def test_a_wrapper_is_a_boot_failure_when_strict(self) -> None:
        telemetry = _harness_telemetry(_Wrapper(), strict=True)
        with pytest.raises(PluginError, match="wrapping"):
            telemetry.start()


class TestSharedVariables:
    """A variable several plugins read is listed once, owned by all; a rival definition is not."""

    def test_one_object_declared_by_two_plugins_is_listed_once(self) -> None:
        shared = limelight.http.OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS
        rival = EnvVar[tuple[str, ...]](shared.name, ("GET",), shared.parse, "Another definition.")
        manager = limelight.plugins.discover(
            limelight.load_config(environ={"LIMELIGHT_PLUGINS": ""}),
            extra=[
                _Returns("server", "limelight_config_declare", [shared]),
                _Returns("client", "limelight_config_declare", [shared]),
                _Returns("third", "limelight_config_declare", [rival]),
            ],
        )
        assert [("client, server", shared)] == [
            (owner, var) for owner, var in manager.config_declare() if var.name == shared.name
        ]
        [failure] = [f for f in manager.failures if f.plugin == "third"]
        assert "already declared by client, server with another definition" in failure.error


class _Recorded:
    """Records its configure, start and stop calls as ``name:hook`` in *log*."""

    def __init__(
        self,
        name: str,
        priority: int,
        log: list[str],
        tryfirst: bool = False,
        trylast: bool = False,
        fail_start: bool = False,
    ) -> None:
        self.limelight_name = name
        self.limelight_priority = priority
        marker = limelight.hookimpl(tryfirst=tryfirst, trylast=trylast)

        def configure(config: object) -> None:
            log.append(f"{name}:configure")

        def start(telemetry: object) -> None:
            log.append(f"{name}:start")
            if fail_start:
                raise RuntimeError(f"{name} cannot start")

        def stop(telemetry: object, timeout: float) -> None:
            log.append(f"{name}:stop")

        self.limelight_lifecycle_configure = marker(configure)
        self.limelight_lifecycle_start = marker(start)
        self.limelight_lifecycle_stop = marker(stop)


def _calls(log: list[str], hook: str) -> list[str]:
    return [entry.split(":")[0] for entry in log if entry.endswith(f":{hook}")]


class TestPluggyOrder:
    """pluggy's own calling gives the priority order, late registrations included."""

    def test_a_late_plugin_takes_its_priority_place(self) -> None:
        log: list[str] = []
        manager = limelight.plugins.PluginManager()
        manager.register(_Recorded("a", 10, log))
        manager.register(_Recorded("c", 30, log))
        manager.lifecycle_configure(limelight.load_config(environ={}))
        manager.register(_Recorded("b", 20, log))
        assert ("a", "b", "c") == manager.call_order("limelight_lifecycle_start")
        manager.lifecycle_start(telemetry=None)  # type: ignore[arg-type]
        assert ["a", "b", "c"] == _calls(log, "start")

    def test_moving_plugins_for_a_late_one_does_not_configure_them_again(self) -> None:
        log: list[str] = []
        manager = limelight.plugins.PluginManager()
        for name, priority in (("a", 10), ("c", 30)):
            manager.register(_Recorded(name, priority, log))
        config = limelight.load_config(environ={})
        manager.lifecycle_configure(config)
        manager.lifecycle_configure(config)
        manager.register(_Recorded("b", 20, log))  # a is re-registered after it
        # a and c got both calls when they were made, b both on registering: once each
        assert ["a", "c", "a", "c", "b", "b"] == _calls(log, "configure")

    def test_a_moved_plugin_still_receives_later_configure_calls(self) -> None:
        log: list[str] = []

        class Mixed:
            limelight_name = "mixed"
            limelight_priority = 10

            @limelight.hookimpl
            def limelight_lifecycle_configure(self, config: object) -> None:
                log.append("mixed:configure")

            @limelight.hookimpl(trylast=True)
            def limelight_lifecycle_start(self, telemetry: object) -> None:
                log.append("mixed:start")

        manager = limelight.plugins.PluginManager()
        manager.register(Mixed())
        config = limelight.load_config(environ={})
        manager.lifecycle_configure(config)
        # all trylast and of a lower priority: mixed's trylast tier moves after it
        manager.register(_Recorded("lower", 5, log, trylast=True))
        manager.lifecycle_configure(config)
        # lower's replay on registering, then the second call: plain mixed first
        assert ["mixed", "lower", "mixed", "lower"] == _calls(log, "configure")
        assert ("lower", "mixed") == manager.call_order("limelight_lifecycle_start")

    def test_tryfirst_and_trylast_tiers_each_run_in_priority_order(self) -> None:
        log: list[str] = []
        plugins = [
            _Recorded("last-2", 20, log, trylast=True),
            _Recorded("first-2", 40, log, tryfirst=True),
            _Recorded("plain-2", 50, log),
            _Recorded("last-1", 10, log, trylast=True),
            _Recorded("first-1", 30, log, tryfirst=True),
            _Recorded("plain-1", 5, log),
        ]
        manager = limelight.plugins.discover(
            limelight.load_config(environ={"LIMELIGHT_PLUGINS": ""}), extra=plugins
        )
        manager.register(_Recorded("last-0", 0, log, trylast=True))
        expected = ("first-1", "first-2", "plain-1", "plain-2", "last-0", "last-1", "last-2")
        assert expected == manager.call_order("limelight_lifecycle_start")
        manager.lifecycle_start(telemetry=None)  # type: ignore[arg-type]
        assert list(expected) == _calls(log, "start")
        manager.lifecycle_stop(telemetry=None, timeout=1.0)  # type: ignore[arg-type]
        assert list(reversed(expected)) == _calls(log, "stop")

    def test_configure_is_replayed_to_a_late_plugin_by_pluggy(self) -> None:
        log: list[str] = []
        manager = limelight.plugins.PluginManager()
        config = limelight.load_config(environ={})
        manager.lifecycle_configure(config)
        manager.lifecycle_configure(config)
        manager.register(_Recorded("late", 10, log))
        assert ["late", "late"] == _calls(log, "configure")

    def test_a_plugin_that_raises_does_not_silence_the_next(self) -> None:
        log: list[str] = []
        manager = limelight.plugins.PluginManager()
        manager.register(_Recorded("first", 10, log, fail_start=True))
        manager.register(_Recorded("second", 20, log))
        manager.lifecycle_start(telemetry=None)  # type: ignore[arg-type]
        assert ["first", "second"] == _calls(log, "start")
        assert ["first", "second"] == manager.started
        assert [("first", "hook limelight_lifecycle_start")] == [
            (f.plugin, f.phase) for f in manager.failures
        ]


class TestPluginError:
    """A PluginError names the plugin and the hook, as pluggy's PluginValidationError does."""

    def test_a_hook_failure_names_its_plugin_and_hook(self) -> None:
        manager = limelight.plugins.PluginManager(strict=True)
        manager.register(_Recorded("broken", 10, [], fail_start=True))
        with pytest.raises(PluginError) as raised:
            manager.lifecycle_start(telemetry=None)  # type: ignore[arg-type]
        assert ("broken", "limelight_lifecycle_start") == (raised.value.plugin, raised.value.hook)
        assert isinstance(raised.value.__cause__, RuntimeError)

    def test_a_load_failure_names_its_plugin_and_no_hook(self) -> None:
        telemetry = Telemetry(environ={"LIMELIGHT_STRICT": "1"}, handle_signals=False)
        with pytest.raises(PluginError) as raised:
            telemetry.start()
        assert ("faulty-import", None) == (raised.value.plugin, raised.value.hook)

    def test_a_wrong_result_names_the_hook_it_came_from(self) -> None:
        plugin = _Returns("odd", "limelight_interceptors_provide", [42])
        telemetry = _harness_telemetry(plugin, strict=True)
        with pytest.raises(PluginError) as raised:
            telemetry.start()
        assert ("odd", "limelight_interceptors_provide") == (
            raised.value.plugin,
            raised.value.hook,
        )
