"""Environment variables as declared, documented constants, and their parsers."""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")

__all__ = [
    "MAX_DURATION_MILLIS",
    "MAX_SIZE",
    "SHOWN_LIMIT",
    "ConfigProblem",
    "EnvVar",
    "RangedParser",
    "Reading",
    "bounded",
    "member_problem",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_key_values",
    "parse_list",
    "parse_millis",
    "parse_otel_bool",
    "parse_str",
    "parse_url",
    "split_key_values",
]

MAX_DURATION_MILLIS = 86_400_000
"""The largest duration a variable in milliseconds accepts: one day. Anything
longer is a typo or an attack (``1e300`` overflows every wait of the standard
library); the reference shows each variable's range."""

MAX_SIZE = 1_000_000
"""The largest count a size variable (queue, batch, series, span limits) accepts
unless it declares its own maximum."""


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

    def shown_value(self) -> str:
        """The value as reports show it: as given when short and printable, else
        escaped (``repr``) and cut at :data:`SHOWN_LIMIT` characters."""
        if len(self.value) <= SHOWN_LIMIT and self.value.isprintable():
            return self.value
        return bounded(self.value)

    def message(self) -> str:
        """One line naming the variable, the value, the reason and the fallback
        (each bounded: a value may be megabytes of anything)."""
        value = bounded(self.value)
        reason, fallback = bounded(self.reason, quote=False), bounded(self.fallback, quote=False)
        return f"invalid {self.variable}={value}: {reason}; using {fallback}"


SHOWN_LIMIT = 200
"""Characters of a value a report shows."""


def bounded(text: str, limit: int = SHOWN_LIMIT, *, quote: bool = True) -> str:
    """*text* for a log line: escaped (``repr``, so no newline or terminal control
    reaches the log) and cut after *limit* characters, saying how long it was."""
    head = text[:limit]
    shown = repr(head) if quote else repr(head)[1:-1]
    if len(text) > limit:
        shown += f"... ({len(text)} characters)"
    return shown


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
        except Exception as exc:  # a parser's bug must not take the service down either
            problem = ConfigProblem(
                variable=self.name,
                value=raw,
                fallback=f"the default {self.describe_default()}",
                reason=str(exc) or type(exc).__name__,
            )
            return Reading(self.default, "default", problem)

    def describe_range(self) -> str:
        """The values the parser accepts, when it says (``1 to 1000000``), else ``""``."""
        return str(getattr(self.parse, "range_text", ""))


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


class RangedParser(Generic[T]):
    """A parser that says which values it accepts (:attr:`range_text`), shown in
    the configuration reference next to the variable.

    :param parse: the parsing function.
    :param range_text: the accepted values, for example ``1 to 1000000``.
    """

    __slots__ = ("_parse", "range_text")

    def __init__(self, parse: Callable[[str], T], range_text: str) -> None:
        self._parse = parse
        self.range_text = range_text

    def __call__(self, raw: str) -> T:
        return self._parse(raw)


def _number_text(raw: str) -> str:
    text = raw.strip()
    if not text.isascii():
        raise ValueError("expected ASCII digits")
    return text


