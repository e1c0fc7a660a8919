"""The SDK's host resource detector (assumption ``host-detector``, see :mod:`limelight._sdk`)."""

from __future__ import annotations

import platform
import socket

from opentelemetry.sdk.resources import Resource, ResourceDetector

from . import fallback

__all__ = ["host_detector"]


class _StandardHostDetector(ResourceDetector):
    """``host.name`` and ``host.arch`` from the standard library, as the SDK's detector
    reads them (without ``host.id``, which only the SDK knows how to find)."""

    def detect(self) -> Resource:
        return Resource({"host.name": socket.gethostname(), "host.arch": platform.machine()})


def host_detector() -> ResourceDetector:
    """The SDK's ``_HostResourceDetector``, or the standard-library equivalent."""
    try:
        from opentelemetry.sdk.resources import _HostResourceDetector
    except ImportError as exc:
        fallback("host-detector", "host.name and host.arch from the standard library", exc)
        return _StandardHostDetector()
    return _HostResourceDetector()
