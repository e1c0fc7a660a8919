"""What a start with every distribution installed loads for log records: the logs SDK
only when some exporter takes them (``OTEL_LOGS_EXPORTER``)."""

from __future__ import annotations

from typing import Any

import pytest
from limelight_testsupport.imports import clean_environ, run_fresh

SCRIPT = """
import json, logging, sys
import limelight

telemetry = limelight.start(service_name="imports")
logging.getLogger("imports").warning("a line")
loaded = "opentelemetry.sdk._logs" in sys.modules
report(**{"loaded": loaded, "emitter": telemetry.log_emitter is not None})
limelight.stop(timeout=2)
"""


def _start(logs_exporter: str) -> Any:
    environ = clean_environ(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER=logs_exporter,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",  # nothing listens
        OTEL_METRIC_EXPORT_INTERVAL="600000",
    )
    return run_fresh(SCRIPT, env=environ, timeout=60)


@pytest.mark.parametrize(
    ("logs_exporter", "loaded"),
    [("none", False), ("otlp", True)],
    ids=["not-exported", "exported"],
)
def test_the_logs_sdk_is_loaded_only_for_an_exporter(logs_exporter: str, loaded: bool) -> None:
    # limelight-logs and limelight-otlp are both installed here: a line is still
    # counted and stamped either way, but only exported records need the logs SDK
    assert {"loaded": loaded, "emitter": loaded} == _start(logs_exporter)