def _num(value: float) -> str:
    """*value* as a person writes it: ``86400000``, ``0.05``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _range_text(minimum: float | None, maximum: float | None, unit: str = "") -> str:
    suffix = f" {unit}" if unit else ""
    if minimum is not None and maximum is not None:
        return f"{_num(minimum)} to {_num(maximum)}{suffix}"
    if minimum is not None:
        return f">= {_num(minimum)}{suffix}"
    if maximum is not None:
        return f"<= {_num(maximum)}{suffix}"
    return ""


def parse_int(minimum: int | None = None, maximum: int | None = None) -> RangedParser[int]:
    """A parser for a decimal integer within ``[minimum, maximum]``.

    A size (a queue, a batch, a limit) should give a *maximum*
    (:data:`MAX_SIZE` unless a smaller one makes sense): the reference shows it.
    """

    def parse(raw: str) -> int:
        text = _number_text(raw)
        try:
            value = int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be <= {maximum}")
        return value

    return RangedParser(parse, _range_text(minimum, maximum))


def _finite(raw: str) -> float:
    text = _number_text(raw)
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def parse_float(
    minimum: float | None = None, maximum: float | None = None, *, unit: str = ""
) -> RangedParser[float]:
    """A parser for a finite number within ``[minimum, maximum]``.

    :param unit: what the number counts (``seconds``), for the reference.
    """

    def parse(raw: str) -> float:
        value = _finite(raw)
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= {_num(minimum)}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be <= {_num(maximum)}")
        return value

    return RangedParser(parse, _range_text(minimum, maximum, unit))


def parse_millis(
    minimum: float = 0, maximum: float = MAX_DURATION_MILLIS, *, positive: bool = False
) -> RangedParser[float]:
    """A parser for a duration given in milliseconds, returned in seconds.

    :param minimum: the smallest value accepted, in milliseconds.
    :param maximum: the largest, in milliseconds (one day unless given).
    :param positive: refuse 0 (and anything not above *minimum*): a period of
        0 would make a worker spin.
    """

    def parse(raw: str) -> float:
        value = _finite(raw)
        if positive and value <= minimum:
            raise ValueError(f"must be > {_num(minimum)}")
        if value < minimum:
            raise ValueError(f"must be >= {_num(minimum)}")
        if value > maximum:
            raise ValueError(f"must be <= {_num(maximum)} ({maximum / 3_600_000:g} h)")
        return value / 1000.0

    low = f"> {_num(minimum)}" if positive else _num(minimum)
    return RangedParser(parse, f"{low} to {_num(maximum)} ms")


_SCHEMES = ("http", "https")


def _check_host(host: str) -> None:
    if host.startswith("[") or ":" in host:
        return  # an IPv6 literal: urllib has checked its brackets
    try:
        host.encode("idna")
    except UnicodeError:
        raise ValueError(f"invalid host name {host!r}") from None


def parse_url(*, schemeless: bool = False) -> RangedParser[str]:
    """A parser for an ``http://`` or ``https://`` URL with a host, and a port
    from 1 to 65535 when one is given; with *schemeless*, ``host:port`` too (a
    gRPC target). The URL is returned stripped.
    """

    def parse(raw: str) -> str:
        value = raw.strip()
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("a URL has no spaces or control characters")
        try:
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in _SCHEMES and schemeless and "//" not in value:
                parts = urllib.parse.urlsplit("//" + value)
            port = parts.port
            host = parts.hostname
        except ValueError as exc:
            raise ValueError(f"malformed URL: {exc}") from None
        if parts.scheme and parts.scheme not in _SCHEMES:
            raise ValueError("expected an http:// or https:// URL")
        if not host:
            raise ValueError("the URL has no host")
        if port == 0:
            raise ValueError("port must be 1 to 65535")
        _check_host(host)
        return value

    what = "http(s)://host[:port][/path]" + (" or host:port" if schemeless else "")
    return RangedParser(parse, what)


def parse_list(raw: str) -> tuple[str, ...]:
    """A comma-separated list; items are stripped and empty items dropped."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_key_values(raw: str) -> tuple[tuple[str, str], ...]:
    """``key1=value1,key2=value2`` with percent-encoded values (W3C Baggage style).

    Used by ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_EXPORTER_OTLP_HEADERS``.
    Raises :class:`ValueError` naming the first malformed member (no ``=``, an
    empty key, a ``%`` not followed by two hex digits, percent-encoded bytes
    that are not UTF-8); the caller decides whether to keep the valid members
    (see :func:`split_key_values`).
    """
    pairs, bad = split_key_values(raw)
    if bad:
        raise ValueError(f"malformed member {bad[0]!r} ({member_problem(bad[0])})")
    return pairs


_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _decode(text: str) -> str:
    if _BAD_PERCENT.search(text):
        raise ValueError("a % not followed by two hex digits")
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ValueError("percent-encoded bytes that are not UTF-8") from None


def member_problem(member: str) -> str | None:
    """Why one ``key=value`` member is malformed, or ``None`` when it is not."""
    key, sep, value = member.partition("=")
    if not sep or not key.strip():
        return "expected key=value"
    try:
        _decode(key.strip())
        _decode(value.strip())
    except ValueError as exc:
        return str(exc)
    return None


def split_key_values(raw: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Split ``key=value`` members, returning the valid pairs and the malformed
    members (:func:`member_problem` says why each is)."""
    pairs: list[tuple[str, str]] = []
    bad: list[str] = []
    for member in raw.split(","):
        if not member.strip():
            continue
        if member_problem(member) is not None:
            bad.append(member.strip())
            continue
        key, _, value = member.partition("=")
        pairs.append((_decode(key.strip()), _decode(value.strip())))
    return tuple(pairs), tuple(bad)
