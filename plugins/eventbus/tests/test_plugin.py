"""The plugin: declarations, the instrument contract, configuration, failures contained."""

from __future__ import annotations

import enum
import logging

import blinker
import limelight_eventbus
import pyee
import pytest
from conftest import REJECTED, SUBSCRIBERS
from limelight_eventbus import (
    ANONYMOUS_TOPIC,
    EVENTBUS_REJECTED,
    EVENTBUS_SUBSCRIBERS,
    LIMELIGHT_EVENTBUS_INSTRUMENT,
    LIMELIGHT_EVENTBUS_SPANS,
    MAX_TOPIC_LENGTH,
    plugin,
    topic_label,
)

import limelight
from limelight.testing import Harness


def _receiver(sender: object) -> None:
    pass


class TestDeclarations:
    """The plugin declares the catalog's two metrics and its two variables."""

    def test_metrics(self) -> None:
        config = limelight.load_config(environ={})
        assert (EVENTBUS_SUBSCRIBERS, EVENTBUS_REJECTED) == tuple(
            plugin.limelight_metrics_declare(config)
        )
        assert "gauge_add" == EVENTBUS_SUBSCRIBERS.kind
        assert ("topic",) == EVENTBUS_SUBSCRIBERS.label_names
        assert "counter" == EVENTBUS_REJECTED.kind
        assert ("topic", "reason") == EVENTBUS_REJECTED.label_names

    def test_variables(self) -> None:
        assert (LIMELIGHT_EVENTBUS_INSTRUMENT, LIMELIGHT_EVENTBUS_SPANS) == tuple(
            plugin.limelight_config_declare()
        )
        assert ("pyee",) == LIMELIGHT_EVENTBUS_INSTRUMENT.parse(" PYEE ")
        assert () == LIMELIGHT_EVENTBUS_INSTRUMENT.parse("none")
        with pytest.raises(ValueError, match="unknown library 'kafka'"):
            LIMELIGHT_EVENTBUS_INSTRUMENT.parse("blinker,kafka")

    def test_an_invalid_value_falls_back(self) -> None:
        config = limelight.load_config(environ={"LIMELIGHT_EVENTBUS_SPANS": "maybe"})
        assert config.get(LIMELIGHT_EVENTBUS_SPANS) is False


class TestContract:
    """instrument(), uninstrument(), is_instrumented(): idempotent and exact."""

    def test_instrument_and_uninstrument(self) -> None:
        assert not limelight_eventbus.is_instrumented()
        assert ("blinker", "pyee") == limelight_eventbus.instrument()
        assert () == limelight_eventbus.instrument()  # idempotent
        assert () == limelight_eventbus.instrument("pyee")
        assert limelight_eventbus.is_instrumented("blinker")
        assert ("pyee",) == limelight_eventbus.uninstrument("pyee")
        assert not limelight_eventbus.is_instrumented("pyee")
        assert limelight_eventbus.is_instrumented()
        assert ("blinker",) == limelight_eventbus.uninstrument()
        assert () == limelight_eventbus.uninstrument()
        assert not limelight_eventbus.is_instrumented()

    def test_an_unknown_library(self) -> None:
        with pytest.raises(ValueError, match="cannot instrument 'kafka'"):
            limelight_eventbus.instrument("kafka")

    def test_instrumented_at_start(self) -> None:
        with Harness(plugins=[plugin]):
            assert limelight_eventbus.is_instrumented("blinker")
            assert limelight_eventbus.is_instrumented("pyee")

    def test_none_instruments_nothing_at_start(self) -> None:
        with Harness(plugins=[plugin], env={"LIMELIGHT_EVENTBUS_INSTRUMENT": "none"}):
            assert not limelight_eventbus.is_instrumented()

    def test_one_library_at_start(self) -> None:
        with Harness(plugins=[plugin], env={"LIMELIGHT_EVENTBUS_INSTRUMENT": "pyee"}):
            assert limelight_eventbus.is_instrumented("pyee")
            assert not limelight_eventbus.is_instrumented("blinker")


