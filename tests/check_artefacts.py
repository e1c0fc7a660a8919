"""The built artefacts as the package index receives them, run by ``nox -s packaging``.

``python check_artefacts.py --out DIR --version 0.1.0 --license LICENSE limelight ...``

For every distribution named, exactly one wheel and one sdist of the release version
are in *DIR*; each carries the licence text (byte for byte the repository's
``LICENSE``: ``.dist-info/licenses/LICENSE`` in the wheel, ``LICENSE`` in the sdist)
and the licence expression ``Apache-2.0``; every classifier is one the package
index knows (``trove-classifiers``), a Markdown readme, the project URLs, and
``py.typed`` in each package of the wheel. Exits 1 naming every failure.
"""

from __future__ import annotations

import argparse
import email.parser
import re
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import trove_classifiers

URL_LABELS = ("Homepage", "Documentation", "Repository", "Issues", "Changelog")
FAILURES: list[str] = []


def check(ok: object, what: str) -> None:
    if not ok:
        FAILURES.append(what)
        print(f"  FAIL {what}", flush=True)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata(text: str) -> Message:
    return email.parser.Parser().parsestr(text)


def _check_metadata(name: str, meta: Message, where: str) -> None:
    check("Apache-2.0" == meta["License-Expression"], f"{where}: licence expression")
    check("LICENSE" in (meta.get_all("License-File") or []), f"{where}: License-File")
    check(
        (meta["Description-Content-Type"] or "").startswith("text/markdown"),
        f"{where}: readme is not Markdown",
    )
    check(f"# {name}" in (meta.get_payload() or ""), f"{where}: readme does not start with it")
    classifiers = meta.get_all("Classifier") or []
    check(classifiers, f"{where}: no classifiers")
    for classifier in classifiers:
        check(
            classifier in trove_classifiers.classifiers,
            f"{where}: unknown classifier {classifier!r}",
        )
    labels = {url.split(",", 1)[0].strip() for url in meta.get_all("Project-URL") or []}
    for label in URL_LABELS:
        check(label in labels, f"{where}: no {label} URL")


def check_wheel(name: str, path: Path, licence: bytes) -> None:
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        [dist_info] = {n.split("/", 1)[0] for n in names if ".dist-info/" in n}
        meta = _metadata(wheel.read(f"{dist_info}/METADATA").decode())
        _check_metadata(name, meta, path.name)
        licences = [n for n in names if n == f"{dist_info}/licenses/LICENSE"]
        check(licences, f"{path.name}: no licenses/LICENSE")
        for member in licences:
            check(licence == wheel.read(member), f"{path.name}: LICENSE differs from the root's")
        packages = {
            n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith("__init__.py")
        }
        check(packages, f"{path.name}: no package")
        for package in packages:
            check(f"{package}/py.typed" in names, f"{path.name}: {package} has no py.typed")


def check_sdist(name: str, path: Path, licence: bytes) -> None:
    with tarfile.open(path) as sdist:
        base = path.name.removesuffix(".tar.gz")
        members = {m.name: m for m in sdist.getmembers()}
        for required in ("LICENSE", "README.md", "pyproject.toml", "PKG-INFO"):
            check(f"{base}/{required}" in members, f"{path.name}: no {required}")
        if f"{base}/LICENSE" in members:
            member = sdist.extractfile(members[f"{base}/LICENSE"])
            check(member is not None and licence == member.read(), f"{path.name}: LICENSE differs")
        if f"{base}/PKG-INFO" in members:
            info = sdist.extractfile(members[f"{base}/PKG-INFO"])
            if info is not None:
                _check_metadata(name, _metadata(info.read().decode()), path.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="where the artefacts are")
    parser.add_argument("--version", required=True)
    parser.add_argument("--license", required=True, type=Path, help="the repository's LICENSE")
    parser.add_argument("distributions", nargs="+")
    args = parser.parse_args()
    licence = args.license.read_bytes()
    artefacts = sorted(p.name for p in args.out.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    expected = set()
    for name in args.distributions:
        stem = f"{_normalized(name)}-{args.version}"
        wheel, sdist = f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"
        expected |= {wheel, sdist}
        print(f"{name}:", flush=True)
        check(wheel in artefacts, f"{name}: no {wheel} in {artefacts}")
        check(sdist in artefacts, f"{name}: no {sdist} in {artefacts}")
        if wheel in artefacts:
            check_wheel(name, args.out / wheel, licence)
        if sdist in artefacts:
            check_sdist(name, args.out / sdist, licence)
    check(set(artefacts) == expected, f"unexpected artefacts {sorted(set(artefacts) - expected)}")
    if FAILURES:
        print(f"\n{len(FAILURES)} failed:\n  " + "\n  ".join(FAILURES))
        return 1
    print(f"\n{len(artefacts)} artefacts of {len(args.distributions)} distributions are ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
