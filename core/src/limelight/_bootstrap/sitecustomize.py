"""limelight's ``sitecustomize``: telemetry started before the application's code runs.

``limelight run`` puts this file's directory first on the child's
``PYTHONPATH`` (and ``LIMELIGHT_AUTOSTART=true`` first on ``sys.path``), so
Python imports it when the interpreter starts. It first imports the
``sitecustomize`` the environment would have imported without limelight, if
any (a failure of that one is raised again afterwards, so Python reports it as
it always does), then starts telemetry (``limelight._autostart``), and takes
its directory off ``sys.path`` so the application does not see it. Nothing
here raises: without a usable limelight the application runs untraced.
"""

import importlib
import os
import sys


def _chain(here: str) -> BaseException | None:
    """Import the environment's own ``sitecustomize``; return what it raised."""
    me = sys.modules.pop("sitecustomize", None)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        importlib.import_module("sitecustomize")  # the next one on the path, if any
    except ImportError as exc:
        if exc.name != "sitecustomize":
            return exc
    except Exception as exc:
        return exc
    finally:
        if "sitecustomize" not in sys.modules and me is not None:
            sys.modules["sitecustomize"] = me
    return None


def _main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    failure = _chain(here)
    try:
        from limelight._autostart import autostart
    except Exception as exc:  # limelight itself cannot be imported: say so, run untraced
        sys.stderr.write(
            f"limelight could not start telemetry; the application runs without it "
            f"({type(exc).__name__}: {exc})\n"
        )
    else:
        autostart("sitecustomize")
    if failure is not None:
        raise failure


_main()
