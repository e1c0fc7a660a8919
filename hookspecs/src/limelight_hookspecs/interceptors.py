# mypy: disable-error-code="empty-body"
"""Interceptor hooks: contribute to the function-call interceptor chain.

A specification's body is its documentation only: pluggy never runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._interceptor_types import Interceptor
from ._markers import hookspec
from ._telemetry import TelemetryView


@hookspec
def limelight_interceptors_provide(telemetry: TelemetryView) -> Sequence[Interceptor]:
    """Contribute interceptors to the chain around instrumented functions.

    Called once per telemetry start. The core sorts every contribution by
    ``(order, name)``; the lowest order is outermost. The chain for each
    function is built once, on its first call after start, never per call.

    :param telemetry: the telemetry being started.
    :return: interceptors, possibly empty.
    """
