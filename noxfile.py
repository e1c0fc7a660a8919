"""Sessions for the limelight monorepo.

``nox`` runs the default sessions: lint, typecheck, one test session per
distribution (each in its own environment with only the core and that
distribution installed), the same suites at the lowest and at the newest
versions the declared ranges admit (``lowest(<dist>)``, ``newest(<dist>)``), the
cross-distribution suite, the end-to-end run and the documentation build.
``nox -s bench``, ``nox -s demo`` and ``nox -s audit``
run on request.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).parent
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True


@functools.cache
def _project(path: Path) -> dict[str, Any]:
    """The ``[project]`` table of *path*'s ``pyproject.toml``."""
    with (path / "pyproject.toml").open("rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


PLUGINS = sorted(p for p in (ROOT / "plugins").glob("*") if (p / "pyproject.toml").exists())
DEMO = ROOT / "demo"
TESTSUPPORT = ROOT / "testsupport"
DISTRIBUTIONS: dict[str, Path] = {
    "hookspecs": ROOT / "hookspecs",
    "core": ROOT / "core",
    **{p.name: p for p in PLUGINS},
    "demo": DEMO,
}
"""The distributions with a test session of their own."""
LOCAL = [*DISTRIBUTIONS.values(), TESTSUPPORT]
# the packaging session's artefact checker validates classifiers with it
TROVE_CLASSIFIERS = "trove-classifiers>=2024.10.21"
PUBLISHED: dict[str, Path] = {_project(p)["name"]: p for p in DISTRIBUTIONS.values()}
"""The distributions released to the package index, by name: every one above (plugins
found by their directory); limelight-testsupport is not (``Private :: Do Not Upload``)."""
E2E = ROOT / "tests" / "e2e"


def _local_requirements(path: Path) -> list[Path]:
    """The local distributions *path* depends on, directly or not (for uv to find them)."""
    by_name = {_project(p)["name"]: p for p in LOCAL}
    found: list[Path] = []
    pending = [path]
    while pending:
        for requirement in _project(pending.pop()).get("dependencies", []):
            dep = by_name.get(Requirement(requirement).name)
            if dep is not None and dep not in found:
                found.append(dep)
                pending.append(dep)
    return found


def _fixture_dists(path: Path) -> list[Path]:
    """Test-only distributions a suite installs (``tests/dists/*``)."""
    return sorted(
        p for p in (path / "tests" / "dists").glob("*") if (p / "pyproject.toml").exists()
    )


def _install_local(
    session: nox.Session,
    *paths: Path,
    extras: str = "test",
    fixtures_of: tuple[Path, ...] = (),
    options: tuple[str, ...] = (),
) -> None:
    """Install local distributions with their *extras*, and the test-only distributions
    of the suites of *fixtures_of*; every local one is rebuilt, so no session runs stale code.
    *options* go to the installer (``--resolution=lowest-direct``)."""
    fixtures = [f for d in fixtures_of for f in _fixture_dists(d)]
    specs = [
        f"{p}[{extras}]" if extras in _project(p).get("optional-dependencies", {}) else str(p)
        for p in paths
    ]
    reinstall = [f"--reinstall-package={_project(p)['name']}" for p in (*LOCAL, *fixtures)]
    session.install(*options, *reinstall, *specs, *map(str, fixtures))


def _import_name(path: Path) -> str:
    return next(p.name for p in (path / "src").iterdir() if (p / "__init__.py").exists())


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check over the whole tree."""
    session.install("ruff>=0.8,<1")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every distribution's sources and tests."""
    # tests/check_artefacts.py imports trove_classifiers
    session.install("mypy>=1.13,<3", "nox", TROVE_CLASSIFIERS)
    _install_local(session, *LOCAL, fixtures_of=tuple(LOCAL))
    targets = [str(p / "src") for p in LOCAL]
    # each src/ is a package base: a package met both as a target and as an import (uv
    # installs workspace dependencies editable) then has one module name
    env = {"MYPYPATH": os.pathsep.join(targets)}
    session.run("mypy", *targets, "noxfile.py", env=env)
    # test suites share module names (conftest, test_*), so each is checked on its own
    for tests_dir in [p / "tests" for p in DISTRIBUTIONS.values()] + [ROOT / "tests"]:
        if any(tests_dir.glob("*.py")):
            # the suite's own directory is a base too, as on pytest's path: its helper
            # modules (conftest, shared workloads) are imported by their plain names
            suite_env = {"MYPYPATH": os.pathsep.join([*targets, str(tests_dir)])}
            session.run("mypy", str(tests_dir), env=suite_env)


@nox.session
@nox.parametrize("dist", list(DISTRIBUTIONS), ids=list(DISTRIBUTIONS))
def tests(session: nox.Session, dist: str) -> None:
    """One distribution's tests, with only the core and that distribution installed."""
    path = DISTRIBUTIONS[dist]
    core = [] if dist == "hookspecs" else [ROOT / "core"]
    needed = [ROOT / "hookspecs", TESTSUPPORT, *core, *_local_requirements(path), path]
    _install_local(session, *dict.fromkeys(needed), fixtures_of=(path,))
    # proof the distribution imports on its own
    session.run("python", "-c", f"import {_import_name(path)}")
    session.run("pytest", str(path / "tests"), *session.posargs)


def _suite_needs(dist: str) -> list[Path]:
    """The local distributions the suite of *dist* runs with: the core, testsupport,
    the local distributions *dist* depends on, and *dist* itself."""
    path = DISTRIBUTIONS[dist]
    core = [] if dist == "hookspecs" else [ROOT / "core"]
    needed = [ROOT / "hookspecs", TESTSUPPORT, *core, *_local_requirements(path), path]
    return list(dict.fromkeys(needed))


_PRINT_VERSIONS = (
    "import importlib.metadata as m; "
    "names = {d.metadata['Name'].lower(): d.version for d in m.distributions()}; "
    "print('\\n'.join(f'  {n}=={v}' for n, v in sorted(names.items())))"
)


def _compatibility(session: nox.Session, dist: str, options: tuple[str, ...]) -> None:
    path = DISTRIBUTIONS[dist]
    _install_local(session, *_suite_needs(dist), fixtures_of=(path,), options=options)
    installed = session.run("python", "-c", _PRINT_VERSIONS, silent=True)
    session.log(f"installed for {dist}:\n{str(installed).rstrip()}")
    session.run("python", "-c", f"import {_import_name(path)}")
    session.run("pytest", str(path / "tests"), *session.posargs)


# a fresh environment each run: an environment kept from an earlier run would keep
# versions the resolution of this one would not pick
@nox.session(reuse_venv=False)
@nox.parametrize("dist", list(DISTRIBUTIONS), ids=list(DISTRIBUTIONS))
def lowest(session: nox.Session, dist: str) -> None:
    """One distribution's tests at the lowest versions its ranges admit.

    Every direct dependency of the distribution and of the local ones it runs with
    (the core, its test extra included) is resolved to the lowest version the
    declared ranges allow (``uv pip install --resolution=lowest-direct``); the
    versions installed are printed first. A failure here means a lower bound is
    wrong: raise it to the oldest release that passes.
    """
    _compatibility(session, dist, ("--resolution=lowest-direct",))


@nox.session(reuse_venv=False)
@nox.parametrize("dist", list(DISTRIBUTIONS), ids=list(DISTRIBUTIONS))
def newest(session: nox.Session, dist: str) -> None:
    """One distribution's tests at the newest versions its ranges admit (printed first)."""
    _compatibility(session, dist, ("--resolution=highest", "--upgrade"))


@nox.session
def integration(session: nox.Session) -> None:
    """Every distribution together: the cross-distribution suite and the core suite again."""
    _install_local(session, *LOCAL, fixtures_of=tuple(LOCAL))
    session.run(
        "pytest",
        str(ROOT / "tests"),
        str(ROOT / "core" / "tests"),
        f"--ignore={E2E}",  # the e2e session runs those
        *session.posargs,
    )


@nox.session
def e2e(session: nox.Session) -> None:
    """The demo service as a real process, scraped by a real Prometheus, exporting over OTLP."""
    _install_local(session, *LOCAL)
    session.run("pytest", str(E2E), *session.posargs)


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """``limelight demo`` with the plugins it uses (arguments after ``--`` go to the demo)."""
    _install_local(session, *_local_requirements(DEMO), DEMO, extras="")
    # a clean stop on Ctrl-C (finish requests, flush telemetry) takes longer than nox waits
    session.run("limelight", "demo", *session.posargs, interrupt_timeout=15.0)


BENCHES = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py"))


@nox.session(default=False)
@nox.parametrize("name", BENCHES, ids=BENCHES)
def bench(session: nox.Session, name: str) -> None:
    """One benchmark against the tools users would otherwise pick (not a test).

    Each benchmark gets its own environment with its own peers
    (``bench/requirements-<name>.txt``), so one peer's pins never change another's
    measurement. ``nox -s bench`` runs them all.
    """
    _install_local(session, *LOCAL)
    session.install("-r", str(ROOT / "bench" / f"requirements-{name}.txt"))
    session.run("python", str(ROOT / "bench" / f"bench_{name}.py"), *session.posargs)


def _release_version() -> str:
    """The one version every published distribution has (they are released together)."""
    versions = {name: _project(path)["version"] for name, path in PUBLISHED.items()}
    if len(set(versions.values())) != 1:
        raise RuntimeError(f"the distributions must share one version: {versions}")
    return str(next(iter(versions.values())))


@nox.session
def packaging(session: nox.Session) -> None:
    """Every published distribution built as the package index gets it, and checked there.

    ``uv build`` for each (the sdist, then the wheel built from the sdist), ``twine
    check --strict``, the artefacts' contents (``tests/check_artefacts.py``: the
    licence text, known classifiers, readme, project URLs, ``py.typed``); then the
    wheels alone installed into a fresh environment outside the checkout (their
    dependencies from the index), where each distribution's smoke test
    (``tests/smoke_installed.py``), ``limelight plugins`` and ``limelight plugins
    --check`` run.
    """
    version = _release_version()
    session.install("twine>=6.1,<8", TROVE_CLASSIFIERS, "uv>=0.5,<1")
    # absolute: the install below runs from another directory (create_tmp is relative
    # to the working directory when the environments are, as with the default .nox)
    out = Path(session.create_tmp()).resolve() / "dist"
    shutil.rmtree(out, ignore_errors=True)
    # the environment the wheels go into, and its working directory, lie outside the
    # checkout (the default .nox is inside it), so nothing there can come from the tree
    outside = Path(tempfile.mkdtemp(prefix="limelight-packaging-"))
    env, work = outside / "installed", outside / "work"
    work.mkdir()
    names = list(PUBLISHED)
    for path in PUBLISHED.values():
        session.run("uv", "build", "--quiet", "--no-sources", "--out-dir", str(out), str(path))
    # uv build also leaves a .gitignore there
    artefacts = sorted(str(p) for p in out.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    session.run("twine", "check", "--strict", *artefacts)
    check = ("--out", str(out), "--version", version, "--license", str(ROOT / "LICENSE"))
    session.run("python", str(ROOT / "tests" / "check_artefacts.py"), *check, *names)

    # outside the checkout: no workspace, no configuration, no source tree on the path
    session.chdir(work)
    python = str(env / "bin" / "python")
    session.run(
        "uv",
        "venv",
        "--quiet",
        "--no-config",
        "--python",
        shutil.which("python", path=session.bin) or "python",
        str(env),
    )
    wheels = [a for a in artefacts if a.endswith(".whl")]
    session.run("uv", "pip", "install", "--quiet", "--no-config", "--python", python, *wheels)
    smoke = work / "smoke_installed.py"
    shutil.copyfile(ROOT / "tests" / "smoke_installed.py", smoke)
    session.run(
        python, str(smoke), "--version", version, "--checkout", str(ROOT), *names, external=True
    )
    limelight = str(env / "bin" / "limelight")
    session.run(limelight, "plugins", external=True)
    session.run(limelight, "plugins", "--check", external=True)
    session.chdir(ROOT)
    shutil.rmtree(outside, ignore_errors=True)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors."""
    session.install("sphinx>=8,<10", "myst-parser>=4,<6", "furo>=2024.8")
    _install_local(session, *LOCAL, extras="")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        str(ROOT / "docs"),
        str(ROOT / "docs" / "_build" / "html"),
    )


@nox.session(default=False)
def audit(session: nox.Session) -> None:
    """pip-audit over an environment with every distribution installed.

    Fails unless every installed dependency was audited: a dependency the
    vulnerability service could not answer for (unreachable, or an index without
    PyPI's JSON API) fails the session and is named with pip-audit's reason, and so
    does a run that audited nothing. The limelight distributions themselves are not
    on PyPI and are left out. Any known vulnerability fails it too.
    """
    session.install("pip-audit>=2.7,<3")
    _install_local(session, *LOCAL, extras="")
    report = Path(session.create_tmp()) / "audit.json"
    report.unlink(missing_ok=True)
    # exit 1 is "vulnerabilities found": read from the report below
    session.run(
        "pip-audit",
        "--skip-editable",
        "--progress-spinner=off",
        "--format=json",
        f"--output={report}",
        success_codes=[0, 1],
    )
    if not report.exists():
        session.error("pip-audit wrote no report: nothing was audited")
    import json

    local = {_project(p)["name"].lower() for p in LOCAL} | {
        _project(f)["name"].lower() for d in LOCAL for f in _fixture_dists(d)
    }
    dependencies = json.loads(report.read_text(encoding="utf-8"))["dependencies"]
    checked = [d for d in dependencies if d["name"].lower() not in local]
    skipped = [d for d in checked if d.get("skip_reason")]
    audited = len(checked) - len(skipped)
    vulnerable = [d for d in checked if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            session.warn(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    if skipped:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped})
        names = ", ".join(f"{d['name']} {d.get('version', '')}".strip() for d in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        session.error(
            f"{len(skipped)} of {len(checked)} dependencies could not be audited "
            f"({'; '.join(reasons)}): {names}{more}. "
            + (
                "Nothing was audited: the vulnerability service (PyPI's JSON API by "
                "default) is not reachable from here."
                if audited == 0
                else "Their advisories are unknown."
            )
        )
    if vulnerable:
        session.error(f"{len(vulnerable)} of {audited} audited dependencies have known advisories")
    session.log(f"{audited} of {len(checked)} dependencies audited: no known vulnerabilities")
