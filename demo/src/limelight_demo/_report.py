"""What the demo prints: a trace as a waterfall, its log lines, and the metrics of each surface."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from limelight.metrics import MetricKind, MetricStore
from limelight_hookspecs import HistogramPoint, MetricFamily, NumberPoint

__all__ = [
    "SURFACES",
    "format_duration",
    "log_lines",
    "metrics_table",
    "span_detail",
    "waterfall",
]

SURFACES: Mapping[str, str] = {
    "http": "HTTP server",
    "httpclient": "HTTP client",
    "limelight.function_metrics": "functions",
    "kv": "KV store",
    "sql": "SQL",
    "queue": "queue",
    "process": "processes",
    "eventbus": "event bus",
    "logs": "logs",
}
"""Declaring plugin -> the surface it records, in the order the table shows them."""

_BAR_WIDTH = 24
_IN_PROCESS_BUSES = frozenset({"blinker", "pyee"})  # limelight-eventbus's messaging.system
_STATUS = {StatusCode.UNSET: "-", StatusCode.OK: "OK", StatusCode.ERROR: "ERROR"}
_COLOURS = {
    SpanKind.SERVER: "cyan",
    SpanKind.CLIENT: "magenta",
    SpanKind.PRODUCER: "yellow",
    SpanKind.CONSUMER: "blue",
}


def format_duration(seconds: float) -> str:
    """A duration for humans: µs below a millisecond, ms below a second."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _children(spans: Sequence[ReadableSpan]) -> dict[int | None, list[ReadableSpan]]:
    ids = {s.context.span_id for s in spans if s.context is not None}
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(span)
    for siblings in by_parent.values():
        siblings.sort(key=lambda s: s.start_time or 0)
    return by_parent


def _walk(
    by_parent: Mapping[int | None, list[ReadableSpan]], parent: int | None, prefix: str
) -> Iterator[tuple[str, ReadableSpan]]:
    siblings = by_parent.get(parent, [])
    for i, span in enumerate(siblings):
        last = i == len(siblings) - 1
        branch = "" if parent is None else ("└─ " if last else "├─ ")
        yield prefix + branch, span
        if span.context is not None:
            deeper = "" if parent is None else ("   " if last else "│  ")
            yield from _walk(by_parent, span.context.span_id, prefix + deeper)


def _service(span: ReadableSpan) -> str:
    return str(span.resource.attributes.get("service.name", ""))


def span_detail(span: ReadableSpan) -> str:
    """The one attribute that says most about a span: status code, URL, statement."""
    attrs = {k: str(v) for k, v in (span.attributes or {}).items()}
    if span.kind is SpanKind.SERVER and "http.response.status_code" in attrs:
        return f"status {attrs['http.response.status_code']}"
    if "url.full" in attrs:
        status = attrs.get("http.response.status_code")
        return attrs["url.full"] + (f" → {status}" if status is not None else "")
    if "db.query.text" in attrs:
        return f"{attrs.get('db.system.name', 'sql')}: {attrs['db.query.text']}"
    if "limelight.kv.namespace" in attrs:
        return f"{attrs.get('db.system.name', 'kv')} store {attrs['limelight.kv.namespace']!r}"
    if "messaging.system" in attrs:
        system = attrs["messaging.system"]
        what = "event" if system in _IN_PROCESS_BUSES else "queue"
        message = attrs.get("messaging.message.id")
        return f"{system} {what} {attrs.get('messaging.destination.name')!r}" + (
            f", message {message}" if message is not None else ""
        )
    if "process.pid" in attrs:
        exit_code = attrs.get("process.exit.code")
        return f"pid {attrs['process.pid']}" + (
            f", exit code {exit_code}" if exit_code is not None else ""
        )
    if span.status.status_code is StatusCode.ERROR and span.status.description:
        return span.status.description
    return ""


def waterfall(spans: Sequence[ReadableSpan], width: int = 120) -> RenderableType:
    """One trace as a table: the span tree, kind, duration, status and a timeline bar.

    A *width* too narrow for the detail column (status code, URL, statement)
    leaves it out and lists the failed spans' errors under the table instead.
    """
    start = min((s.start_time or 0) for s in spans)
    end = max((s.end_time or 0) for s in spans)
    total = max(end - start, 1)
    rows = list(_walk(_children(spans), None, ""))
    name_width = max(len(prefix + span.name) for prefix, span in rows)
    room = width - name_width - 8 - 8 - 6 - 2 * 5  # what the timeline and details may take
    detailed = room >= _BAR_WIDTH + 30
    bar_width = _BAR_WIDTH if detailed else max(8, min(_BAR_WIDTH, room))
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("span", no_wrap=True, min_width=name_width)
    table.add_column("kind", min_width=8, no_wrap=True)
    table.add_column("duration", justify="right", min_width=8, no_wrap=True)
    table.add_column("status", min_width=6, no_wrap=True)
    scale = format_duration(total / 1e9)
    rule = "─" * max(1, bar_width - len(scale) - 3)
    table.add_column(f"0 {rule} {scale}", no_wrap=True, min_width=bar_width)
    if detailed:
        table.add_column("detail", no_wrap=True, overflow="ellipsis")
    errors: list[Text] = []
    for prefix, span in rows:
        s, e = (span.start_time or start), (span.end_time or end)
        offset = min(round((s - start) / total * bar_width), bar_width - 1)
        length = min(max(1, round((e - s) / total * bar_width)), bar_width - offset)
        failed = span.status.status_code is StatusCode.ERROR
        colour = "red" if failed else _COLOURS.get(span.kind, "green")
        cells: list[RenderableType] = [
            Text(prefix, style="dim") + Text(span.name, style="" if prefix else "bold"),
            span.kind.name,
            format_duration((e - s) / 1e9),
            Text("ERROR", style="bold red") if failed else Text(_STATUS[span.status.status_code]),
            Text(" " * offset) + Text("█" * length, style=colour),
        ]
        if detailed:
            detail = span_detail(span)
            service = _service(span)
            if not detail and service != _service(rows[0][1]):
                detail = f"in {service}"  # a span another process exported
            cells.append(Text(detail, style="red" if failed else "dim"))
        elif failed and span.status.description:
            errors.append(Text(f"{span.name}: {span.status.description}", style="red"))
        table.add_row(*cells)
    return Group(table, *errors) if errors else table


