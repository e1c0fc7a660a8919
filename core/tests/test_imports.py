"""Instrumentation when the application imports a library, never before, never by limelight."""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from limelight import _imports
from limelight.surface import Instrumentation, Instrumentor, Patches


@pytest.fixture
def libs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """Write importable modules (not imported yet); forget them afterwards."""
    written: list[str] = []

    def write(name: str, source: str) -> str:
        path = tmp_path.joinpath(*name.split("."))
        if "." in name:
            path.parent.mkdir(parents=True, exist_ok=True)
            init = path.parent / "__init__.py"
            if not init.exists():
                init.write_text("")
        path.with_suffix(".py").write_text(textwrap.dedent(source))
        written.append(name)
        importlib.invalidate_caches()
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield write
    for name in list(sys.modules):
        if any(name == w or name.startswith(w.split(".")[0] + ".") for w in written):
            sys.modules.pop(name, None)
    for name in written:
        sys.modules.pop(name.split(".")[0], None)
        for callback in list(_imports._waiting.get(name, ())):
            _imports.cancel(name, callback)


CLIENT = """
class Client:
    def call(self):
        return "plain"
"""


def _surface(library: str, installs: list[str]) -> Instrumentation:
    def install(patches: Patches) -> None:
        module = sys.modules[library]
        original = module.Client.call
        patches.wrap(module.Client, "call", lambda self: "traced " + original(self))
        installs.append(threading.current_thread().name)

    return Instrumentation("test", [Instrumentor(library, install, name="fake")])


class TestInstrumentOnImport:
    """A library is instrumented when the application imports it, and only then."""

    def test_nothing_is_imported_until_the_application_imports_it(
        self, libs: Callable[[str, str], str]
    ) -> None:
        name = libs("lazylib_one", CLIENT)
        installs: list[str] = []
        surface = _surface(name, installs)
        assert ("fake",) == surface.instrument_on_import()
        assert name not in sys.modules
        assert not surface.is_instrumented()
        assert surface.instrumentors["fake"].is_waiting()
        module = importlib.import_module(name)
        assert surface.is_instrumented("fake")
        assert "traced plain" == module.Client().call()
        assert 1 == len(installs)
        # the loader is the import system's own, with its method back
        assert isinstance(module.__loader__, importlib.machinery.SourceFileLoader)
        assert "exec_module" not in vars(module.__loader__)
        assert () == surface.instrument_on_import()  # idempotent
        assert name not in _imports.watched()

    def test_an_imported_library_is_instrumented_at_once(
        self, libs: Callable[[str, str], str]
    ) -> None:
        name = libs("lazylib_two", CLIENT)
        module = importlib.import_module(name)
        installs: list[str] = []
        surface = _surface(name, installs)
        assert ("fake",) == surface.instrument_on_import("fake")
        assert "traced plain" == module.Client().call()

    def test_a_submodule_import_runs_the_hook_of_its_package(
        self, libs: Callable[[str, str], str]
    ) -> None:
        libs("lazypkg.client", CLIENT)
        installs: list[str] = []
        surface = _surface("lazypkg.client", installs)
        surface.instrument_on_import()
        assert "lazypkg.client" not in sys.modules
        from lazypkg.client import Client  # type: ignore[import-not-found]

        assert "traced plain" == Client().call()

    def test_uninstrument_stops_the_wait(self, libs: Callable[[str, str], str]) -> None:
        name = libs("lazylib_three", CLIENT)
        installs: list[str] = []
        surface = _surface(name, installs)
        surface.instrument_on_import()
        assert ("fake",) == surface.uninstrument()
        module = importlib.import_module(name)
        assert "plain" == module.Client().call()
        assert [] == installs
        assert name not in _imports.watched()

    def test_a_module_that_fails_to_import_fails_as_it_would_and_stays_watched(
        self, libs: Callable[[str, str], str], tmp_path: Path
    ) -> None:
        name = libs("lazylib_four", "raise RuntimeError('broken at import')\n")
        installs: list[str] = []
        surface = _surface(name, installs)
        surface.instrument_on_import()
        with pytest.raises(RuntimeError, match="broken at import") as info:
            importlib.import_module(name)
        # the traceback ends in the module's own code, as without limelight
        assert info.traceback[-1].path == tmp_path / f"{name}.py"
        assert [] == installs
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(CLIENT))
        importlib.invalidate_caches()
        sys.modules.pop(name, None)
        module = importlib.import_module(name)
        assert "traced plain" == module.Client().call()

    def test_a_failing_install_is_reported_once_and_the_import_proceeds(
        self, libs: Callable[[str, str], str]
    ) -> None:
        name = libs("lazylib_five", CLIENT)

        def install(patches: Patches) -> None:
            patches.wrap(sys.modules[name].Client, "call", lambda self: "half")
            raise RuntimeError("library changed")

        surface = Instrumentation("test", [Instrumentor(name, install)])
        surface.instrument_on_import()
        with capture_logs() as logs:
            module = importlib.import_module(name)
        assert "plain" == module.Client().call()
        assert not surface.is_instrumented()
        assert [("test", f"instrument {name}")] == [
            (e["component"], e["where"]) for e in logs if "component" in e
        ]

    def test_a_library_that_is_not_installed_is_left_alone(self) -> None:
        surface = Instrumentation("test", [Instrumentor("no_such_library_xyz", lambda p: None)])
        assert ("no_such_library_xyz",) == surface.instrument_on_import()
        assert "no_such_library_xyz" not in sys.modules
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("no_such_library_xyz")
        assert surface.uninstrument() == ("no_such_library_xyz",)

    def test_threads_importing_at_once_instrument_once(
        self, libs: Callable[[str, str], str]
    ) -> None:
        name = libs("lazylib_six", "import time\ntime.sleep(0.2)\n" + textwrap.dedent(CLIENT))
        installs: list[str] = []
        surface = _surface(name, installs)
        surface.instrument_on_import()
        barrier = threading.Barrier(4)
        results: list[str] = []

        def importer() -> None:
            barrier.wait()
            results.append(importlib.import_module(name).Client().call())

        def explicit() -> None:
            barrier.wait()
            surface.instrument("fake")

        threads = [threading.Thread(target=importer) for _ in range(3)]
        threads.append(threading.Thread(target=explicit))
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert ["traced plain"] * 3 == results
        assert 1 == len(installs)

    def test_a_library_imported_by_another_install_is_instrumented_after_it(
        self, libs: Callable[[str, str], str]
    ) -> None:
        # the process surface's case: installing one library imports the plugin's own
        # module, which imports a second watched library before it is complete
        libs("lazylib_seven", CLIENT)
        helper = libs(
            "lazyhelper_seven",
            "import lazylib_seven\nfrom lazylib_seven import Client\nREADY = True\n",
        )
        order: list[str] = []

        def install_first(patches: Patches) -> None:
            importlib.import_module(helper)
            order.append("first")

        def install_second(patches: Patches) -> None:
            assert sys.modules[helper].READY  # the helper is complete by now
            order.append("second")

        libs("lazylib_eight", CLIENT)
        surface = Instrumentation(
            "test",
            [
                Instrumentor("lazylib_eight", install_first),
                Instrumentor("lazylib_seven", install_second),
            ],
        )
        surface.instrument_on_import()
        importlib.import_module("lazylib_eight")
        assert ["first", "second"] == order
        assert surface.is_instrumented("lazylib_seven")
