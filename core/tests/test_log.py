"""limelight's log lines go through ``logging`` at the level the application set.

Each event is a structlog event handed to ``logging.getLogger("limelight")``
(or ``limelight.<plugin>``): below that logger's effective level it is
dropped; above it, the application's handlers get it, rendered by the
application's structlog processors when it configured structlog, by
limelight's own ``event key=value`` otherwise. limelight never configures
structlog for the process.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from limelight._log import get_logger


@pytest.fixture(autouse=True)
def _structlog_as_the_application_left_it() -> Iterator[None]:
    """Each test starts with structlog unconfigured and leaves it that way."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    return [(r.name, r.levelname, r.getMessage()) for r in caplog.records]


class TestLevels:
    """The standard library logger's effective level decides what is logged."""

    def test_below_the_default_warning_level_nothing_is_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        log = get_logger("limelight")
        log.debug("stopping telemetry", reason="SIGTERM")
        log.info("a global tracer provider was already set")
        assert [] == _records(caplog)

    def test_warnings_are_logged_at_the_default_level(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        get_logger("limelight").warning("span export failing", exporter="otlp", attempts=3)
        assert [("limelight", "WARNING", "span export failing exporter=otlp attempts=3")] == (
            _records(caplog)
        )

    def test_the_level_the_application_gives_the_limelight_logger(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.DEBUG, logger="limelight"):
            get_logger("limelight").debug("stopping telemetry", reason="SIGTERM")
        assert [("limelight", "DEBUG", "stopping telemetry reason=SIGTERM")] == _records(caplog)

    def test_a_plugin_logger_follows_the_limelight_logger(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="limelight"):
            get_logger("limelight.http").info("instrumented", framework="starlette")
            get_logger("limelight.http").debug("not at INFO")
        assert [("limelight.http", "INFO", "instrumented framework=starlette")] == (
            _records(caplog)
        )

    def test_a_higher_level_silences_warnings(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.ERROR, logger="limelight"):
            get_logger().warning("quiet please")
            get_logger().error("still said")
        assert [("limelight", "ERROR", "still said")] == _records(caplog)


class TestRendering:
    """Without structlog configured, the message is the event and its fields."""

    def test_values_other_than_strings_are_shown_as_repr(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        get_logger().bind(component="export").warning("failed", error=None, codes=[1, 2])
        assert "failed component=export error=None codes=[1, 2]" == caplog.records[0].message

    def test_an_exception_is_handed_to_logging(self, caplog: pytest.LogCaptureFixture) -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            get_logger().exception("export crashed", exporter="otlp")
        [record] = caplog.records
        assert ("ERROR", "export crashed exporter=otlp") == (record.levelname, record.message)
        assert record.exc_info is not None
        assert record.exc_info[0] is ValueError
        assert "ValueError: boom" in caplog.text

    def test_positional_arguments_are_formatted(self, caplog: pytest.LogCaptureFixture) -> None:
        get_logger().warning("%d spans dropped", 7)
        assert "7 spans dropped" == caplog.records[0].message


class TestWithTheApplicationsStructlog:
    """When the application configured structlog, its processors render the events."""

    def test_capture_logs_sees_events_at_the_enabled_levels(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with capture_logs() as logs:
            get_logger().warning("span export failing", exporter="otlp")
            get_logger().info("dropped: the level is WARNING")
        assert [{"event": "span export failing", "exporter": "otlp", "log_level": "warning"}] == (
            logs
        )

    def test_a_processor_formatter_setup_renders_limelight_events(self) -> None:
        structlog.configure(
            processors=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.add_log_level,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
        )
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(),
                ]
            )
        )
        logger = logging.getLogger("limelight")
        logger.addHandler(handler)
        try:
            get_logger().warning("span export failing", exporter="otlp")
        finally:
            logger.removeHandler(handler)
        assert {
            "event": "span export failing",
            "exporter": "otlp",
            "logger": "limelight",
            "level": "warning",
        } == json.loads(stream.getvalue())

    def test_a_chain_that_fails_falls_back_to_limelights_rendering(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(logger: Any, method: str, event_dict: Any) -> Any:
            raise RuntimeError("a processor for another logger type")

        structlog.configure(processors=[broken])
        get_logger().warning("still logged", where="export")
        assert [("limelight", "WARNING", "still logged where=export")] == _records(caplog)


def test_limelight_never_configures_structlog() -> None:
    script = textwrap.dedent(
        """
        import structlog
        import limelight
        telemetry = limelight.start(service_name="quiet")
        telemetry.tracer("t").start_span("s").end()
        limelight.stop()
        print(structlog.is_configured())
        """
    )
    env = {**os.environ, "LIMELIGHT_PLUGINS": "", "OTEL_TRACES_EXPORTER": "none"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert 0 == done.returncode, done.stderr
    assert "False" == done.stdout.strip().splitlines()[-1]
    assert "" == done.stderr
