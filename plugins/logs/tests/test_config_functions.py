"""``logging.config`` is wrapped when the application imports it, never imported by a start."""

from __future__ import annotations

from limelight_testsupport.imports import clean_environ, run_fresh


def _run(script: str) -> dict[str, object]:
    """Run *script* in a fresh interpreter that exports nothing; what it reported."""
    environ = clean_environ(
        OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none"
    )
    return run_fresh(script, env=environ)


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
        report(**{"imported": imported_by_start, "wrapped": wrapped, "restored": restored})
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
        report(**{"wrapped": wrapped,
                          "restored": not hasattr(logging.config.dictConfig, "__wrapped__")})
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

        report(**{"wrapped": hasattr(logging.config.dictConfig, "__wrapped__")})
        """
    )
    assert {"wrapped": False} == out
