"""Log lines caused by request input are bounded in length and rate."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import propagate

from limelight import _logbound, _state
from limelight.testing import Harness


class TestBoundedLines:
    """One line per kind per interval, escaped and cut, the left-out ones counted."""

    def test_rate_length_and_escaping(self, caplog: pytest.LogCaptureFixture) -> None:
        logger = logging.getLogger("limelight.tests.bounded")
        logger.addFilter(_logbound.BoundedLines(interval=3600, limit=50))
        _state.reset()
        with caplog.at_level(logging.WARNING, logger="limelight.tests.bounded"):
            for i in range(100):
                logger.warning("header `%s` refused", "\x1b[2J\n" + "x" * 10_000 + str(i))
                logger.warning("another kind %d", i)
        messages = [r.getMessage() for r in caplog.records]
        assert 2 == len(messages)
        assert messages[0].startswith("header `\\x1b[2J\\nxxx")
        assert messages[0].endswith("... (10023 characters)")
        assert "another kind 0" == messages[1]

    def test_after_the_interval_the_left_out_lines_are_counted(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        logger = logging.getLogger("limelight.tests.interval")
        line_filter = _logbound.BoundedLines(interval=3600)
        logger.addFilter(line_filter)
        _state.reset()
        with caplog.at_level(logging.WARNING, logger="limelight.tests.interval"):
            for _ in range(4):
                logger.warning("same")
            line_filter.interval = 0
            logger.warning("same")
        assert ["same", "same (3 more like this in the last 0 s)"] == [
            r.getMessage() for r in caplog.records
        ]

    def test_reset_starts_every_kind_afresh(self, caplog: pytest.LogCaptureFixture) -> None:
        logger = logging.getLogger("limelight.tests.reset")
        logger.addFilter(_logbound.BoundedLines(interval=3600))
        with caplog.at_level(logging.WARNING, logger="limelight.tests.reset"):
            logger.warning("once")
            logger.warning("once")
            _state.reset()
            logger.warning("once")
        assert 2 == len(caplog.records)


class TestInstalledWithThePropagator:
    """Starting telemetry bounds what the configured propagators log about carriers."""

    def test_hostile_baggage_is_logged_once(self, caplog: pytest.LogCaptureFixture) -> None:
        with Harness(), caplog.at_level(logging.WARNING, logger="opentelemetry"):
            for _ in range(100):
                propagate.extract({"baggage": "k=" + "v" * 9000})
        [record] = [r for r in caplog.records if r.name == "opentelemetry.baggage.propagation"]
        assert len(record.getMessage()) < 400
