"""Environment variables as trace-context carriers (OpenTelemetry's ``env-carriers``).

A parent process hands its context to a child it spawns through the
environment: ``TRACEPARENT``, ``TRACESTATE`` and ``BAGGAGE`` with the default
propagators, in general each field of the configured propagators upper-cased,
with every character other than a letter, a digit or ``_`` turned into ``_``
(``x-b3-traceid`` travels as ``X_B3_TRACEID``).

- :func:`inject_environ` returns a *copy* of an environment (``os.environ`` by
  default) carrying the given context, for the ``env=`` of a spawn: the
  propagators' variables inherited in it are removed first, so the child
  receives exactly the current context, never a stale one from further up.
  Neither ``os.environ`` nor the mapping passed in is changed, as the
  specification asks.
- :func:`extract_environ` reads a context out of an environment.
- :func:`adopt_environment_context` is what the process-wide start does with
  its own environment: the context found there becomes the current context
  of the thread (or task) that starts telemetry, once, at start (the
  specification: "child processes SHOULD extract context from environment
  variables at startup"). Spans started there without another parent, and in
  the tasks it creates, continue the parent's trace. Spans given an explicit
  parent (an HTTP server span with the request's extracted context) and spans
  of threads that do not carry the context (as Python threads never do) are
  not affected, so a long-lived service started by a traced process does not
  put its requests into the launcher's trace; ``LIMELIGHT_CONTEXT_FROM_ENV=false``
  turns adoption off altogether.

An oversized ``TRACESTATE`` loses whole entries from the end, as the W3C
propagator truncates any ``tracestate`` (see its ``max_tracestate_length``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, attach
from opentelemetry.propagators.textmap import Getter, Setter, TextMapPropagator

from limelight_hookspecs import Config

from ._context import current_context
from ._env import LIMELIGHT_CONTEXT_FROM_ENV
from ._propagation import inject_span
from ._sdk.imports import propagate
from ._state import STATE

__all__ = [
    "EnvironmentGetter",
    "EnvironmentSetter",
    "adopt_environment_context",
    "environ_name",
    "environ_variables",
    "environment_getter",
    "environment_setter",
    "extract_environ",
    "inject_environ",
]

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


@functools.lru_cache(maxsize=512)
def environ_name(field: str) -> str:
    """The environment variable carrying the propagator field *field*:
    ``traceparent`` is ``TRACEPARENT``, ``x-b3-traceid`` is ``X_B3_TRACEID``
    (remembered: a propagator asks for the same few names on every spawn)."""
    name = _NOT_NAME.sub("_", field).upper()
    if not name or name[0].isdigit():
        name = "_" + name
    return name


class EnvironmentGetter(Getter[Mapping[str, str]]):
    """Reads a propagator's fields from an environment mapping by their variable names."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(environ_name(key))
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return [k for k in carrier if isinstance(k, str) and environ_name(k) == k]


class EnvironmentSetter(Setter[MutableMapping[str, str]]):
    """Writes a propagator's fields into an environment mapping by their variable names."""

    def set(self, carrier: MutableMapping[str, str], key: str, value: str) -> None:
        carrier[environ_name(key)] = value


environment_getter = EnvironmentGetter()
"""A shared :class:`EnvironmentGetter`."""
environment_setter = EnvironmentSetter()
"""A shared :class:`EnvironmentSetter`."""


def environ_variables(textmap: TextMapPropagator | None = None) -> tuple[str, ...]:
    """The environment variable names of *textmap*'s fields (default: the global
    propagator's), sorted; cached for the propagator last asked about."""
    if textmap is None:
        textmap = propagate.get_global_textmap()
    cached, names = STATE.environ_names
    if cached is not textmap:
        names = tuple(sorted({environ_name(f) for f in textmap.fields}))
        STATE.environ_names = (textmap, names)
    return names


def inject_environ(
    env: Mapping[str, str] | None = None,
    context: Context | None = None,
    *,
    span: trace.Span | None = None,
) -> dict[str, str]:
    """A copy of *env* (default ``os.environ``) carrying *context* for a child process.

    The global propagator's variables found in *env* are left out of the copy
    (keys given as ``bytes`` too), then set from *context* (default: the
    current one), or, when *span* is given, with *span* as the child's parent
    and the rest (baggage) from *context*, as :func:`inject_span` writes it.
    """
    textmap = propagate.get_global_textmap()
    out: dict[Any, Any] = dict(os.environ if env is None else env)
    for name in environ_variables(textmap):
        out.pop(name, None)
        out.pop(name.encode(), None)
    if span is not None:
        inject_span(out, span, context, environment_setter)
    else:
        textmap.inject(out, context, environment_setter)
    return out


def extract_environ(
    env: Mapping[str, str] | None = None, context: Context | None = None
) -> Context:
    """The context the global propagator finds in *env* (default ``os.environ``),
    on top of *context* (default: an empty one)."""
    return propagate.extract(os.environ if env is None else env, context, getter=environment_getter)


def adopt_environment_context(config: Config) -> bool:
    """Attach the context found in ``config.environ`` as the current context of the
    caller; true when there was one to attach.

    Nothing is attached when ``LIMELIGHT_CONTEXT_FROM_ENV`` is false, when the
    environment has none of the propagators' variables, or when the caller
    already has a current span (it stays the parent).
    """
    environ = config.environ
    textmap = propagate.get_global_textmap()
    if not any(name in environ for name in environ_variables(textmap)):
        return False
    if not config.get(LIMELIGHT_CONTEXT_FROM_ENV):
        return False
    current = current_context()
    if trace.get_current_span(current).get_span_context().is_valid:
        return False
    extracted = textmap.extract(environ, current, getter=environment_getter)
    if extracted == current:
        return False
    attach(extracted)
    return True
