"""Where the zero-code start lives, for the wrapper and the started process alike
(the standard library only: ``limelight run`` imports nothing else)."""

from __future__ import annotations

import os

__all__ = ["RUN_TEMP_DIR", "bootstrap_dir"]

RUN_TEMP_DIR = "LIMELIGHT_RUN_TEMP_DIR"
"""Set by ``limelight run`` to the multiprocess directory it made, for the command's
first process to remove at exit."""


def bootstrap_dir() -> str:
    """The directory holding limelight's ``sitecustomize``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bootstrap")
