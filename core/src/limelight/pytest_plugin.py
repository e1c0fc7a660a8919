"""The limelight pytest plugin (entry point ``pytest11``): the ``telemetry`` fixture.

Configure a test with the ``limelight`` marker; its keyword arguments go to
:class:`limelight.testing.Harness`::

    @pytest.mark.limelight(plugins=[my_plugin], env={"LIMELIGHT_METRICS_NAMESPACE": "shop"})
    def test_something(telemetry):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import Harness

__all__ = ["telemetry"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "limelight(plugins=(), env=None, entry_points=False, **config): configure the "
        "limelight telemetry fixture for this test",
    )


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """A started, isolated telemetry capturing spans in memory; stopped after the test."""
    marker = request.node.get_closest_marker("limelight")
    kwargs = dict(marker.kwargs) if marker is not None else {}
    with Harness(**kwargs) as harness:
        yield harness
