"""Every limelight distribution installed together: plugins load, declare and document cleanly."""

from __future__ import annotations

import importlib
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import limelight
import limelight.plugins
from limelight.metrics import MetricStore

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p for p in (ROOT / "plugins").glob("*") if (p / "pyproject.toml").exists())


def _entry_points(path: Path) -> dict[str, str]:
    with (path / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    return dict(project.get("entry-points", {}).get("limelight.plugins", {}))


def _manager() -> limelight.plugins.PluginManager:
    return limelight.plugins.discover(limelight.load_config(environ={}))


class TestTogether:
    """All shipped plugins installed at once load, and their metrics coexist in one store."""

    def test_every_shipped_plugin_loads(self) -> None:
        infos = {i.name: i for i in _manager().infos()}
        for path in PLUGIN_DIRS:
            for name in _entry_points(path):
                assert name in infos, f"{name} from {path.name} is not installed"
                assert "loaded" == infos[name].status, infos[name].error

    def test_every_declared_metric_fits_in_one_store(self) -> None:
        config = limelight.load_config(environ={})
        store = MetricStore()
        for plugin, declaration in _manager().metrics_declare(config):
            store.declare(declaration, declarer=plugin)

    def test_priorities_follow_the_documented_ranges(self) -> None:
        shipped = {f"limelight-{p.name}" for p in PLUGIN_DIRS}
        for info in _manager().infos():
            if info.distribution == "limelight":
                assert 0 <= info.priority < 100, info.name
            elif info.distribution in shipped:
                assert 100 <= info.priority < 300, info.name


@pytest.mark.parametrize("path", PLUGIN_DIRS, ids=[p.name for p in PLUGIN_DIRS])
class TestEachDistribution:
    """Each distribution under plugins/ has the shape the layout promises."""

    def test_has_a_docs_page_and_a_readme(self, path: Path) -> None:
        assert (ROOT / "docs" / "plugins" / f"{path.name}.md").exists()
        assert (path / "README.md").exists()

    def test_is_typed_and_has_tests(self, path: Path) -> None:
        packages = [p for p in (path / "src").iterdir() if (p / "__init__.py").exists()]
        assert [f"limelight_{path.name}"] == [p.name for p in packages]
        assert (packages[0] / "py.typed").exists()
        assert any((path / "tests").glob("test_*.py"))

    def test_a_surface_follows_the_instrument_contract(self, path: Path) -> None:
        plugins = [
            ep.load()
            for ep in entry_points(group="limelight.plugins")
            if ep.name in _entry_points(path)
        ]
        if not any(200 <= getattr(p, "limelight_priority", 0) < 300 for p in plugins):
            return  # an exporter: nothing to instrument
        package = importlib.import_module(f"limelight_{path.name}")
        for name in ("instrument", "uninstrument", "is_instrumented"):
            assert name in package.__all__, f"limelight_{path.name} does not export {name}"
            assert callable(getattr(package, name))
        assert isinstance(package.is_instrumented(), bool)
