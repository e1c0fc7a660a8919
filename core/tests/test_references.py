"""Every ``limelight.x`` the contract and the core's docstrings name exists (no stale
reference such as a ``Config.from_env`` that never was)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest


def _references() -> list[tuple[str, str]]:
    """Every ``limelight.x`` the contract and the core's docstrings name in a role or
    in double backticks, with the file naming it."""
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"(?:``|:`~?)(limelight(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
    found = []
    for base in (root / "hookspecs" / "src", root / "core" / "src"):
        for path in sorted(base.rglob("*.py")):
            for name in pattern.findall(path.read_text(encoding="utf-8")):
                found.append((str(path.relative_to(root)), name))
    return found


@pytest.mark.parametrize(("where", "name"), _references())
def test_every_name_the_docstrings_give_exists(where: str, name: str) -> None:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            assert hasattr(target, attribute), f"{where} names {name}, which does not exist"
            target = getattr(target, attribute)
        return
    raise AssertionError(f"{where} names {name}, which does not exist")
