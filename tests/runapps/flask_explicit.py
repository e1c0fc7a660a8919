"""The Flask service of ``flask_app`` set up in code, as the documentation describes.

What ``limelight run`` is compared with: telemetry started in each gunicorn
worker (this module is what gunicorn imports there, after the fork) and the
application instrumented explicitly; ``gunicorn_explicit.py`` serves the
aggregate of every worker from the master.
"""

from __future__ import annotations

from flask_app import app  # type: ignore[import-not-found]  # run from runapps/
from limelight_http import instrument_flask

import limelight

limelight.start()
instrument_flask(app)

__all__ = ["app"]
