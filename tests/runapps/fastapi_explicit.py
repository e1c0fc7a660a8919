"""The FastAPI service of ``fastapi_app`` set up in code, as the documentation describes.

What ``limelight run`` is compared with: telemetry started in each worker (this
module is what uvicorn imports there) and the application instrumented
explicitly; in multiprocess mode every worker writes to the shared directory,
whose aggregate any reader of it (a mounted ``make_asgi_app()``, the test) sees.
"""

from __future__ import annotations

from fastapi_app import app  # type: ignore[import-not-found]  # run from runapps/
from limelight_http import instrument_fastapi

import limelight

limelight.start()
instrument_fastapi(app)

__all__ = ["app"]
