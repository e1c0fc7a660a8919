"""``logging.config`` is wrapped when the application imports it, never imported by a start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


def _run(script: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LIMELIGHT_"))}
    environ.update({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"})
    environ["OTEL_LOGS_EXPORTER"] = "none"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        check=False,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )
    assert 0 == done.returncode, done.stderr
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_a_start_does_not_import_logging_config_and_its_import_is_wrapped() -> None:
    out = _run(
        """
        import json, logging, sys
        import limelight
        import limelight_logs

        limelight.start(service_name="probe")
        imported_by_start = "logging.config" in sys.modules
        import logging.config

        wrapped = [
            hasattr(logging.config.dictConfig, "__wrapped__"),
            hasattr(logging.config.fileConfig, "__wrapped__"),
            hasattr(logging.basicConfig, "__wrapped__"),
        ]
        limelight_logs.uninstrument()
        restored = [
            hasattr(logging.config.dictConfig, "__wrapped__"),
            hasattr(logging.config.fileConfig, "__wrapped__"),
            hasattr(logging.basicConfig, "__wrapped__"),
        ]
        print(json.dumps({"imported": imported_by_start, "wrapped": wrapped, "restored": restored}))
        """
    )
    assert {
        "imported": False,
        "wrapped": [True, True, True],
        "restored": [False, False, False],
    } == out


def test_logging_config_imported_before_the_start_is_wrapped_at_once() -> None:
    out = _run(
        """
        import json, logging.config
        import limelight
        import limelight_logs

        limelight.start(service_name="probe")
        wrapped = hasattr(logging.config.dictConfig, "__wrapped__")
        limelight_logs.uninstrument()
        print(json.dumps({"wrapped": wrapped,
                          "restored": not hasattr(logging.config.dictConfig, "__wrapped__")}))
        """
    )
    assert {"wrapped": True, "restored": True} == out


def test_uninstrumented_before_the_import_leaves_logging_config_alone() -> None:
    out = _run(
        """
        import json, sys
        import limelight
        import limelight_logs

        limelight.start(service_name="probe")
        limelight_logs.uninstrument()
        import logging.config

        print(json.dumps({"wrapped": hasattr(logging.config.dictConfig, "__wrapped__")}))
        """
    )
    assert {"wrapped": False} == out
