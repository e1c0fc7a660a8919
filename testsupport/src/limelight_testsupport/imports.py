"""Run code in a fresh interpreter, where some installed packages may look uninstalled.

The instrument contract promises that a surface never imports a library that
is not installed, and imports an installed one only when asked to instrument
it. Both are only observable in a fresh process (the test process has
imported everything already)::

    from limelight_testsupport.imports import run_hiding

    result = run_hiding(["flask"], '''
    import limelight_http
    before = loaded("flask", "django")
    done = limelight_http.instrument()
    report(before=before, done=done, after=loaded("flask", "django"))
    ''')
    assert [] == result["before"]

In the child, finding a hidden package fails as it does for one that is not
there (``importlib.util.find_spec`` and ``import`` raise
``ModuleNotFoundError``). ``loaded(*names)`` lists which of the top-level
packages *names* (or any of their submodules) are in ``sys.modules``;
``report(**values)`` hands JSON-serialisable values back.

What a start imports or reads is observable the same way, with nothing hidden
and the configuration of the child's own choosing: ``run_fresh(code,
env=clean_environ(OTEL_TRACES_EXPORTER="none"))``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["clean_environ", "run_fresh", "run_hiding"]

_CONFIGURATION = ("OTEL_", "LIMELIGHT_", "PROMETHEUS_")

_MARK = "limelight-testsupport-report:"

_PRELUDE = """
import json as _json
import sys as _sys


class _Hidden:
    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if HIDDEN:  # nothing hidden: the import system exactly as without the prelude
    _sys.meta_path.insert(0, _Hidden(HIDDEN))


def loaded(*names):
    return sorted(
        n for n in names if any(m == n or m.startswith(n + ".") for m in list(_sys.modules))
    )


def report(**values):
    print(MARK + _json.dumps(values, default=list))
"""


def clean_environ(**overrides: str) -> dict[str, str]:
    """This process's environment without OpenTelemetry's, limelight's and
    prometheus_client's configuration (``OTEL_*``, ``LIMELIGHT_*``, ``PROMETHEUS_*``),
    with *overrides* set: what a child that must configure itself starts from."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIGURATION)}
    environ.update(overrides)
    return environ


def run_hiding(
    hidden: Iterable[str],
    code: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Run *code* in a new interpreter (this one's executable and path) with the
    top-level packages *hidden* looking uninstalled; return what it ``report``-ed.

    :param env: the child's environment (this process's when not given).
    :raises AssertionError: the child failed (its output is in the message) or
        reported nothing.
    """
    names = sorted(set(hidden))
    prelude = f"HIDDEN = {names!r}\nMARK = {_MARK!r}\n" + _PRELUDE
    script = prelude + "\n" + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else dict(env),
    )
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert 0 == done.returncode, f"the child interpreter failed\n{output}"
    reports = [line[len(_MARK) :] for line in done.stdout.splitlines() if line.startswith(_MARK)]
    assert reports, f"the child interpreter reported nothing\n{output}"
    result: dict[str, Any] = json.loads(reports[-1])
    return result


def run_fresh(
    code: str, *, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> dict[str, Any]:
    """Run *code* in a new interpreter with nothing hidden; return what it ``report``-ed."""
    return run_hiding((), code, env=env, timeout=timeout)
