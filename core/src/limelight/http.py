"""HTTP conventions shared by the HTTP server and client surfaces.

``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` is one variable both surfaces
read (one :class:`~limelight_hookspecs.EnvVar` object, so ``limelight config``
lists it once, owned by both); :data:`DEFAULT_KNOWN_METHODS` is the
semantic conventions' list, used when it is unset.
"""

from __future__ import annotations

from ._env import DEFAULT_KNOWN_METHODS, OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS

__all__ = ["DEFAULT_KNOWN_METHODS", "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"]
