"""The configuration reference and the metric catalog, generated from declarations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from limelight_hookspecs import EnvVar, MetricDeclaration

from ._autostart import RUN_VARIABLES
from ._config import load_config
from ._env import CORE_VARIABLES
from ._plugins import discover
from ._store import SELF_METRICS

__all__ = [
    "config_reference_markdown",
    "declared_metrics",
    "declared_variables",
    "metric_catalog_markdown",
]


def declared_variables() -> list[tuple[str, EnvVar[Any]]]:
    """``(owner, variable)`` for the core and every installed plugin."""
    manager = discover(load_config(environ={}))
    core = [("limelight (core)", v) for v in CORE_VARIABLES]
    return core + [("limelight run", v) for v in RUN_VARIABLES] + manager.config_declare()


def declared_metrics() -> list[tuple[str, MetricDeclaration]]:
    """``(declarer, declaration)`` for limelight's own metrics and every installed plugin's."""
    config = load_config(environ={})
    manager = discover(config)
    return [("limelight", d) for d in SELF_METRICS] + manager.metrics_declare(config)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_reference_markdown() -> str:
    """Every environment variable, grouped by owner, as a Markdown page."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the `EnvVar` declarations of the core and of every installed",
        "plugin (`limelight config` shows the effective values and their sources).",
        "An invalid value never stops the service: it is reported once, naming the",
        "variable, the value and the fallback, and the fallback is used.",
        "",
    ]
    owner = None
    for who, var in declared_variables():
        if who != owner:
            owner = who
            lines += [
                f"## {who}",
                "",
                "| variable | default | accepts | meaning | example |",
                "|---|---|---|---|---|",
            ]
        accepts = var.describe_range()
        lines.append(
            f"| `{var.name}` | `{_cell(var.describe_default())}` | "
            f"{_cell(accepts) if accepts else '—'} | {_cell(var.doc)} | `{_cell(var.example)}` |"
        )
    return "\n".join(_close_tables(lines)) + "\n"


def _close_tables(lines: Iterable[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line.startswith("## ") and out and out[-1] != "":
            out.append("")
        out.append(line)
    return out


def _labels(decl: MetricDeclaration, none: str = "—") -> str:
    return ", ".join(decl.label_names) or none


def metric_catalog_markdown() -> str:
    """Every metric installed plugins declare, as a Markdown page."""
    lines = [
        "# Metric catalog",
        "",
        "Generated from the metrics the installed plugins declare "
        "(`limelight catalog` prints the same).",
        "Names are Prometheus names in base units; `LIMELIGHT_METRICS_NAMESPACE` adds a",
        "prefix. Over OTLP the same names are used, counters as monotonic sums,",
        "`gauge_add` as non-monotonic sums, `gauge_set` as gauges, histograms with the",
        "same bucket bounds.",
        "",
        "| metric | kind | unit | labels | declared by | help |",
        "|---|---|---|---|---|---|",
    ]
    for who, decl in declared_metrics():
        lines.append(
            f"| `{decl.name}` | {decl.kind.value} | {decl.unit or '—'} | {_labels(decl)} | "
            f"{who} | {_cell(decl.help)} |"
        )
    return "\n".join(lines) + "\n"


def text_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Rows as left-aligned columns under *header* and a rule (the CLI's tables)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[object]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def catalog_text() -> str:
    """The metric catalog as a plain-text table (``limelight catalog``)."""
    rows = [
        (d.name, d.kind.value, d.unit or "-", _labels(d, "-"), who) for who, d in declared_metrics()
    ]
    return text_table(rows, ("metric", "kind", "unit", "labels", "declared by"))
