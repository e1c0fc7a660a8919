from __future__ import annotations

from limelight_prometheus import PrometheusReader

from limelight.testing import Harness


def reader_of(harness: Harness) -> PrometheusReader:
    """The Prometheus reader the plugin contributed to *harness*."""
    for plugin, reader in harness.telemetry.readers:
        if plugin == "prometheus" and isinstance(reader, PrometheusReader):
            return reader
    raise AssertionError(f"no prometheus reader in {harness.telemetry.readers!r}")
