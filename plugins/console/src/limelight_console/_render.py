"""Rendering spans as trees and the metric store as a short summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from limelight_hookspecs import HistogramPoint, MetricKind, MetricsSnapshot

__all__ = ["format_duration", "render_metrics", "render_trace"]

_MAX_VALUE = 60
_MAX_ATTRIBUTES = 160


def format_duration(seconds: float) -> str:
    """``812 µs``, ``12.40 ms``, ``3.21 s``: three significant figures or so."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _attributes(span: ReadableSpan) -> str:
    parts = []
    for key, value in (span.attributes or {}).items():
        text = str(value)
        if len(text) > _MAX_VALUE:
            text = text[: _MAX_VALUE - 1] + "…"
        parts.append(f"{key}={text}")
    line = " ".join(parts)
    if len(line) > _MAX_ATTRIBUTES:
        line = line[: _MAX_ATTRIBUTES - 1] + "…"
    return line


def _label(span: ReadableSpan, attributes: bool) -> str:
    text = span.name
    if span.kind is not SpanKind.INTERNAL:
        text += f" [{span.kind.name.lower()}]"
    status = span.status
    if status.status_code is StatusCode.ERROR:
        text += "  ERROR" + (f" {status.description}" if status.description else "")
    if attributes:
        attrs = _attributes(span)
        if attrs:
            text += "  " + attrs
    return text


def _duration(span: ReadableSpan) -> float:
    if span.start_time is None or span.end_time is None:
        return 0.0
    return (span.end_time - span.start_time) / 1e9


def render_trace(spans: Sequence[ReadableSpan], attributes: bool = True) -> list[str]:
    """The spans of one trace as an indented tree, one line per span.

    Each line starts with the span's duration (right-aligned, so the column
    reads at a glance), then the tree drawing, the name, its kind unless
    internal, ``ERROR`` and the status description when it failed, and its
    attributes. Children are in start order; a span whose parent is not among
    *spans* is shown as a root. The first line names the trace.

    :param spans: finished spans of one trace.
    :param attributes: show span attributes.
    """
    if not spans:
        return []
    ids = {s.context.span_id for s in spans if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: s.start_time or 0)
    rows: list[tuple[str, str]] = []

    def walk(span: ReadableSpan, prefix: str, branch: str) -> None:
        rows.append((format_duration(_duration(span)), prefix + branch + _label(span, attributes)))
        kids = children.get(span.context.span_id, []) if span.context is not None else []
        below = prefix + ("" if not branch else ("   " if branch == "└─ " else "│  "))
        for i, kid in enumerate(kids):
            walk(kid, below, "└─ " if i == len(kids) - 1 else "├─ ")

    for root in children.get(None, []):
        walk(root, "", "")
    first = spans[0].context
    header = f"trace {first.trace_id:032x}" if first is not None else "trace"
    width = max(len(d) for d, _ in rows)
    return [header, *(f"  {d:>{width}}  {text}" for d, text in rows)]


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def _quantile_bound(point: HistogramPoint, q: float) -> float:
    """The upper bound of the bucket holding quantile *q* (``inf`` past the last bound)."""
    rank = q * point.count
    for bound, cumulative in zip(
        (*point.bounds, float("inf")), point.cumulative_counts(), strict=True
    ):
        if cumulative >= rank:
            return bound
    return float("inf")


def _value(value: float, unit: str) -> str:
    if value == float("inf"):
        return "+Inf"
    if unit == "s":
        return format_duration(value)
    return f"{value:g}"


def render_metrics(snapshot: MetricsSnapshot) -> list[str]:
    """Every series worth a look: counters above 0, histograms with observations, every gauge.

    Histograms show the count, the mean and the bucket bounds holding the
    median and the 99th percentile (``p50 ≤ 5.00 ms``): the store keeps
    buckets, not samples, so a bound is what can honestly be said.
    """
    lines: list[str] = []
    for family in snapshot:
        unit = family.declaration.unit
        for point in family.points:
            name = family.name + _labels(point.labels)
            if isinstance(point, HistogramPoint):
                if point.count == 0:
                    continue
                p50 = _quantile_bound(point, 0.5)
                p99 = _quantile_bound(point, 0.99)
                mean = point.sum / point.count
                text = (
                    f"count={point.count} mean={_value(mean, unit)} "
                    f"p50≤{_value(p50, unit)} p99≤{_value(p99, unit)}"
                )
            else:
                if family.kind is MetricKind.COUNTER and point.value == 0:
                    continue
                text = f"{point.value:g}"
            lines.append(f"  {name}  {text}")
    return ["metrics", *lines] if lines else ["metrics: nothing recorded"]
