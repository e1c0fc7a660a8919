"""limelight-demo: a small shop service instrumented with limelight, shown in the terminal.

``limelight demo`` (or :func:`main`) starts the service on a loopback port,
sends it a burst of traffic, prints one request's trace as a waterfall with its log lines and
the metrics each surface recorded, then keeps serving ``/metrics`` until Ctrl-C.
The service itself, :func:`build_app`, is the example to read: see ``_shop.py``.
"""

from __future__ import annotations

from ._report import SURFACES, format_duration, log_lines, metrics_table, span_detail, waterfall
from ._run import (
    OTLP_ENDPOINT_VARIABLES,
    TRAFFIC,
    LogKeeper,
    Sent,
    Service,
    demo_environment,
    main,
    receipt_environment,
    send,
)
from ._shop import PAID_QUEUE, RECEIPT_ENVIRONMENT, PaymentError, Shop, build_app
from ._traces import TraceKeeper

__all__ = [
    "OTLP_ENDPOINT_VARIABLES",
    "PAID_QUEUE",
    "RECEIPT_ENVIRONMENT",
    "SURFACES",
    "TRAFFIC",
    "LogKeeper",
    "PaymentError",
    "Sent",
    "Service",
    "Shop",
    "TraceKeeper",
    "build_app",
    "demo_environment",
    "format_duration",
    "log_lines",
    "main",
    "metrics_table",
    "receipt_environment",
    "send",
    "span_detail",
    "waterfall",
]
