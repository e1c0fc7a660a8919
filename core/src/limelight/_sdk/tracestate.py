"""A ``TraceState`` holding keys of the current W3C grammar.

Assumption ``trace-state-dict`` (see :mod:`limelight._sdk`). The OpenTelemetry
API's ``TraceState`` validates its keys with the older Trace Context grammar
(a letter first, ``tenant@system`` with at most 241 and 14 characters), so
``TraceState([("foo@", "1")])`` drops the entry with a warning. The current
Level 2 text admits any ``( lcalpha / DIGIT ) 0*255( keychar )`` key, ``@``
among the key characters; :func:`trace_state` builds a ``TraceState`` of pairs
limelight's propagator has already validated against it, without the API's
check. Checked at import on a probe; the fallback is the API's constructor
(entries it refuses are dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.trace import TraceState

from . import fallback

__all__ = ["TRACE_STATE_DICT", "trace_state"]

_PROBE = (("foo@", "1"), ("1foo", "2"), ("t@" + "v" * 15, " 3"))


def _built(pairs: Sequence[tuple[str, str]]) -> TraceState:
    state = TraceState()
    state._dict = dict(pairs)
    return state


def trace_state_problem() -> str | None:
    """Why a ``TraceState`` does not read its entries from ``_dict``, or ``None``."""
    try:
        state = _built(_PROBE)
        header = ",".join(f"{k}={v}" for k, v in _PROBE)
        if state.to_header() != header:
            return f"to_header() gave {state.to_header()!r}"
        if list(state.items()) != list(_PROBE) or list(state) != [k for k, _ in _PROBE]:
            return f"the entries read back as {list(state.items())!r}"
        if len(state) != len(_PROBE) or "foo@" not in state or state["1foo"] != "2":
            return "len(), in or [] do not read the entries"
        if not state:
            return "a TraceState with entries is false"
    except Exception as exc:
        return repr(exc)
    return None


_problem = trace_state_problem()
TRACE_STATE_DICT = _problem is None
"""Whether :func:`trace_state` may set the entries of a ``TraceState`` directly."""
if not TRACE_STATE_DICT:
    fallback(
        "trace-state-dict",
        "TraceState(pairs), which drops keys of the current grammar "
        "that the API's older one refuses",
        _problem,
    )


def trace_state(pairs: Sequence[tuple[str, str]]) -> TraceState:
    """A ``TraceState`` of *pairs* (valid under the current W3C grammar, distinct
    keys, at most 32), in order."""
    if TRACE_STATE_DICT:
        return _built(pairs)
    return TraceState(list(pairs))
