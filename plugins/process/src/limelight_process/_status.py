"""Seeing a child's exit status the moment its Popen object learns it.

``subprocess.Popen`` and multiprocessing's Popen classes store the exit status
in their ``returncode`` attribute, however it was obtained: ``wait()``,
``poll()``, ``communicate()``, ``run()`` killing the child on a timeout, the
collection of an object never waited on (``Popen.__del__`` polls it; a child
still running then is reaped by the next spawn), asyncio's child watcher
(which writes the status into the Popen object), multiprocessing's ``join()``,
``is_alive()``, ``exitcode`` and its cleanup of finished children.

While instrumented, ``returncode`` on those classes is a property that keeps
the value where the instance always kept it (its ``__dict__``) and, when a
status arrives for a child with a :class:`~limelight_process._instruments.Run`,
ends that run. Removing the property restores the classes exactly; instances
keep their values.
"""

from __future__ import annotations

from typing import Any

from ._instruments import Run

__all__ = ["RUN_KEY", "ReturncodeProperty", "watch"]

RUN_KEY = "_limelight_process_run"
"""Where a Popen object keeps the run its exit status ends."""

_NAME = "returncode"


def _get(self: Any) -> Any:
    return self.__dict__.get(_NAME)


def _set(self: Any, value: Any, _key: str = RUN_KEY, _name: str = _NAME) -> None:
    # also called from Popen.__del__ during interpreter shutdown: nothing global here
    state = self.__dict__
    state[_name] = value
    if value is not None and _key in state:
        run = state.pop(_key, None)
        if run is not None:
            run.exited(value)


def watch(popen: Any, run: Run) -> None:
    """End *run* when *popen* gets its exit status (at once if it has it already)."""
    state = popen.__dict__
    state[RUN_KEY] = run
    code = state.get(_NAME)
    if code is not None:
        # reaped before the run was attached: whoever pops the run ends it, once
        late = state.pop(RUN_KEY, None)
        if late is not None:
            late.exited(code)


class ReturncodeProperty:
    """The ``returncode`` property on one class, added and removed."""

    def __init__(self, owner: type) -> None:
        self.owner = owner
        self.installed = False

    def add(self) -> None:
        """Install the property; the class must not define ``returncode`` itself."""
        if _NAME in vars(self.owner):
            raise RuntimeError(f"{self.owner.__qualname__} defines {_NAME} already")
        setattr(
            self.owner, _NAME, property(_get, _set, doc="The exit status (watched by limelight).")
        )
        self.installed = True

    def remove(self) -> None:
        """Take the property away again (instances keep their values)."""
        if self.installed:
            self.installed = False
            if _NAME in vars(self.owner):
                delattr(self.owner, _NAME)
