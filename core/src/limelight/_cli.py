"""The ``limelight`` command: ``plugins``, ``config``, ``catalog``, ``run``, ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import attrs

from limelight_hookspecs import Config

from ._catalog import (
    catalog_text,
    config_reference_markdown,
    metric_catalog_markdown,
    text_table,
)
from ._config import installed_exporters, load_config, resolve_exporters
from ._env import SDK_VARIABLES
from ._plugins import PluginError, PluginManager, discover

__all__ = ["main"]


def _checked(config: Config) -> PluginManager:
    """The plugins of a telemetry started and stopped with export turned off."""
    from ._telemetry import Telemetry

    quiet = attrs.evolve(
        config, traces_exporters=(), metrics_exporters=(), logs_exporters=(), strict=False
    )
    telemetry = Telemetry(quiet, install_globals=False, handle_signals=False)
    try:
        telemetry.start()
    except PluginError:  # pragma: no cover - strict is off; recorded either way
        pass
    finally:
        telemetry.stop(min(5.0, config.shutdown_timeout))
    return telemetry.plugins


def _plugins(args: argparse.Namespace) -> int:
    config = load_config()
    manager = _checked(config) if args.check else discover(config)
    failures = manager.failures
    failed = {f.plugin: f for f in reversed(failures)}  # the first failure of each plugin
    infos = tuple(
        attrs.evolve(i, status="failed", error=f"{failed[i.name].phase}: {failed[i.name].error}")
        if i.name in failed and i.status == "loaded"
        else i
        for i in manager.infos()
    )
    code = 1 if args.check and failures else 0
    if args.json:
        print(
            json.dumps(
                {
                    "plugins": [attrs.asdict(i) for i in infos],
                    "failures": [
                        {"plugin": f.plugin, "phase": f.phase, "error": f.error} for f in failures
                    ],
                },
                indent=2,
            )
        )
        return code
    rows = []
    for info in infos:
        hooks = ", ".join(h.removeprefix("limelight_") for h in info.hooks)
        status = info.status if info.error is None else f"failed: {info.error}"
        rows.append((info.name, info.version or "-", str(info.priority), status, hooks or "-"))
    print("plugins (resolved order):")
    print(text_table(rows, ("name", "version", "priority", "status", "hooks")))
    if failures:
        print("\nfailures:" if args.check else "\nload errors:")
        for failure in failures:
            print(f"  {failure.message()}")
    elif args.check:
        print("\nevery plugin configured, started and stopped without a failure")
    return code


def _flatten(config: Config) -> list[tuple[str, Any]]:
    skip = {"environ", "sources", "problems", "reporter"}
    out: list[tuple[str, Any]] = []
    for field in attrs.fields(Config):
        if field.name in skip:
            continue
        value = getattr(config, field.name)
        if attrs.has(type(value)):
            for sub in attrs.fields(type(value)):
                out.append((f"{field.name}.{sub.name}", getattr(value, sub.name)))
        else:
            out.append((field.name, value))
    return out


def _render(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "{}"
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return ",".join(f"{k}=***" for k, _ in value)  # header values are secrets
    if isinstance(value, tuple):
        return ",".join(value) or "(none)"
    return "(unset)" if value is None else str(value)


def _config(args: argparse.Namespace) -> int:
    config = load_config()
    manager = discover(config)
    config = resolve_exporters(config, installed_exporters(manager.infos()))
    rows = [
        (name, _render(value), config.sources.get(name, "default"))
        for name, value in _flatten(config)
    ]
    # read by the SDK, handed to it by limelight (parsed and reported like the rest)
    for var in SDK_VARIABLES:
        reading = var.read(config.environ)
        value = var.describe_default() if reading.value is None else _render(reading.value)
        rows.append((var.name, value, reading.source))
    plugin_rows = []
    problems = list(config.problems)
    for plugin, var in manager.config_declare():
        reading = var.read(config.environ)
        plugin_rows.append((var.name, _render(reading.value), reading.source, plugin))
        if reading.problem is not None:
            problems.append(reading.problem)
    if args.json:
        print(
            json.dumps(
                {
                    "settings": {n: {"value": v, "source": s} for n, v, s in rows},
                    "plugin_variables": {
                        n: {"value": v, "source": s, "plugin": p} for n, v, s, p in plugin_rows
                    },
                    "problems": [p.message() for p in problems],
                },
                indent=2,
            )
        )
        return 0
    print("effective configuration:")
    print(text_table(rows, ("setting", "value", "source")))
    if plugin_rows:
        print("\nplugin variables:")
        print(text_table(plugin_rows, ("variable", "value", "source", "plugin")))
    if problems:
        print("\nproblems (the fallback is in use):")
        for problem in problems:
            print(f"  {problem.message()}")
    if args.variables:
        print()
        print(config_reference_markdown())
    return 0


def _catalog(args: argparse.Namespace) -> int:
    print(metric_catalog_markdown() if args.markdown else catalog_text())
    return 0


def _demo(argv: Sequence[str]) -> int:
    """``limelight demo ...``: every argument goes to ``limelight_demo.main`` unchanged.

    Without the limelight-demo distribution, a short tour of the core runs instead
    (it accepts ``--once`` and ``--port`` and needs neither).
    """
    try:
        from limelight_demo import main as demo_main
    except ModuleNotFoundError as exc:
        if exc.name != "limelight_demo":
            raise
        from ._tour import run_tour

        tour = argparse.ArgumentParser(prog="limelight demo")
        tour.add_argument("--once", action="store_true", help="accepted; the tour always exits")
        tour.add_argument("--port", type=int, default=0, help="accepted; the tour serves nothing")
        tour.parse_args(argv)
        return run_tour()
    return int(demo_main(list(argv)))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``limelight`` command."""
    parser = argparse.ArgumentParser(
        prog="limelight",
        description="limelight: OpenTelemetry tracing and one metric store for Python services.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list plugins in resolved order with their hooks")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--check",
        action="store_true",
        help="also configure, start and stop every plugin with export turned off, show each "
        "hook's failure, and exit 1 when a plugin failed",
    )
    p.set_defaults(func=_plugins)
    c = sub.add_parser("config", help="show the effective configuration and its sources")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--variables", action="store_true", help="also document every variable")
    c.set_defaults(func=_config)
    k = sub.add_parser("catalog", help="list every metric the installed plugins declare")
    k.add_argument("--markdown", action="store_true", help="Markdown table (as in the docs)")
    k.set_defaults(func=_catalog)
    # `limelight run ...` is dispatched before parsing (see main): the command owns what follows
    sub.add_parser(
        "run",
        help="run a command with telemetry and every installed surface, no code change "
        "(limelight run --help for its options)",
    )
    # `limelight demo ...` is dispatched before parsing (see main): the demo owns its options
    sub.add_parser(
        "demo",
        help="run the demo service, send it traffic, show its traces and metrics "
        "(limelight demo --help for its options)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``limelight`` console script."""
    # the CLI's own output is stdout; limelight's log lines go through logging, whose
    # last-resort handler writes warnings and errors to stderr
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["demo"]:
        return _demo(arguments[1:])
    if arguments[:1] == ["run"]:
        from ._run import main as run_main

        return run_main(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
