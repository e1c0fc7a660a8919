"""`limelight demo` with every shipped plugin installed: the report, and no noise on stderr."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from limelight_testsupport import console_script

ROOT = Path(__file__).resolve().parents[1]


def _shipped_plugins() -> list[str]:
    names = []
    for pyproject in [ROOT / "core" / "pyproject.toml", *ROOT.glob("plugins/*/pyproject.toml")]:
        with pyproject.open("rb") as f:
            project = tomllib.load(f)["project"]
        names += list(project.get("entry-points", {}).get("limelight.plugins", {}))
    return names


class TestDemoWithEveryPlugin:
    """The exporters the demo does not use (console, and otlp without an endpoint) stay quiet."""

    def test_once(self) -> None:
        shipped = _shipped_plugins()
        assert {"console", "otlp"} <= set(shipped)
        proc = subprocess.run(
            [console_script("limelight"), "demo", "--once"],
            # the shipped plugins only: the core's test suite installs failing ones on purpose
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": "/tmp",
                "LANG": "C.UTF-8",
                "LIMELIGHT_PLUGINS": ",".join(shipped),
            },
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )
        assert 0 == proc.returncode, proc.stderr
        assert "" == proc.stderr
        assert "One request's trace" in proc.stdout
        assert "stopped; telemetry flushed" in proc.stdout
