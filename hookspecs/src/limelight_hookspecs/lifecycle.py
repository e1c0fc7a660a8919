"""Lifecycle hooks: configure, start, stop.

The core calls ``limelight_lifecycle_start`` in plugin priority order and
``limelight_lifecycle_stop`` in reverse priority order; an implementation that raises is
reported with its plugin's name and the others still run.

A specification's body is its documentation only: pluggy never runs it.
"""

from __future__ import annotations

from ._config_types import Config
from ._markers import hookspec
from ._telemetry import TelemetryView


@hookspec(historic=True)
def limelight_lifecycle_configure(config: Config) -> None:
    """Receive the effective configuration before anything starts.

    Called once per telemetry start, before any other hook. It is historic: a
    plugin registered after the call still receives it on registration.

    :param config: the effective configuration. Read plugin-specific
        variables with ``config.get(MY_VAR)``.
    """


@hookspec
def limelight_lifecycle_start(telemetry: TelemetryView) -> None:
    """Start background work (servers, threads) once tracing and metrics are set up.

    Called in plugin priority order after the tracer provider, meter provider
    and store readers exist.

    :param telemetry: the running telemetry.
    """


@hookspec
def limelight_lifecycle_stop(telemetry: TelemetryView, timeout: float) -> None:
    """Stop background work and release resources.

    Called once per telemetry stop, in reverse priority order, before the
    core flushes and shuts down the providers and store readers; also at
    interpreter exit and on SIGTERM, and for the plugins that started when a
    strict start fails half-way. Every implementation runs even when one
    raises.

    :param telemetry: the running telemetry.
    :param timeout: seconds this implementation may take; the core bounds
        the whole stop by ``Config.shutdown_timeout``.
    """
