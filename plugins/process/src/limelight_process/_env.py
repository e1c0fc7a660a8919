"""Every environment variable the plugin reads, declared once."""

from __future__ import annotations

from typing import Any

from limelight_hookspecs import EnvVar, parse_bool, parse_list

__all__ = [
    "LIBRARIES",
    "LIMELIGHT_PROCESS_COMMAND_ARGS",
    "LIMELIGHT_PROCESS_INSTRUMENT",
    "VARIABLES",
]

LIBRARIES: tuple[str, ...] = ("subprocess", "multiprocessing", "concurrent.futures")
"""What the plugin can instrument, by name (asyncio's subprocesses go through subprocess)."""


def _parse_libraries(raw: str) -> tuple[str, ...]:
    names = tuple(name.lower() for name in parse_list(raw))
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in LIBRARIES]
    if unknown:
        raise ValueError(f"unknown library {unknown[0]!r}; expected {', '.join(LIBRARIES)} or none")
    return names


LIMELIGHT_PROCESS_INSTRUMENT = EnvVar[tuple[str, ...]](
    "LIMELIGHT_PROCESS_INSTRUMENT",
    LIBRARIES,
    _parse_libraries,
    "What is instrumented when telemetry starts: subprocess (Popen, so run, call, "
    "check_output and asyncio's subprocesses), multiprocessing (Process and Pool), "
    "concurrent.futures (ProcessPoolExecutor); none for nothing.",
    "subprocess",
)
LIMELIGHT_PROCESS_COMMAND_ARGS = EnvVar(
    "LIMELIGHT_PROCESS_COMMAND_ARGS",
    False,
    parse_bool,
    "Record process.command_args (every argument of a spawned command) on its span. Off by "
    "default: command lines carry secrets (tokens, passwords, connection strings).",
    "true",
)

VARIABLES: tuple[EnvVar[Any], ...] = (LIMELIGHT_PROCESS_INSTRUMENT, LIMELIGHT_PROCESS_COMMAND_ARGS)
"""Every variable the plugin reads, in documentation order."""
