"""The plugin object: declares the metrics and variables, instruments the buses at start."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Final

from limelight_hookspecs import (
    Config,
    EnvVar,
    MetricDeclaration,
    MetricKind,
    TelemetryView,
    hookimpl,
    parse_bool,
    parse_list,
)

__all__ = [
    "ALL_METRICS",
    "EVENTBUS_REJECTED",
    "EVENTBUS_SUBSCRIBERS",
    "LIBRARIES",
    "LIMELIGHT_EVENTBUS_INSTRUMENT",
    "LIMELIGHT_EVENTBUS_SPANS",
    "VARIABLES",
    "EventbusPlugin",
    "plugin",
]

EVENTBUS_SUBSCRIBERS = MetricDeclaration(
    "eventbus_subscribers_active",
    MetricKind.GAUGE_ADD,
    "Receivers connected to an in-process event bus, by topic (the blinker signal's "
    "name, the pyee event's name).",
    unit="1",
    label_names=("topic",),
)
EVENTBUS_REJECTED = MetricDeclaration(
    "eventbus_rejected_total",
    MetricKind.COUNTER,
    "Events an in-process bus did not deliver cleanly, by topic and reason (error: a "
    "receiver raised; no_receiver: no receiver was called).",
    unit="1",
    label_names=("topic", "reason"),
)
ALL_METRICS: tuple[MetricDeclaration, ...] = (EVENTBUS_SUBSCRIBERS, EVENTBUS_REJECTED)
"""Every metric the plugin declares (the event-bus entries of the catalog)."""

LIBRARIES: Final = ("blinker", "pyee")
"""The event-bus libraries the plugin can instrument, by import name."""


def _parse_libraries(raw: str) -> tuple[str, ...]:
    names = tuple(name.lower() for name in parse_list(raw))
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in LIBRARIES]
    if unknown:
        raise ValueError(f"unknown library {unknown[0]!r}; expected {', '.join(LIBRARIES)} or none")
    return names


LIMELIGHT_EVENTBUS_INSTRUMENT = EnvVar[tuple[str, ...]](
    "LIMELIGHT_EVENTBUS_INSTRUMENT",
    LIBRARIES,
    _parse_libraries,
    "Event-bus libraries instrumented when telemetry starts (those installed among blinker, "
    "pyee); none to instrument nothing (call limelight_eventbus.instrument() yourself).",
    "blinker",
)
LIMELIGHT_EVENTBUS_SPANS = EnvVar(
    "LIMELIGHT_EVENTBUS_SPANS",
    False,
    parse_bool,
    "Create a CONSUMER span for every dispatch (a blinker send, a pyee emit), a child of "
    "the publisher's span and linked to it. Off by default: a bus used for every request "
    "floods traces.",
    "true",
)
VARIABLES: tuple[EnvVar[Any], ...] = (LIMELIGHT_EVENTBUS_INSTRUMENT, LIMELIGHT_EVENTBUS_SPANS)
"""Every variable the plugin reads, in documentation order."""


class EventbusPlugin:
    """In-process event buses: blinker signals and pyee emitters, subscribers and rejections."""

    limelight_name = "eventbus"
    limelight_priority = 250

    @hookimpl
    def limelight_config_declare(self) -> Sequence[EnvVar[Any]]:
        return VARIABLES

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> Sequence[MetricDeclaration]:
        return ALL_METRICS

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        # each library when the application imports it: never imported for nothing
        wanted: tuple[str, ...] = telemetry.config.get(LIMELIGHT_EVENTBUS_INSTRUMENT)
        if wanted:
            from ._instrumentation import instrumentation

            instrumentation.instrument_on_import(*wanted)
        # the buses already known are counted into this telemetry's store now, not at
        # their next use (none is known before the module that keeps them is imported)
        core = sys.modules.get(f"{__package__}._core")
        if core is not None:
            core.resync_all(telemetry)


plugin = EventbusPlugin()
"""The plugin object registered through the ``limelight.plugins`` entry point."""
