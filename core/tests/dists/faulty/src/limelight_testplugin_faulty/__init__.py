"""Test-only plugin whose start hook raises."""

from __future__ import annotations

from limelight_hookspecs import TelemetryView, hookimpl


class Plugin:
    limelight_priority = 260

    @hookimpl
    def limelight_lifecycle_start(self, telemetry: TelemetryView) -> None:
        raise RuntimeError("faulty-hook refuses to start")


plugin = Plugin()
