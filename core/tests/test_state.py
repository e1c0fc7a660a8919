"""Process-wide state has one home; the harness forgets what limelight remembers,
so a "reported once" assertion holds whatever ran before."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from structlog.testing import capture_logs

import limelight
from limelight import _state
from limelight.surface import TelemetryBinding, report_failure
from limelight.testing import Harness


def _failure_reports(logs: Iterable[MutableMapping[str, Any]], component: str) -> int:
    return sum(1 for e in logs if e.get("component") == component)


def _problem_reports(logs: Iterable[MutableMapping[str, Any]], variable: str) -> int:
    return sum(1 for e in logs if e.get("variable") == variable)


class TestReportedOncePerHarness:
    """Each harness sees a once-only report once, whatever happened before it."""

    def test_a_failure_reported_before_the_harness_is_reported_again_in_it(self) -> None:
        report_failure("state-probe", "step", RuntimeError("earlier test"))
        with capture_logs() as logs, Harness():
            report_failure("state-probe", "step", RuntimeError("this test"))
            report_failure("state-probe", "step", RuntimeError("again"))
        assert 1 == _failure_reports(logs, "state-probe")

    def test_two_harnesses_in_a_row_each_report_once(self) -> None:
        counts = []
        for _ in range(2):
            with capture_logs() as logs, Harness():
                for _ in range(3):
                    report_failure("state-probe-2", "step", ValueError("x"))
            counts.append(_failure_reports(logs, "state-probe-2"))
        assert [1, 1] == counts

    def test_a_configuration_problem_is_warned_about_in_each_harness(self) -> None:
        env = {"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}
        counts = []
        for _ in range(2):
            with capture_logs() as logs, Harness(env=env):
                pass
            counts.append(_problem_reports(logs, "OTEL_BSP_MAX_QUEUE_SIZE"))
        assert [1, 1] == counts

    def test_within_one_harness_a_failure_is_still_reported_once(self) -> None:
        with Harness(), capture_logs() as logs:
            for _ in range(5):
                report_failure("state-probe-3", "step", KeyError("k"))
            report_failure("state-probe-3", "step", TypeError("another kind"))
        assert 2 == _failure_reports(logs, "state-probe-3")

    def test_each_harness_has_its_own_instance_id(self) -> None:
        ids = []
        for _ in range(2):
            with Harness() as harness:
                resource = harness.telemetry.resource.attributes
                ids.append(resource["service.instance.id"])
                assert resource["service.instance.id"] == _state.STATE.instance_id[1]  # type: ignore[index]
        assert ids[0] != ids[1]


class TestReset:
    """reset() forgets what limelight remembers and keeps what the process holds."""

    def test_the_running_telemetry_stays_running(self) -> None:
        with Harness() as harness:
            before = _state.STATE.generation
            _state.reset()
            assert harness.telemetry is limelight.current()
            assert harness.telemetry.enabled
            assert before < _state.STATE.generation

    def test_bindings_rebuild_after_a_reset(self) -> None:
        built: list[object] = []

        def build(telemetry: object) -> int:
            built.append(telemetry)
            return len(built)

        binding = TelemetryBinding(build)
        with Harness():
            first = binding.get()
            assert first == binding.get()  # no rebuild while nothing changed
            _state.reset()
            assert first + 1 == binding.get()

    def test_what_the_process_holds_is_listed_and_kept(self) -> None:
        state = _state.STATE
        held = (state.globals_installed, state.exit_handlers_installed, state.forks)
        state.reported_failures.add(("x", "y", "z"))
        state.reported_problems.add(("X", "y"))
        state.propagator_names = frozenset({"probe"})
        _state.reset()
        assert held == (state.globals_installed, state.exit_handlers_installed, state.forks)
        assert set() == state.reported_failures
        assert set() == state.reported_problems
        assert None is state.propagator_names
