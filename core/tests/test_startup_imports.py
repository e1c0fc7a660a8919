"""What a start reads and imports: the entry points of the groups asked for, from one
scan; prometheus_client without its exposition until something asks for it."""

from __future__ import annotations

import importlib.metadata
import sys
from typing import Any

import pytest
from limelight_testsupport.imports import clean_environ, run_fresh

from limelight import _metadata


def _run(script: str) -> Any:
    """Run *script* in a fresh interpreter that exports nothing; what it reported."""
    return run_fresh(
        script, env=clean_environ(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    )


class TestEntryPoints:
    @pytest.mark.parametrize(
        "group", ["limelight.plugins", "console_scripts", "pytest11", "opentelemetry_propagator"]
    )
    def test_a_group_is_what_importlib_metadata_gives(self, group: str) -> None:
        expected = [
            (ep.name, ep.value, ep.dist.name if ep.dist else None)
            for ep in importlib.metadata.entry_points(group=group)
        ]
        found = [
            (ep.name, ep.value, ep.dist.name if ep.dist else None)
            for ep in _metadata.entry_points(group)
        ]
        assert expected == found

    def test_a_name_selects_within_the_group(self) -> None:
        every = importlib.metadata.entry_points(group="console_scripts")
        assert every, "the test environment has console scripts"
        name = next(iter(every)).name
        assert [ep.value for ep in every if ep.name == name] == [
            ep.value for ep in _metadata.entry_points("console_scripts", name)
        ]
        assert () == _metadata.entry_points("console_scripts", "no-such-script-xyz")

    def test_a_group_nobody_declares_is_empty(self) -> None:
        assert () == _metadata.entry_points("limelight.no_such_group_xyz")

    def test_the_scan_is_made_again_when_sys_path_changes(self, tmp_path: Any) -> None:
        dist_info = tmp_path / "limelight_scan_probe-1.2.3.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: limelight-scan-probe\nVersion: 1.2.3\n"
        )
        (dist_info / "entry_points.txt").write_text("[limelight.scan_probe]\nprobe = os:getcwd\n")
        assert () == _metadata.entry_points("limelight.scan_probe")
        sys.path.append(str(tmp_path))
        try:
            assert ["probe"] == [ep.name for ep in _metadata.entry_points("limelight.scan_probe")]
            assert "1.2.3" == _metadata.version("limelight-scan-probe")
            assert "1.2.3" == _metadata.version("Limelight.Scan_Probe")
        finally:
            sys.path.remove(str(tmp_path))
        assert () == _metadata.entry_points("limelight.scan_probe")

    def test_names_and_versions_are_the_metadatas(self) -> None:
        for dist in importlib.metadata.distributions():
            assert (dist.metadata["Name"], dist.version) == _metadata.name_and_version(dist)

    def test_versions_are_importlib_metadatas(self) -> None:
        for dist in importlib.metadata.distributions():
            name = dist.metadata["Name"]
            assert importlib.metadata.version(name) == _metadata.version(name)
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            _metadata.version("no-such-distribution-xyz")


class TestPrometheusPackage:
    def test_a_start_leaves_the_exposition_unimported_until_asked_for(self) -> None:
        out = _run(
            """
            import importlib.util, json, sys
            import limelight
            from limelight._sdk import prometheus_package

            telemetry = limelight.start(service_name="probe")
            counter = telemetry.store.counter("probe_events_total", "events")
            counter.labels().inc(3)
            before = sorted(
                n for n in ("prometheus_client.exposition", "http.server", "wsgiref")
                if n in sys.modules
            )
            import prometheus_client
            from prometheus_client import exposition

            text = prometheus_client.generate_latest(telemetry.store.registry).decode()
            report(**{
                "deferred": prometheus_package.DEFERRED,
                # a release without one of the submodules the deferral imports (0.20 has
                # no validation module) is imported as usual
                "layout": all(
                    importlib.util.find_spec("prometheus_client." + name) is not None
                    for name in prometheus_package.SUBMODULES
                ),
                "before": before,
                "counted": "probe_events_total 3.0" in text,
                "complete": "__getattr__" not in vars(prometheus_client),
                "same": [
                    n for n in prometheus_client.__all__
                    if getattr(prometheus_client, n) is not getattr(exposition, n, None)
                    and n in vars(exposition)
                ],
                "all": all(hasattr(prometheus_client, n) for n in prometheus_client.__all__),
            })
            """
        )
        assert out["deferred"] is out["layout"]
        if out["deferred"]:
            assert [] == out["before"]
        else:  # imported as without limelight, exposition included
            assert "prometheus_client.exposition" in out["before"]
        assert out["counted"] and out["complete"] and out["all"]
        assert [] == out["same"]

    def test_star_import_and_late_names_complete_the_package(self) -> None:
        out = _run(
            """
            import json
            import limelight._telemetry
            from prometheus_client import *  # noqa: F403
            import prometheus_client
            report(**{
                "served": callable(start_http_server),  # noqa: F405
                "registry": REGISTRY is prometheus_client.registry.REGISTRY,  # noqa: F405
            })
            """
        )
        assert {"served": True, "registry": True} == out

    def test_a_package_imported_first_is_left_as_it_is(self) -> None:
        out = _run(
            """
            import json, sys
            import prometheus_client
            import limelight
            from limelight._sdk import prometheus_package

            limelight.start(service_name="probe")
            report(**{
                "deferred": prometheus_package.DEFERRED,
                "same": sys.modules["prometheus_client"] is prometheus_client,
            })
            """
        )
        assert {"deferred": False, "same": True} == out
