"""pyee: ``EventEmitter.emit`` recorded, listeners counted.

Patched on ``pyee.EventEmitter`` (so on every emitter class built on it)
through :class:`limelight.surface.Patches`:

- ``emit``: a dispatch. ``eventbus_rejected_total`` counts ``no_receiver``
  when no listener was called (``emit`` returned false, or the ``error`` event
  had no listener and pyee raised it at the caller) and ``error`` when a
  listener raised; the optional span covers the listeners run in ``emit``.
  pyee's own ``new_listener`` event is not recorded.
- ``_add_event_handler`` (``on``, ``add_listener``, ``listens_to``, ``once``),
  ``_remove_listener`` (``remove_listener``, a ``once`` listener removing
  itself) and ``remove_all_listeners``: the listeners may have changed, so
  the event is counted again (``len(emitter.listeners(event))``).

``EventEmitter`` lets a listener's exception leave ``emit``, which counts it.
``AsyncIOEventEmitter`` and ``ExecutorEventEmitter`` catch it and emit it
as an ``error`` event instead, coroutines and executor jobs fail after
``emit`` returned: their ``_emit_run`` is patched to hand the library a
wrapper of each listener that counts its failure (a coroutine's when it
ends, through a proxy of it the task drives) and gives back exactly what the
listener returned or raised. Other emitter classes (Twisted, Trio) are
counted through ``emit``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import functools
import threading
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from limelight.surface import Patches

from ._core import (
    ALL,
    BusKind,
    Dispatch,
    Instruments,
    Topic,
    binding,
    changed,
    fail,
    observe,
    report,
)

__all__ = ["KIND", "install", "remove"]


def _keys(emitter: Any) -> Any:
    return emitter.event_names()


def _count(emitter: Any, event: object) -> int:
    return len(emitter.listeners(event))


def _topic(inst: Instruments, event: object) -> Topic:
    return inst.event_topic(event)


KIND = BusKind("pyee", _keys, _count, _topic)
"""How a pyee emitter is counted: its listeners, per event."""

_get = binding.get
_iscoroutine = asyncio.iscoroutine
_Future = asyncio.Future


class _Current(threading.local):
    """The dispatch under way on this thread, for emitters that run listeners apart."""

    topic: Topic | None = None
    dispatch: Dispatch | None = None


_current = _Current()
_ROUTING: tuple[type, ...] = ()
"""The emitter classes whose ``_emit_run`` is patched (they route listener failures)."""


def _wrap_emit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def emit(self: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        inst = _get()
        if not inst.enabled:
            return original(self, event, *args, **kwargs)
        topic: Topic | None = None
        unheard = False
        dispatch: Dispatch | None = None
        try:
            found = inst.event_topic(event)
            routes = isinstance(self, _ROUTING)
            if found.meta:
                if not routes:
                    return original(self, event, *args, **kwargs)
            else:
                topic = found
                observe(self, KIND, inst)
                # pyee raises an "error" event nobody listens to at the caller
                unheard = found.error_event and not self.listeners(event)
                dispatch = inst.start(found) if inst.spans else None
        except Exception as exc:
            report("emit", exc)
            return original(self, event, *args, **kwargs)
        if routes:
            current = _current
            outer_topic, outer_dispatch = current.topic, current.dispatch
            current.topic, current.dispatch = topic, dispatch
        try:
            handled = original(self, event, *args, **kwargs)
        except BaseException as exc:
            if topic is not None and isinstance(exc, Exception):
                try:
                    if unheard:
                        topic.no_receiver()
                    elif not routes:  # routed failures were counted as they happened
                        topic.error()
                except Exception as exc2:
                    report("count rejection", exc2)
            if dispatch is not None:
                dispatch.end(exc)
            raise
        finally:
            if routes:
                current.topic, current.dispatch = outer_topic, outer_dispatch
        if topic is not None:
            if not handled:
                try:
                    topic.no_receiver()
                except Exception as exc:
                    report("count rejection", exc)
            if dispatch is not None:
                dispatch.end()
        return handled

    return emit


class _Listener:
    """A listener as handed to a routing emitter's ``_emit_run``: counts its failure.

    Calls the listener with what the library passes and gives back exactly what
    it returned or raised; the failure is counted first (and the dispatch span
    marked, when it happens while the span is current).
    """

    __slots__ = ("dispatch", "listener", "topic")

    def __init__(self, listener: Callable[..., Any], topic: Topic, dispatch: Dispatch | None):
        self.listener = listener
        self.topic = topic
        self.dispatch = dispatch

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.listener(*args, **kwargs)
        except Exception as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        try:
            self.topic.error()
            dispatch = self.dispatch
            if dispatch is not None and _current.dispatch is dispatch:
                fail(dispatch.span, exc)
        except Exception as exc2:
            report("count rejection", exc2)


class _AsyncListener(_Listener):
    """For ``AsyncIOEventEmitter``: a coroutine's or future's failure is counted when it ends."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self.listener(*args, **kwargs)
        except Exception as exc:
            self._failed(exc)
            raise
        if _iscoroutine(result):
            return _Watched(result, self.topic)
        if isinstance(result, _Future):
            result.add_done_callback(self._done)
        return result

    def _done(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            try:
                self.topic.error()
            except Exception as exc:
                report("count rejection", exc)


class _Watched(collections.abc.Coroutine[Any, Any, Any]):
    """A listener's coroutine as the task runs it: counts its failure when it ends.

    Forwards ``send``, ``throw`` and ``close`` to the coroutine itself (not
    through a coroutine of its own, which a task cancelled before its first step
    would never start, leaving the listener's coroutine never awaited), so the
    task drives the listener's coroutine exactly as it would without it.
    """

    __slots__ = ("_coroutine", "_topic")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], topic: Topic) -> None:
        self._coroutine = coroutine
        self._topic = topic

    def send(self, value: Any) -> Any:
        try:
            return self._coroutine.send(value)
        except StopIteration:
            raise
        except Exception:
            self._failed()
            raise

    def throw(self, *args: Any) -> Any:
        try:
            return self._coroutine.throw(*args)
        except StopIteration:
            raise
        except Exception:
            self._failed()
            raise

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _Watched:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def _failed(self) -> None:
        try:
            self._topic.error()
        except Exception as exc:
            report("count rejection", exc)