class TestPassThrough:
    """Without running telemetry, or without the plugin, buses record nothing."""

    def test_telemetry_stopped(self) -> None:
        limelight_eventbus.instrument()
        signal = blinker.NamedSignal("stopped")
        signal.connect(_receiver)
        assert [(_receiver, None)] == signal.send()
        emitter = pyee.EventEmitter()
        assert not emitter.emit("nothing")

    def test_sdk_disabled(self) -> None:
        with Harness(plugins=[plugin], env={"OTEL_SDK_DISABLED": "true"}) as telemetry:
            limelight_eventbus.instrument()
            signal = blinker.NamedSignal("disabled")
            signal.connect(_receiver)
            assert [(_receiver, None)] == signal.send()
            assert SUBSCRIBERS not in telemetry.store

    def test_the_plugin_not_loaded(self) -> None:
        with Harness() as telemetry:
            limelight_eventbus.instrument()
            emitter = pyee.EventEmitter()
            emitter.on("x", _receiver)
            assert emitter.emit("x", None)
            assert SUBSCRIBERS not in telemetry.store


class TestTopics:
    """topic is the signal or event name, bounded in length and by the series limit."""

    def test_labels(self) -> None:
        class Kind(enum.StrEnum):
            CREATED = "created"

        class Number(enum.IntEnum):
            ONE = 1

        assert "created" == topic_label(Kind.CREATED)
        assert "1" == topic_label(Number.ONE)
        assert "42" == topic_label(42)
        assert ANONYMOUS_TOPIC == topic_label("")
        assert "x" * MAX_TOPIC_LENGTH == topic_label("x" * (MAX_TOPIC_LENGTH + 50))

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_METRICS_NAMESPACE": "shop"})
    def test_the_namespace_prefix(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        emitter.on("paid", _receiver)
        emitter.emit("refunded")
        assert 1 == telemetry.value("shop_eventbus_subscribers_active", topic="paid")
        assert 1 == telemetry.value(
            "shop_eventbus_rejected_total", topic="refunded", reason="no_receiver"
        )

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_SERIES_LIMIT": "5"})
    def test_the_series_limit(self, telemetry: Harness) -> None:
        emitter = pyee.EventEmitter()
        for i in range(20):
            emitter.on(f"user:{i}", _receiver)
        series = telemetry.series(SUBSCRIBERS)
        assert 6 == len(series)  # five topics, then the overflow series
        assert {"topic": "_overflow"} in series

        # the topics past the limit are counted in the overflow series
        def total() -> float:
            return sum((telemetry.value(SUBSCRIBERS, topic=s["topic"]) for s in series), 0.0)

        assert 20 == total()
        emitter.remove_all_listeners()
        assert 0 == total()
        assert 0 < telemetry.value("limelight_series_overflow_total", metric=SUBSCRIBERS)


class TestFailuresContained:
    """Instrumentation that cannot do its work reports it once; the bus is unaffected."""

    @pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_EVENTBUS_SPANS": "true"})
    def test_a_signal_whose_name_cannot_be_read(
        self, telemetry: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Odd(blinker.Signal):
            @property
            def name(self) -> str:
                raise RuntimeError("no name today")

        signal = Odd()
        caplog.set_level(logging.ERROR, logger="limelight")
        assert signal.connect(_receiver) is _receiver
        assert [(_receiver, None)] == signal.send()
        assert [(_receiver, None)] == signal.send()
        signal.disconnect(_receiver)
        assert [] == signal.send()
        failures = [r for r in caplog.records if "instrumentation failed" in r.getMessage()]
        assert failures
        assert len(failures) == len({r.getMessage() for r in failures})  # each once
        assert 0 == telemetry.value(REJECTED, default=0, topic=ANONYMOUS_TOPIC, reason="error")
