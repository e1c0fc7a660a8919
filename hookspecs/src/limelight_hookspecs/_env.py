"""Environment variables as declared, documented constants, and their parsers."""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")

__all__ = [
    "ConfigProblem",
    "EnvVar",
    "Reading",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_key_values",
    "parse_list",
    "parse_otel_bool",
    "parse_str",
]


@attrs.frozen
class ConfigProblem:
    """An invalid configuration value, and what was used instead.

    :param variable: the environment variable (or setting) that was invalid.
    :param value: the value as it was given.
    :param fallback: a rendering of the value used instead.
    :param reason: why the value was rejected.
    """

    variable: str
    value: str
    fallback: str
    reason: str

    def message(self) -> str:
        """One line naming the variable, the value, the reason and the fallback."""
        return f"invalid {self.variable}={self.value!r}: {self.reason}; using {self.fallback}"


@attrs.frozen
class Reading(Generic[T]):
    """The result of reading an :class:`EnvVar` from an environment.

    :param value: the parsed value, or the default.
    :param source: the variable name when it came from the environment,
        ``"default"`` otherwise.
    :param problem: set when the variable was present but invalid.
    """

    value: T
    source: str
    problem: ConfigProblem | None = None


@attrs.frozen
class EnvVar(Generic[T]):
    """One environment variable: its name, default, parser and documentation.

    Every variable limelight and its plugins read is declared once as an
    ``EnvVar`` constant, so the configuration reference and ``limelight config``
    are generated from the same declarations the code uses.

    :param name: the variable name, for example ``OTEL_SERVICE_NAME``.
    :param default: the value used when the variable is unset, empty or invalid.
    :param parse: turns the raw string into a value; raises :class:`ValueError`
        with a readable message when the string is invalid.
    :param doc: one or two sentences for the configuration reference.
    :param example: an example value.
    :param empty_is_unset: when true (the OpenTelemetry rule), an empty value
        means "use the default".
    :param default_text: the default as the variable would be written, when
        :attr:`default` does not say it: a value parsed into other units
        (``"5000"`` milliseconds for a default of 5.0 seconds) or a placeholder
        the reader resolves (``"http/protobuf"`` for an empty default). Shown in
        reports of invalid values and in the configuration reference.
    """

    name: str
    default: T
    parse: Callable[[str], T] = attrs.field(repr=False)
    doc: str
    example: str = ""
    empty_is_unset: bool = True
    default_text: str = ""

    def describe_default(self) -> str:
        """The default as reports and the configuration reference show it."""
        if self.default_text:
            return self.default_text
        return _render(self.default)

    def read(self, environ: Mapping[str, str]) -> Reading[T]:
        """Read and parse this variable from *environ*; never raises."""
        raw = environ.get(self.name)
        if raw is None or (self.empty_is_unset and raw.strip() == ""):
            return Reading(self.default, "default")
        try:
            return Reading(self.parse(raw), self.name)
        except (ValueError, TypeError) as exc:
            problem = ConfigProblem(
                variable=self.name,
                value=raw,
                fallback=f"the default {self.describe_default()}",
                reason=str(exc) or type(exc).__name__,
            )
            return Reading(self.default, "default", problem)


def _render(value: object) -> str:
    """A parsed value written back the way an environment variable spells it."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(empty)"
    if value == "":
        return "(empty)"
    return str(value)


def parse_str(raw: str) -> str:
    """The value with surrounding whitespace removed."""
    return raw.strip()


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def parse_bool(raw: str) -> bool:
    """``true``/``false`` (case-insensitive; also ``1``/``0``, ``yes``/``no``, ``on``/``off``).

    limelight's lenient booleans, for ``LIMELIGHT_*`` and plugin variables; an
    ``OTEL_*`` boolean is read with :func:`parse_otel_bool`.
    """
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false")


def parse_otel_bool(raw: str) -> bool:
    """A boolean of the OpenTelemetry specification: only ``true`` is true and only
    ``false`` is false (case-insensitive); anything else (``1``, ``yes``) is
    invalid, so the reader reports it and uses the default (false)."""
    value = raw.strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    raise ValueError("expected true or false")


def parse_int(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """A parser for a decimal integer within ``[minimum, maximum]``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("expected an integer") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be <= {maximum}")
        return value

    return parse


def parse_float(
    minimum: float | None = None, maximum: float | None = None
) -> Callable[[str], float]:
    """A parser for a finite number within ``[minimum, maximum]``."""

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= {minimum:g}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be <= {maximum:g}")
        return value

    return parse


def parse_list(raw: str) -> tuple[str, ...]:
    """A comma-separated list; items are stripped and empty items dropped."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_key_values(raw: str) -> tuple[tuple[str, str], ...]:
    """``key1=value1,key2=value2`` with percent-encoded values (W3C Baggage style).

    Used by ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_EXPORTER_OTLP_HEADERS``.
    Raises :class:`ValueError` naming the first malformed member; the caller
    decides whether to keep the valid members (see :func:`split_key_values`).
    """
    pairs, bad = split_key_values(raw)
    if bad:
        raise ValueError(f"malformed member {bad[0]!r} (expected key=value)")
    return pairs


def split_key_values(raw: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Split ``key=value`` members, returning the valid pairs and the malformed members."""
    pairs: list[tuple[str, str]] = []
    bad: list[str] = []
    for member in raw.split(","):
        if not member.strip():
            continue
        key, sep, value = member.partition("=")
        key = key.strip()
        if not sep or not key:
            bad.append(member.strip())
            continue
        pairs.append((urllib.parse.unquote(key), urllib.parse.unquote(value.strip())))
    return tuple(pairs), tuple(bad)
