"""A service whose module cannot be imported (a dependency is missing)."""

from __future__ import annotations

import a_dependency_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401

app = None