def _wrap_emit_run(original: Callable[..., Any], listener: type[_Listener]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _emit_run(self: Any, f: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        topic = _current.topic
        if topic is None:
            return original(self, f, args, kwargs)
        return original(self, listener(f, topic, _current.dispatch), args, kwargs)

    return _emit_run


def _wrap_change(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def change(self: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, event, *args, **kwargs)
        finally:
            changed(self, KIND, event)

    return change


def _wrap_remove_all(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def remove_all_listeners(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            event = args[0] if args else kwargs.get("event")
            changed(self, KIND, ALL if event is None else event)

    return remove_all_listeners


def install(patches: Patches) -> None:
    """Patch ``pyee.EventEmitter``, and the ``_emit_run`` of the routing emitters."""
    global _ROUTING
    import pyee
    from pyee.asyncio import AsyncIOEventEmitter
    from pyee.executor import ExecutorEventEmitter

    base = pyee.EventEmitter
    patches.wrap(base, "emit", _wrap_emit(base.emit))
    patches.wrap(base, "_add_event_handler", _wrap_change(base._add_event_handler))
    patches.wrap(base, "_remove_listener", _wrap_change(base._remove_listener))
    patches.wrap(base, "remove_all_listeners", _wrap_remove_all(base.remove_all_listeners))
    asyncio_run = AsyncIOEventEmitter._emit_run
    patches.wrap(AsyncIOEventEmitter, "_emit_run", _wrap_emit_run(asyncio_run, _AsyncListener))
    executor_run = ExecutorEventEmitter._emit_run
    patches.wrap(ExecutorEventEmitter, "_emit_run", _wrap_emit_run(executor_run, _Listener))
    _ROUTING = (AsyncIOEventEmitter, ExecutorEventEmitter)


def remove() -> None:
    """Take the emitters' listeners out of the gauge (they are no longer followed)."""
    global _ROUTING
    from ._core import forget

    _ROUTING = ()
    forget(KIND)
