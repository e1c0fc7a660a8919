"""The plugin as limelight sees it: entry point, hooks, variables, the instrument contract."""

from __future__ import annotations

import asyncio.base_subprocess
import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import entry_points
from multiprocessing import pool as mp_pool
from multiprocessing import popen_fork
from multiprocessing import process as mp_process

import limelight_process
import pytest
import structlog.testing
from limelight_process import ALL_METRICS, VARIABLES, ProcessPlugin, exit_error_type

from limelight.testing import Harness

ORIGINALS: dict[tuple[object, str], object] = {
    (subprocess.Popen, "__init__"): subprocess.Popen.__init__,
    (mp_process.BaseProcess, "start"): mp_process.BaseProcess.start,
    (ProcessPoolExecutor, "submit"): ProcessPoolExecutor.submit,
    (mp_pool.Pool, "apply_async"): mp_pool.Pool.apply_async,
    (mp_pool.Pool, "_map_async"): vars(mp_pool.Pool)["_map_async"],
    (mp_pool.Pool, "imap"): mp_pool.Pool.imap,
    (mp_pool.Pool, "imap_unordered"): mp_pool.Pool.imap_unordered,
}


if os.name == "posix":  # the seam below subprocess's environment encoding
    ORIGINALS[(subprocess, "_fork_exec")] = vars(subprocess)["_fork_exec"]
    ORIGINALS[(subprocess.Popen, "_posix_spawn")] = vars(subprocess.Popen)["_posix_spawn"]

ADDED = ("returncode", "_limelight_process_returncode", "_limelight_process_run")


def _untouched() -> bool:
    return all(vars(owner)[name] is fn for (owner, name), fn in ORIGINALS.items()) and not any(
        name in vars(cls) for cls in (subprocess.Popen, popen_fork.Popen) for name in ADDED
    )


class TestPublicApi:
    """Every exported name exists, once."""

    def test_all(self) -> None:
        for name in limelight_process.__all__:
            assert getattr(limelight_process, name) is not None
        assert sorted(limelight_process.__all__) == sorted(set(limelight_process.__all__))

    def test_exit_error_type(self) -> None:
        assert ("1", "127", "SIGKILL", "SIGTERM", "-99") == tuple(
            exit_error_type(c) for c in (1, 127, -9, -15, -99)
        )


class TestRegistration:
    """The plugin is found through its entry point, declares its metrics and variables."""

    def test_entry_point(self) -> None:
        (ep,) = [e for e in entry_points(group="limelight.plugins") if e.name == "process"]
        assert limelight_process.plugin is ep.load()
        assert ("process", 240) == (ProcessPlugin.limelight_name, ProcessPlugin.limelight_priority)

    def test_metrics_from_the_catalog(self) -> None:
        assert [
            ("process_started_total", "counter", ("kind",)),
            ("process_terminated_total", "counter", ("kind", "result")),
            ("process_active", "gauge_add", ("kind",)),
            ("process_duration_seconds", "histogram", ("kind", "result")),
        ] == [(m.name, m.kind.value, tuple(m.label_names)) for m in ALL_METRICS]

    def test_variables(self) -> None:
        assert ["LIMELIGHT_PROCESS_INSTRUMENT", "LIMELIGHT_PROCESS_COMMAND_ARGS"] == [
            v.name for v in limelight_process.plugin.limelight_config_declare()
        ]
        assert all(v.doc.endswith(".") and v.example for v in VARIABLES)

    def test_found_by_discovery(self) -> None:
        with Harness(entry_points=True, env={"LIMELIGHT_PLUGINS": "process"}) as harness:
            assert "process_active" in harness.store
            assert limelight_process.is_instrumented("subprocess")


class TestInstrumentContract:
    """instrument() is idempotent; uninstrument() restores every library exactly."""

    def test_round_trip(self) -> None:
        assert _untouched()
        assert ("subprocess", "multiprocessing", "concurrent.futures") == (
            limelight_process.instrument()
        )
        assert () == limelight_process.instrument()
        assert not _untouched()
        assert all(limelight_process.is_instrumented(n) for n in limelight_process.LIBRARIES)
        assert ("subprocess", "multiprocessing", "concurrent.futures") == (
            limelight_process.uninstrument()
        )
        assert _untouched()
        assert not limelight_process.is_instrumented()

    def test_one_library(self) -> None:
        assert ("subprocess",) == limelight_process.instrument("subprocess")
        assert not limelight_process.is_instrumented("multiprocessing")
        assert vars(mp_process.BaseProcess)["start"] is ORIGINALS[(mp_process.BaseProcess, "start")]

    def test_unknown_library(self) -> None:
        with pytest.raises(ValueError, match="asyncio"):
            limelight_process.instrument("asyncio")

    def test_asyncio_is_not_patched(self) -> None:
        before = dict(vars(asyncio.base_subprocess.BaseSubprocessTransport))
        limelight_process.instrument()
        assert before == dict(vars(asyncio.base_subprocess.BaseSubprocessTransport))

    def test_a_popen_made_before_keeps_its_status(self) -> None:
        process = subprocess.Popen(["true"])
        limelight_process.instrument("subprocess")
        assert 0 == process.wait()
        limelight_process.uninstrument()
        assert 0 == process.returncode

    def test_a_popen_made_while_instrumented_keeps_its_status(self) -> None:
        limelight_process.instrument("subprocess")
        done = subprocess.Popen(["sh", "-c", "exit 3"])
        running = subprocess.Popen(["sleep", "0.2"])
        assert 3 == done.wait()
        assert running.returncode is None
        limelight_process.uninstrument()
        assert (3, None) == (vars(done)["returncode"], vars(running)["returncode"])
        assert (3, 0) == (done.returncode, running.wait())


class TestConfiguration:
    """What the plugin instruments at start follows LIMELIGHT_PROCESS_INSTRUMENT."""

    @pytest.mark.limelight(
        plugins=[limelight_process.plugin], env={"LIMELIGHT_PROCESS_INSTRUMENT": "subprocess"}
    )
    def test_a_selection(self, telemetry: Harness) -> None:
        assert limelight_process.is_instrumented("subprocess")
        assert not limelight_process.is_instrumented("multiprocessing")

    @pytest.mark.limelight(
        plugins=[limelight_process.plugin], env={"LIMELIGHT_PROCESS_INSTRUMENT": "none"}
    )
    def test_none(self, telemetry: Harness) -> None:
        assert not limelight_process.is_instrumented()

    def test_an_invalid_value_is_reported_and_the_default_used(self) -> None:
        env = {"LIMELIGHT_PROCESS_INSTRUMENT": "subprocess,threads"}
        with (
            structlog.testing.capture_logs() as logs,
            Harness(plugins=[limelight_process.plugin], env=env),
        ):
            assert limelight_process.is_instrumented("concurrent.futures")
        assert any(e.get("variable") == "LIMELIGHT_PROCESS_INSTRUMENT" for e in logs)

    def test_without_the_plugin_nothing_is_recorded(self) -> None:
        limelight_process.instrument()
        with Harness() as harness:
            subprocess.run(["true"], check=True)
            assert [] == harness.spans()
