"""The receipt printer: a program of its own, which the shop spawns for every paid order.

``python -m limelight_demo.receipt '<order as JSON>'`` prints the receipt. It
starts telemetry like any other limelight program (``# limelight:`` lines):
``limelight.start()`` reads the trace context the spawning process left in
its environment (``TRACEPARENT``, put there by limelight-process), so the
printer's spans continue the shop's trace under the CLIENT span of the spawn;
``limelight.stop()`` exports them before the program exits.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import limelight

__all__ = ["main", "render"]


@limelight.instrument(name="receipt.render")  # limelight: a span in the shop's trace
def render(order: dict[str, Any]) -> str:
    """The receipt of a paid order, as printed."""
    lines = [
        f"Receipt for order {order['id']}",
        f"  {order['quantity']} x {order['sku']}",
        f"  total {order['total_cents'] / 100:.2f}",
        f"  payment {order['payment']}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the receipt of the order given as JSON; the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m limelight_demo.receipt '<order as JSON>'", file=sys.stderr)
        return 2
    order = json.loads(args[0])
    limelight.start(service_name="limelight-demo-receipts")  # limelight: joins the trace
    try:
        sys.stdout.write(render(order))
    finally:
        limelight.stop()  # limelight: export the spans before exiting
    return 0


if __name__ == "__main__":
    sys.exit(main())
