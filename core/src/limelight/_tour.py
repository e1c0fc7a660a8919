"""``limelight demo`` without the demo distribution: a short tour of the core."""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan

from ._function import instrument
from .testing import Harness

__all__ = ["render_tree", "run_tour"]


def render_tree(spans: Sequence[ReadableSpan]) -> list[str]:
    """Spans of one trace as an indented tree with kind, duration and status."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context is not None}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: s.start_time or 0):
            duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
            status = span.status.status_code.name
            lines.append(
                f"{'  ' * depth}{'└─ ' if depth else ''}{span.name}  "
                f"[{span.kind.name}] {duration_ms:.2f} ms {status}"
            )
            if span.context is not None:
                walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


@instrument(name="tour.load_order")
def _load_order(order_id: int) -> dict[str, int]:
    time.sleep(0.002)
    return {"id": order_id, "items": 3}


@instrument(name="tour.charge")
def _charge(order: dict[str, int]) -> None:
    time.sleep(0.001)
    if order["id"] % 4 == 0:
        raise RuntimeError("card declined")


@instrument(name="tour.checkout")
def _checkout(order_id: int) -> str:
    order = _load_order(order_id)
    try:
        _charge(order)
    except RuntimeError:
        return "declined"
    return "paid"


def run_tour() -> int:
    """Run a few instrumented calls and print their trace and metrics."""
    print("limelight tour: the core on its own (install the demo for the full service)\n")
    with Harness(service_name="limelight-tour") as harness:
        results = [_checkout(i) for i in range(1, 9)]
        print(
            f"ran tour.checkout 8 times: {results.count('paid')} paid, "
            f"{results.count('declined')} declined\n"
        )
        root = harness.find_spans("tour.checkout")[-1]
        assert root.context is not None
        print("one trace (the last call):")
        for line in render_tree(harness.trace(root.context.trace_id)):
            print("  " + line)
        print("\nmetrics:")
        for family in harness.snapshot():
            for point in family.points:
                labels = ",".join(f'{k}="{v}"' for k, v in point.labels.items())
                value = getattr(point, "value", None)
                if value is None:
                    value = f"count={point.count} sum={point.sum:.4f}s"  # type: ignore[union-attr]
                print(f"  {family.name}{{{labels}}} {value}")
    return 0
