"""Sphinx configuration for the limelight documentation (built by ``nox -s docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "limelight"
author = "limelight maintainers"
copyright = "2026, limelight maintainers"

extensions = ["myst_parser", "limelight_docs"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "limelight"
