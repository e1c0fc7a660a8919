"""The OpenTelemetry resource shared by every signal."""

from __future__ import annotations

import os
import uuid
from importlib.metadata import PackageNotFoundError

from opentelemetry.sdk.resources import (
    OsResourceDetector,
    ProcessResourceDetector,
    Resource,
    ResourceDetector,
)

from limelight_hookspecs import Config

from ._log import get_logger
from ._metadata import version
from ._sdk.resources import host_detector
from ._state import STATE

__all__ = ["build_resource", "process_resource"]

_log = get_logger("limelight")


def _instance_id() -> str:
    """One ``service.instance.id`` per process (a forked worker gets its own)."""
    pid = os.getpid()
    instance = STATE.instance_id
    if instance is None or instance[0] != pid:
        instance = STATE.instance_id = (pid, str(uuid.uuid4()))
    return instance[1]


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def build_resource(config: Config) -> Resource:
    """service.*, host.*, process.*, os.* and telemetry.sdk.* attributes.

    Precedence, lowest first: detected attributes, ``OTEL_RESOURCE_ATTRIBUTES``,
    then ``service.name`` (``OTEL_SERVICE_NAME`` or the argument) and
    ``service.version``.
    """
    resource = Resource(
        {
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": _version("opentelemetry-sdk"),
            "telemetry.distro.name": "limelight",
            "telemetry.distro.version": _version("limelight"),
            "service.instance.id": _instance_id(),
        }
    )
    detectors: tuple[ResourceDetector, ...] = (
        ProcessResourceDetector(),
        OsResourceDetector(),
        host_detector(),
    )
    for detector in detectors:
        try:
            resource = resource.merge(detector.detect())
        except Exception as exc:  # a detector must never stop the service
            _log.warning(
                "resource detector failed", detector=type(detector).__name__, error=repr(exc)
            )
    resource = resource.merge(Resource(dict(config.resource_attributes)))
    service: dict[str, str] = {"service.name": config.service_name}
    if config.service_version:
        service["service.version"] = config.service_version
    return resource.merge(Resource(service))


def process_resource(resource: Resource) -> Resource:
    """*resource* with this process's identity: ``process.pid``,
    ``process.parent_pid`` and a ``service.instance.id`` of its own (for a process
    forked from the one *resource* was built in)."""
    return resource.merge(
        Resource(
            {
                "process.pid": os.getpid(),
                "process.parent_pid": os.getppid(),
                "service.instance.id": _instance_id(),
            }
        )
    )
