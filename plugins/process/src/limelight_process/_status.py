"""Seeing a child's exit status the moment its Popen object learns it.

``subprocess.Popen`` and multiprocessing's Popen classes store the exit status
in their ``returncode`` attribute, however it was obtained: ``wait()``,
``poll()``, ``communicate()``, ``run()`` killing the child on a timeout, the
collection of an object never waited on (``Popen.__del__`` polls it; a child
still running then is reaped by the next spawn), asyncio's child watcher
(which writes the status into the Popen object), multiprocessing's ``join()``,
``is_alive()``, ``exitcode`` and its cleanup of finished children.

While instrumented, ``returncode`` on those classes is a property whose
setter, when a status arrives for a child with a
:class:`~limelight_process._instruments.Run`, ends that run. Removing the
property restores the classes exactly, and every instance has its value where
it always had it (its ``__dict__``), so objects made before ``instrument()`` or
used after ``uninstrument()`` behave as before.

``subprocess`` reads ``returncode`` a dozen times per ``run()`` (every
``wait`` and ``poll`` loop tests it), so the property costs as little as an
attribute can: while it is installed the value is an ordinary instance
attribute under another name (:data:`MIRROR`), written by the setter and read
by an ``operator.attrgetter`` (no Python runs on a read, and the instance's
``__dict__`` is never asked for: that would turn every other attribute of the
object into a slower dictionary lookup). An instance made before the property
was added finds a class-level default of :data:`MIRROR` that reads its
``__dict__``. Each instance the setter writes is remembered through a weak
reference, so that removing the property can move its value back into its
``__dict__``.
"""

from __future__ import annotations

import weakref
from operator import attrgetter
from typing import Any

from ._instruments import Run

__all__ = ["MIRROR", "RUN_KEY", "ReturncodeProperty", "watch"]

RUN_KEY = "_limelight_process_run"
"""The attribute where a Popen object keeps the run its exit status ends."""
MIRROR = "_limelight_process_returncode"
"""The attribute where a Popen object keeps its exit status while the property is installed."""

_NAME = "returncode"

_written: set[weakref.ref[Any]] = set()
"""The instances whose status the setter wrote (a reference leaves as its object dies)."""


class _Unmirrored:
    """The class-level default of :data:`MIRROR`: an instance that has no status of
    its own there (made before the property was added) has it where it always had it."""

    __slots__ = ()

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance.__dict__.get(_NAME)


def _set(
    self: Any,
    value: Any,
    _remember: Any = _written.add,
    _ref: Any = weakref.ref,
    _forget: Any = _written.discard,
) -> None:
    # also called from Popen.__del__ during interpreter shutdown: nothing global here
    self._limelight_process_returncode = value
    try:
        _remember(_ref(self, _forget))
    except TypeError:  # an instance no weak reference can name: its __dict__ keeps it too
        self.__dict__["returncode"] = value
    if value is not None:
        run = self._limelight_process_run
        if run is not None:
            # two threads may both find it: the run itself ends once
            self._limelight_process_run = None
            run.exited(value)


def watch(popen: Any, run: Run) -> None:
    """End *run* when *popen* gets its exit status (at once if it has it already)."""
    popen._limelight_process_run = run
    code = popen.returncode
    if code is not None:
        # reaped before the run was attached: the run ends once, whoever ends it
        popen._limelight_process_run = None
        run.exited(code)


class ReturncodeProperty:
    """The ``returncode`` property on one class, added and removed."""

    def __init__(self, owner: type) -> None:
        self.owner = owner
        self.installed = False

    def add(self) -> None:
        """Install the property; the class must not define ``returncode`` itself."""
        owner = self.owner
        if any(name in vars(owner) for name in (_NAME, MIRROR, RUN_KEY)):
            raise RuntimeError(f"{owner.__qualname__} defines {_NAME} already")
        setattr(owner, RUN_KEY, None)
        setattr(owner, MIRROR, _Unmirrored())
        setattr(
            owner,
            _NAME,
            property(attrgetter(MIRROR), _set, doc="The exit status (watched by limelight)."),
        )
        self.installed = True

    def remove(self) -> None:
        """Take the property away again; each instance's status goes back to its ``__dict__``."""
        if not self.installed:
            return
        self.installed = False
        owner = self.owner
        for ref in list(_written):
            instance = ref()
            if instance is None or not isinstance(instance, owner):
                continue
            _written.discard(ref)
            state = instance.__dict__
            if MIRROR in state:
                state[_NAME] = state.pop(MIRROR)
            state.pop(RUN_KEY, None)
        for name in (_NAME, MIRROR, RUN_KEY):
            if name in vars(owner):
                delattr(owner, name)
