"""Importing the OpenTelemetry API and SDK whatever the environment says.

Two OpenTelemetry modules read a variable when they are first imported and
raise on a value they cannot use, so that the process dies in an import,
before limelight could report the value:

``opentelemetry.propagate`` builds its global propagator from
``OTEL_PROPAGATORS`` when it is first imported, and raises ``ValueError``
(``Propagator b3 not found``) for a name no ``opentelemetry_propagator``
entry point has, an empty item (``tracecontext,``) included; a propagator
whose entry point fails to load raises too. The process then dies in an
import, before limelight could report the value.

Importing this module first makes that import safe: when the variable names
anything but ``tracecontext``, ``baggage`` or ``none``, the names that load
are kept (the default ``tracecontext,baggage`` when none does) in the
environment for the duration of the import only, and the variable is given
back as it was. limelight's configuration reads the original value and
reports each unknown name with the names that are installed; the global
propagator is replaced at start anyway. When the variable names only
standard propagators (the usual case) nothing is imported here.

``opentelemetry.sdk.trace`` reads ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` (a
deprecated module constant) and raises ``ValueError`` unless it is empty,
``unset`` or an integer of 0 or more. The variable is hidden for the duration
of that import when it is anything else; limelight reports it, and hands the
SDK explicit span limits (see ``limelight._tracing.span_limits``), so the SDK
never reads it again.

``import limelight`` runs these guards first (and :mod:`limelight._sdk`
imports this module before anything else), so they run before any part of
limelight, or the application after ``import limelight``, imports either
module. This module imports only the standard library, and in the usual case
nothing at all.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["importable_propagators", "make_propagate_importable", "make_sdk_trace_importable"]

_VARIABLE = "OTEL_PROPAGATORS"
_GROUP = "opentelemetry_propagator"
_STANDARD = frozenset({"tracecontext", "baggage"})
_lock = threading.Lock()


def _loads(name: str) -> bool:
    from importlib.metadata import entry_points  # only for an unusual OTEL_PROPAGATORS

    for ep in entry_points(group=_GROUP, name=name):
        try:
            loaded = ep.load()
            if isinstance(loaded, type):
                loaded()
        except Exception:
            return False
        return True
    return False


def importable_propagators(raw: str) -> str | None:
    """What ``OTEL_PROPAGATORS`` must say for ``opentelemetry.propagate`` to import,
    or ``None`` when *raw* is safe as it is."""
    items = [item.strip() for item in raw.split(",")]
    if all(item in _STANDARD or item.lower() == "none" for item in items):
        return None
    kept: list[str] = []
    for item in items:
        if item.lower() == "none":
            return "none"
        for name in dict.fromkeys((item, item.lower())):
            if name and name not in kept and (name in _STANDARD or _loads(name)):
                kept.append(name)
                break
    return ",".join(kept) or "tracecontext,baggage"


def make_propagate_importable() -> None:
    """Import ``opentelemetry.propagate`` now if ``OTEL_PROPAGATORS`` would make
    its import raise, with the variable reduced to what loads for that import."""
    if "opentelemetry.propagate" in sys.modules:
        return
    raw = os.environ.get(_VARIABLE)
    if not raw:
        return
    with _lock:
        safe = importable_propagators(raw)
        if safe is None:
            return
        os.environ[_VARIABLE] = safe
        try:
            import opentelemetry.propagate
        except Exception:  # a propagator that loaded here and fails there
            sys.modules.pop("opentelemetry.propagate", None)
            os.environ[_VARIABLE] = "tracecontext,baggage"
            import opentelemetry.propagate  # noqa: F401
        finally:
            os.environ[_VARIABLE] = raw


_SPAN_LIMIT = "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"


def _sdk_accepts_limit(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("", "unset"):
        return True
    try:
        return int(text) >= 0
    except ValueError:
        return False


def make_sdk_trace_importable() -> None:
    """Import ``opentelemetry.sdk.trace`` now, without ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``
    in the environment, if its value would make that import raise."""
    if "opentelemetry.sdk.trace" in sys.modules:
        return
    raw = os.environ.get(_SPAN_LIMIT)
    if raw is None or _sdk_accepts_limit(raw):
        return
    with _lock:
        del os.environ[_SPAN_LIMIT]
        try:
            import opentelemetry.sdk.trace  # noqa: F401
        finally:
            os.environ[_SPAN_LIMIT] = raw


make_propagate_importable()
make_sdk_trace_importable()
