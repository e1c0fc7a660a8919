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
  changed, so the signal is counted again. ``_disconnect`` is the one place
  every removal goes through: ``disconnect``, the cleanup blinker runs when a
  weakly referenced receiver is collected, and the dead references ``send``
  skips.
- the cleanup blinker runs when a weakly referenced sender is collected
  (``_cleanup_sender`` up to blinker 1.7, the function ``_make_cleanup_sender``
  makes from 1.8): it drops that sender's receivers without going through
  ``_disconnect``, so the signal is counted again after it too.

A receiver is counted while it can be called: while it is connected for
``ANY`` or for at least one sender. blinker keeps a receiver disconnected from
its last sender (``disconnect(receiver, sender=a)``, or ``a`` collected) in
``signal.receivers`` until it is disconnected from ``ANY`` or collected, but
``send`` no longer calls it, so it is not counted: the count reads blinker's
own bookkeeping of each receiver's senders (``_by_receiver``).
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


_any_id: object = 0
"""blinker's identity of ``ANY`` (``blinker.base.ANY_ID``, read at install)."""
_following = False
"""Whether blinker is instrumented: a sender cleanup made while it was counts only then."""


def _count(signal: Any, key: object) -> int:
    """The receivers of *signal* that can be called: connected for ``ANY`` or a sender."""
    receivers = signal.receivers
    held = len(receivers)
    if not held:
        return 0
    try:
        everyone = signal._by_sender.get(_any_id)
        # blinker adds a receiver for ANY to receivers with it and takes it out of both
        # together, so when as many are connected for ANY as are held, they are all of them
        if everyone is not None and len(everyone) >= held:
            return held
        senders_of = signal._by_receiver.get  # get, not []: blinker's defaultdict left as is
    except AttributeError:  # not blinker's bookkeeping: every receiver it holds
        return held
    return sum(1 for receiver_id in tuple(receivers) if senders_of(receiver_id))


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


def _wrap_cleanup_sender(original: Callable[..., Any]) -> Callable[..., Any]:
    """blinker up to 1.7: the method a weakly referenced sender's reference calls."""

    @functools.wraps(original)
    def cleanup_sender(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            if _following:  # bound at connect, so called after uninstrument too
                changed(self, KIND, ALL)

    return cleanup_sender


def _wrap_make_cleanup_sender(original: Callable[..., Any]) -> Callable[..., Any]:
    """blinker from 1.8: the maker of the function a weak sender's reference calls."""

    @functools.wraps(original)
    def make_cleanup_sender(self: Any, *args: Any, **kwargs: Any) -> Any:
        cleanup = original(self, *args, **kwargs)

        def cleanup_sender(ref: Any) -> None:
            try:
                cleanup(ref)
            finally:
                if _following:  # kept by the sender's reference, after uninstrument too
                    changed(self, KIND, ALL)

        return cleanup_sender

    return make_cleanup_sender


def install(patches: Patches) -> None:
    """Patch ``blinker.Signal``; count the signals of blinker's default namespace."""
    import blinker
    import blinker.base

    global _any_id, _following
    _any_id = getattr(blinker.base, "ANY_ID", 0)
    signal = blinker.Signal
    patches.wrap(signal, "send", _wrap_send(signal.send))
    patches.wrap(signal, "send_async", _wrap_send_async(signal.send_async))
    patches.wrap(signal, "connect", _wrap_change(signal.connect))
    patches.wrap(signal, "_disconnect", _wrap_change(signal._disconnect))
    patches.wrap(signal, "_clear_state", _wrap_change(signal._clear_state))
    # a weak sender's cleanup: made by _make_cleanup_sender from blinker 1.8, a method before
    for name, wrap in (
        ("_make_cleanup_sender", _wrap_make_cleanup_sender),
        ("_cleanup_sender", _wrap_cleanup_sender),
    ):
        original = getattr(signal, name, None)
        if original is not None:
            patches.wrap(signal, name, wrap(original))
            break
    _following = True
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

    global _following
    _following = False
    forget(KIND)
