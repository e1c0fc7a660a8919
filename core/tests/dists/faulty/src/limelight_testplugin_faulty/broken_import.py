"""Test-only plugin module that cannot be imported."""

raise ImportError("faulty-import is missing a dependency")
