"""The one instrument contract: idempotent, exactly undone, libraries imported only on use."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from structlog.testing import capture_logs

from limelight.surface import Instrumentation, Instrumentor, Patches


class Base:
    def send(self) -> str:
        return "base"


class Child(Base):
    def own(self) -> str:
        return "own"


def test_patches_restore_an_owned_attribute_and_unshadow_an_inherited_one() -> None:
    own, inherited = Child.__dict__["own"], Base.__dict__["send"]
    patches = Patches()
    assert own is patches.wrap(Child, "own", lambda self: "patched own")
    assert inherited is patches.wrap(Child, "send", lambda self: "patched send")
    assert ("patched own", "patched send") == (Child().own(), Child().send())
    patches.restore()
    assert own is Child.__dict__["own"]
    assert "send" not in Child.__dict__  # inherited again, not a copy of the base's
    assert "base" == Child().send()
    assert 0 == len(patches)


@pytest.fixture
def fakelib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable library, not yet imported."""
    (tmp_path / "fakelib_surface.py").write_text(
        textwrap.dedent(
            """
            class Client:
                def call(self):
                    return "plain"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fakelib_surface"
    sys.modules.pop("fakelib_surface", None)


def _client_instrumentor(library: str, calls: list[str]) -> Instrumentor:
    def install(patches: Patches) -> None:
        module = sys.modules[library]
        original: Callable[[object], str] = module.Client.call

        def call(self: object) -> str:
            return "traced " + original(self)

        patches.wrap(module.Client, "call", call)
        calls.append("install")

    return Instrumentor(library, install, remove=lambda: calls.append("remove"), name="fake")


def test_instrument_is_idempotent_and_uninstrument_restores(fakelib: str) -> None:
    calls: list[str] = []
    surface = Instrumentation("test", [_client_instrumentor(fakelib, calls)])
    assert fakelib not in sys.modules
    assert not surface.is_instrumented()
    assert ("fake",) == surface.instrument()
    assert () == surface.instrument()  # already in place
    module: ModuleType = sys.modules[fakelib]
    assert "traced plain" == module.Client().call()
    assert surface.is_instrumented("fake")
    assert ["install"] == calls
    assert ("fake",) == surface.uninstrument()
    assert "plain" == module.Client().call()
    assert () == surface.uninstrument()
    assert ["install", "remove"] == calls
    assert not surface.is_instrumented()


def test_a_library_that_is_not_installed_is_skipped_or_refused_by_name() -> None:
    surface = Instrumentation("test", [Instrumentor("no_such_library_xyz", lambda p: None)])
    assert () == surface.instrument()
    with pytest.raises(ImportError):
        surface.instrument("no_such_library_xyz")
    with pytest.raises(ValueError, match="cannot instrument 'other'"):
        surface.instrument("other")


def test_a_failing_install_leaves_nothing_patched(fakelib: str) -> None:
    def install(patches: Patches) -> None:
        patches.wrap(sys.modules[fakelib].Client, "call", lambda self: "half")
        raise RuntimeError("library changed")

    surface = Instrumentation("test", [Instrumentor(fakelib, install)])
    with capture_logs() as logs:
        assert () == surface.instrument()  # every installed library: reported, not raised
    assert "plain" == sys.modules[fakelib].Client().call()
    assert [("test", f"instrument {fakelib}")] == [
        (e["component"], e["where"]) for e in logs if "component" in e
    ]
    with pytest.raises(RuntimeError, match="library changed"):  # asked by name: raised
        surface.instrument(fakelib)
    assert "plain" == sys.modules[fakelib].Client().call()
    assert not surface.is_instrumented()
