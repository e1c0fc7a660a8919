"""blinker: ``Signal.send`` and ``send_async`` recorded, receivers counted.

Patched on ``blinker.Signal`` through :class:`limelight.surface.Patches`, so
every signal (``NamedSignal``, a ``Namespace``'s, Flask's, a subclass that does
not override them) is instrumented, whenever it was made:

- ``send`` and ``send_async``: a dispatch. ``eventbus_rejected_total`` counts
  ``error`` when the send raised (blinker lets a receiver's exception
  propagate, and the receivers after it are not called) and ``no_receiver``
  when no receiver was called (a muted signal is not counted); the optional
  span covers the receivers.
- ``connect``, ``_disconnect`` and ``_clear_state``: the receivers may have
  changed, so the signal is counted again (``len(signal.receivers)``).
  ``_disconnect`` is the one place every removal goes through: ``disconnect``,
  the cleanup blinker runs when a weakly referenced receiver is collected, and
  the dead references ``send`` skips.

A receiver disconnected from one sender stays in ``signal.receivers`` (blinker
keeps it until it is disconnected from every sender or collected), and is
counted until then.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from limelight.surface import Patches

from ._core import (
    ALL,
    ERROR,
    NO_RECEIVER,
    BusKind,
    Instruments,
    Topic,
    binding,
    changed,
    observe,
    report,
    signal_name,
)

__all__ = ["KIND", "install", "remove"]


def _keys(signal: Any) -> tuple[str | None, ...]:
    return (signal_name(signal),)


def _count(signal: Any, key: object) -> int:
    return len(signal.receivers)


def _topic(inst: Instruments, key: object) -> Topic:
    return inst.signal_topic(key if type(key) is str else None)


KIND = BusKind("blinker", _keys, _count, _topic)
"""How a blinker signal is counted: its receivers, under its name."""

_get = binding.get


def _topic_of(signal: Any, state: Any, inst: Instruments) -> Topic:
    """The topic of *signal*, kept with its bus state for *inst*."""
    if state is not None and state.topic_for is inst and state.topic is not None:
        topic: Topic = state.topic
        return topic
    topic = inst.signal_topic(signal_name(signal))
    if state is not None:
        state.topic, state.topic_for = topic, inst
    return topic


def _rejected(inst: Instruments, signal: Any, state: Any, reason: str) -> None:
    try:
        topic = _topic_of(signal, state, inst)
        (topic.no_receiver if reason == NO_RECEIVER else topic.error)()
    except Exception as exc:
        report("count rejection", exc)


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        inst = _get()
        if not inst.enabled:
            return original(self, *args, **kwargs)
        try:
            state = observe(self, KIND, inst)
            dispatch = inst.start(_topic_of(self, state, inst)) if inst.spans else None
        except Exception as exc:
            report("send", exc)
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, Exception):
                _rejected(inst, self, state, ERROR)
            if dispatch is not None:
                dispatch.end(exc)
            raise
        if not result and not self.is_muted:
            _rejected(inst, self, state, NO_RECEIVER)
        if dispatch is not None:
            dispatch.end()
        return result

    return send


def _wrap_send_async(
    original: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(original)
    async def send_async(self: Any, *args: Any, **kwargs: Any) -> Any:
        inst = _get()
        if not inst.enabled:
            return await original(self, *args, **kwargs)
        try:
            state = observe(self, KIND, inst)
            dispatch = inst.start(_topic_of(self, state, inst)) if inst.spans else None
        except Exception as exc:
            report("send_async", exc)
            return await original(self, *args, **kwargs)
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, Exception):
                _rejected(inst, self, state, ERROR)
            if dispatch is not None:
                dispatch.end(exc)
            raise
        if not result and not self.is_muted:
            _rejected(inst, self, state, NO_RECEIVER)
        if dispatch is not None:
            dispatch.end()
        return result

    return send_async


def _wrap_change(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def change(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            changed(self, KIND, ALL)

    return change


def install(patches: Patches) -> None:
    """Patch ``blinker.Signal``; count the signals of blinker's default namespace."""
    import blinker

    signal = blinker.Signal
    patches.wrap(signal, "send", _wrap_send(signal.send))
    patches.wrap(signal, "send_async", _wrap_send_async(signal.send_async))
    patches.wrap(signal, "connect", _wrap_change(signal.connect))
    patches.wrap(signal, "_disconnect", _wrap_change(signal._disconnect))
    patches.wrap(signal, "_clear_state", _wrap_change(signal._clear_state))
    # signals made with blinker.signal(name) are known at once; any other is known
    # from its first use (a send, connect or disconnect) after this
    namespace = getattr(blinker, "default_namespace", None)  # public from blinker 1.7
    if namespace is None:
        namespace = getattr(blinker.signal, "__self__", {})
    for named in list(namespace.values()):
        changed(named, KIND, ALL)


def remove() -> None:
    """Take the signals' receivers out of the gauge (they are no longer followed)."""
    from ._core import forget

    forget(KIND)
