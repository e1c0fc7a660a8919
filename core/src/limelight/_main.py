"""The ``limelight`` console script: ``limelight run`` dispatched before anything heavy.

``limelight run -- <command>`` replaces itself with the command at once, so
the wrapper's own start-up is what the command waits for: it imports only
:mod:`limelight._run` (the standard library), never the runtime, the plugins
or the OpenTelemetry SDK that the other commands load (:mod:`limelight._cli`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``limelight`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["run"]:
        from ._run import main as run_main

        return run_main(arguments[1:])
    from ._cli import main as cli_main

    return cli_main(arguments)
