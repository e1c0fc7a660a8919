"""limelight-eventbus: in-process event buses, blinker signals and pyee emitters.

Subscribers by topic (``eventbus_subscribers_active``), events not delivered
cleanly by topic and reason (``eventbus_rejected_total``: ``error``,
``no_receiver``) and, on request (``LIMELIGHT_EVENTBUS_SPANS=true``), a
CONSUMER span per dispatch, a child of the publisher's span and linked to it.
The plugin instruments the installed libraries when telemetry starts; by hand,
through the instrument contract every limelight surface follows::

    import limelight_eventbus

    limelight_eventbus.instrument()        # blinker and pyee, those installed
    limelight_eventbus.uninstrument()      # both exactly as they were

See ``docs/plugins/eventbus.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from limelight.plugins import lazy_exports as _lazy_exports

if _TYPE_CHECKING:
    from ._core import ANONYMOUS_TOPIC, ERROR, MAX_TOPIC_LENGTH, NO_RECEIVER, REASONS, topic_label
    from ._instrumentation import instrument, is_instrumented, uninstrument
    from ._plugin import (
        EVENTBUS_REJECTED,
        EVENTBUS_SUBSCRIBERS,
        LIBRARIES,
        LIMELIGHT_EVENTBUS_INSTRUMENT,
        LIMELIGHT_EVENTBUS_SPANS,
        EventbusPlugin,
        plugin,
    )


__all__ = [
    "ANONYMOUS_TOPIC",
    "ERROR",
    "EVENTBUS_REJECTED",
    "EVENTBUS_SUBSCRIBERS",
    "LIBRARIES",
    "LIMELIGHT_EVENTBUS_INSTRUMENT",
    "LIMELIGHT_EVENTBUS_SPANS",
    "MAX_TOPIC_LENGTH",
    "NO_RECEIVER",
    "REASONS",
    "EventbusPlugin",
    "instrument",
    "is_instrumented",
    "plugin",
    "topic_label",
    "uninstrument",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._core": (
            "ANONYMOUS_TOPIC",
            "ERROR",
            "MAX_TOPIC_LENGTH",
            "NO_RECEIVER",
            "REASONS",
            "topic_label",
        ),
        "._instrumentation": (
            "instrument",
            "is_instrumented",
            "uninstrument",
        ),
        "._plugin": (
            "EVENTBUS_REJECTED",
            "EVENTBUS_SUBSCRIBERS",
            "LIBRARIES",
            "LIMELIGHT_EVENTBUS_INSTRUMENT",
            "LIMELIGHT_EVENTBUS_SPANS",
            "EventbusPlugin",
            "plugin",
        ),
    },
)
