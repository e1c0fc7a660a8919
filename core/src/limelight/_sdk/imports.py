"""The guarded import of ``opentelemetry.propagate`` (see :mod:`limelight._envguard`)."""

from __future__ import annotations

from limelight import _envguard  # noqa: F401  (before the import below)

from opentelemetry import propagate  # isort: skip

__all__ = ["propagate"]