def log_lines(records: Iterable[logging.LogRecord], spans: Sequence[ReadableSpan]) -> Text:
    """Log records as a format naming ``%(trace_id)s`` and ``%(span_id)s`` prints them,
    each followed by the name of the span of *spans* whose id it carries.

    The ids are those limelight-logs stamped on each record where it was made.
    """
    names = {f"{s.context.span_id:016x}": s.name for s in spans if s.context is not None}
    text = Text()
    for record in records:
        trace_id, span_id = getattr(record, "trace_id", ""), getattr(record, "span_id", "")
        level = record.levelname
        style = "red" if record.levelno >= logging.ERROR else ""
        text.append(f"{level:<7} {record.name}: {record.getMessage()}", style=style)
        text.append(f" trace_id={trace_id} span_id={span_id}")
        span = names.get(span_id)
        text.append(f"  ← {span}" if span is not None else "  ← no span of this trace", "dim")
        text.append("\n")
    text.rstrip()
    return text


def _selector(name: str, labels: Mapping[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}" if inner else name


def _histogram_for(family: MetricFamily, families: Sequence[MetricFamily]) -> MetricFamily | None:
    """The histogram declared with the same labels next to a counter (its duration)."""
    for other in families:
        if (
            other.kind is MetricKind.HISTOGRAM
            and other.declaration.label_names == family.declaration.label_names
        ):
            return other
    return None


def _rows(families: Sequence[MetricFamily]) -> Iterator[tuple[str, str, str]]:
    """(series, value, mean duration) of the counters above zero and of the gauges."""
    for family in families:
        if family.kind is MetricKind.HISTOGRAM:
            continue
        histogram = _histogram_for(family, families)
        durations = {
            tuple(p.labels.items()): p
            for p in (histogram.points if histogram is not None else ())
            if isinstance(p, HistogramPoint)
        }
        for point in sorted(family.points, key=lambda p: tuple(p.labels.values())):
            if not isinstance(point, NumberPoint):
                continue
            if family.kind is MetricKind.COUNTER and point.value == 0:
                continue
            hist = durations.get(tuple(point.labels.items()))
            mean = format_duration(hist.sum / hist.count) if hist and hist.count else ""
            yield _selector(family.name, point.labels), f"{point.value:g}", mean


def metrics_table(store: MetricStore, width: int = 140) -> Table:
    """The series each surface recorded: counters above zero with the mean duration
    of the matching histogram series, and every in-flight gauge.

    When a surface column does not fit in *width*, each surface heads its rows instead.
    """
    declarers = {metric.name: metric.declarer for metric in store.metrics()}
    by_declarer: dict[str, list[MetricFamily]] = {}
    for family in store.snapshot():
        declarer = declarers.get(family.name, "")
        if declarer in SURFACES:
            by_declarer.setdefault(declarer, []).append(family)
    groups = [(surface, list(_rows(by_declarer.get(d, [])))) for d, surface in SURFACES.items()]
    groups = [(surface, rows) for surface, rows in groups if rows]
    series_width = max((len(row[0]) for _, rows in groups for row in rows), default=0)
    surface_width = max((len(surface) for surface, _ in groups), default=0)
    wide = surface_width + series_width + 5 + 13 + 2 * 3 <= width
    table = Table(box=None, pad_edge=False, header_style="bold")
    if wide:
        table.add_column("surface", style="bold", no_wrap=True)
    table.add_column("series (as Prometheus and OTLP see it)", overflow="fold")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("mean duration", justify="right", no_wrap=True)
    for surface, rows in groups:
        if not wide:
            table.add_row(Text(surface, style="bold"), "", "")
        for i, (series, value, mean) in enumerate(rows):
            if wide:
                table.add_row(surface if i == 0 else "", series, value, mean)
            else:
                table.add_row("  " + series, value, mean)
    return table
