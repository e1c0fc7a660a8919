"""The metric catalog of docs/DESIGN (every surface), as declarations."""

from __future__ import annotations

from limelight_hookspecs import Config, MetricDeclaration, MetricKind, hookimpl

C, H, GA, GS = (
    MetricKind.COUNTER,
    MetricKind.HISTOGRAM,
    MetricKind.GAUGE_ADD,
    MetricKind.GAUGE_SET,
)

_ROWS: tuple[tuple[str, MetricKind, str, tuple[str, ...]], ...] = (
    ("http_requests_total", C, "1", ("method", "route", "status_code")),
    ("http_request_duration_seconds", H, "s", ("method", "route", "status_code")),
    ("http_requests_in_flight", GA, "1", ("method",)),
    ("http_client_requests_total", C, "1", ("method", "host", "status_code")),
    ("http_client_request_duration_seconds", H, "s", ("method", "host", "status_code")),
    ("http_client_requests_in_flight", GA, "1", ("host",)),
    ("queue_messages_total", C, "1", ("queue", "result")),
    ("queue_process_duration_seconds", H, "s", ("queue", "result")),
    ("queue_in_flight", GA, "1", ("queue",)),
    ("queue_published_total", C, "1", ("queue", "result")),
    ("process_started_total", C, "1", ("kind",)),
    ("process_terminated_total", C, "1", ("kind", "result")),
    ("process_active", GA, "1", ("kind",)),
    ("cdc_changes_total", C, "1", ("slot", "op")),
    ("cdc_retained_wal_bytes", GS, "By", ("slot",)),
    ("cdc_errors_total", C, "1", ("slot",)),
    ("kv_ops_total", C, "1", ("namespace", "op", "result")),
    ("kv_op_duration_seconds", H, "s", ("namespace", "op", "result")),
    ("sql_ops_total", C, "1", ("op", "result")),
    ("sql_op_duration_seconds", H, "s", ("op", "result")),
    ("log_emissions_total", C, "1", ("level",)),
    ("eventbus_subscribers_active", GA, "1", ("topic",)),
    ("eventbus_rejected_total", C, "1", ("topic",)),
)

CATALOG: tuple[MetricDeclaration, ...] = tuple(
    MetricDeclaration(name, kind, f"Catalog metric {name}.", unit, labels)
    for name, kind, unit, labels in _ROWS
)
"""Every surface metric of the catalog (the core's function and self metrics are
declared by the core itself)."""


class CatalogPlugin:
    """Declares the whole catalog, as the surface plugins together would."""

    limelight_name = "catalog"
    limelight_priority = 500

    @hookimpl
    def limelight_metrics_declare(self, config: Config) -> tuple[MetricDeclaration, ...]:
        return CATALOG
