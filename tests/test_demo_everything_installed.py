"""`limelight demo` with every distribution installed: the report, and no noise on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import limelight


class TestDemoWithEveryPlugin:
    """The exporters the demo does not use (console, and otlp without an endpoint) stay quiet."""

    def test_once(self) -> None:
        assert {"console", "otlp"} <= {
            i.name for i in limelight.discover(limelight.load_config(environ={})).infos()
        }
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "limelight"), "demo", "--once"],
            env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"},
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
