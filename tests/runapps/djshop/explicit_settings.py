"""The project's settings with limelight set up in code, as the documentation describes:
the middleware first in ``MIDDLEWARE`` and telemetry started with the settings."""

from __future__ import annotations

import limelight

from .settings import *  # noqa: F403
from .settings import MIDDLEWARE as _MIDDLEWARE

MIDDLEWARE = ["limelight_http.DjangoMiddleware", *_MIDDLEWARE]

limelight.start()
