"""What a surface plugin needs, for plugin authors.

A surface records one kind of work (requests, messages, spawned processes,
queries). It builds its instruments once per telemetry start through a
:class:`TelemetryBinding`, reads the current span with :func:`current_span`
(the cost a hot path can pay; :func:`span_in` and :func:`with_span` read and set
the span of a given context alike), names failures with :func:`error_type`, and
reports its own bookkeeping failures once with :func:`report_failure`
instead of raising into the instrumented call. A context holding a true value
under :data:`SUPPRESS_INSTRUMENTATION_KEY` (or, for HTTP clients,
:data:`SUPPRESS_HTTP_INSTRUMENTATION_KEY`) asks it to record nothing: an
exporter's own calls, for example (``limelight.export.suppressed``).

Every surface that instruments a library globally follows one contract,
:class:`Instrumentation`: ``instrument()`` installs it for every supported
library that is importable (idempotent), ``uninstrument()`` restores each
library exactly as it was, ``is_instrumented()`` says whether it is in place::

    import limelight_jobs

    limelight_jobs.instrument()          # every supported library that is installed
    limelight_jobs.instrument("rq")      # one of them; ImportError when it is not
    limelight_jobs.is_instrumented("rq")
    limelight_jobs.uninstrument()

``Instrumentation.instrument_on_import()`` is the lazy form a plugin uses when
telemetry starts: each library is instrumented when the application imports
it (at once if it already has), and a library never imported is never
imported by limelight. Where :data:`LIMELIGHT_AUTO_INSTRUMENT` is true
(``limelight run``), every surface does so for every library it supports.

A plugin builds it from one :class:`Instrumentor` per library, whose install
function patches through :class:`Patches`, so removal restores what was there
by construction. See ``docs/plugin-authors.md``.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from limelight_hookspecs import SpanRole

from . import _imports
from ._autostart import LIMELIGHT_AUTO_INSTRUMENT
from ._binding import TelemetryBinding
from ._context import current_context, current_span, span_in, with_span
from ._failures import report_failure
from ._fixed_ids import start_span_with_id
from ._sdk.context import SUPPRESS_HTTP_INSTRUMENTATION_KEY, SUPPRESS_INSTRUMENTATION_KEY
from ._spans import error_type

if TYPE_CHECKING:
    from ._logs import LogEmitter

__all__ = [
    "LIMELIGHT_AUTO_INSTRUMENT",
    "SUPPRESS_HTTP_INSTRUMENTATION_KEY",
    "SUPPRESS_INSTRUMENTATION_KEY",
    "Instrumentation",
    "Instrumentor",
    "LogEmitter",
    "Patches",
    "SpanRole",
    "TelemetryBinding",
    "current_context",
    "current_span",
    "error_type",
    "report_failure",
    "span_in",
    "start_span_with_id",
    "with_span",
]

_MISSING = object()


def __getattr__(name: str) -> Any:
    # the log pipeline's types (and the OpenTelemetry logs SDK under them) load only
    # when asked for: a surface that never hands log records over never imports them
    if name == "LogEmitter":
        from ._logs import LogEmitter

        globals()[name] = LogEmitter
        return LogEmitter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Patches:
    """Attributes replaced on classes or modules, restorable exactly.

    :meth:`wrap` records what the owner itself held under the name (or that it
    held nothing, the attribute being inherited or absent) before replacing
    it; :meth:`restore` puts every recorded value back in reverse order, and
    deletes the attribute where the owner had none, so a patched subclass
    inherits again from its base.
    """

    __slots__ = ("_saved",)

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, object]] = []

    def wrap(self, owner: Any, name: str, replacement: object) -> Any:
        """Replace ``owner.name`` with *replacement*; return the value it replaces
        (looked up as ``getattr`` would, so an inherited method is found)."""
        original = getattr(owner, name)
        saved = vars(owner).get(name, _MISSING)
        setattr(owner, name, replacement)
        self._saved.append((owner, name, saved))
        return original

    def restore(self) -> None:
        """Undo every :meth:`wrap`, last first."""
        while self._saved:
            owner, name, saved = self._saved.pop()
            if saved is _MISSING:
                if name in vars(owner):
                    delattr(owner, name)
            else:
                setattr(owner, name, saved)

    def __len__(self) -> int:
        return len(self._saved)


class Instrumentor:
    """The instrumentation of one library.

    :param library: the import name of the library (``"pika"``); it is imported
        only when :meth:`instrument` is called and the library is installed.
    :param install: called with a fresh :class:`Patches` (the library already
        imported); it patches through it, or does its own setup.
    :param remove: extra undo work besides restoring the patches, if any.
    :param name: the name users select it by; *library* by default.
    """

    def __init__(
        self,
        library: str,
        install: Callable[[Patches], object],
        *,
        remove: Callable[[], object] | None = None,
        name: str | None = None,
    ) -> None:
        self.library = library
        self.name = name or library
        self._install = install
        self._remove = remove
        self._patches: Patches | None = None
        self._lock = threading.RLock()
        self._on_import: Callable[[ModuleType], object] | None = None

    def available(self) -> bool:
        """Whether the library is installed (found without importing it)."""
        try:
            return importlib.util.find_spec(self.library) is not None
        except (ImportError, ValueError):
            return False

    def is_instrumented(self) -> bool:
        """Whether the instrumentation is in place."""
        return self._patches is not None

    def is_waiting(self) -> bool:
        """Whether :meth:`instrument_on_import` waits for the library to be imported."""
        return self._on_import is not None

    def instrument(self) -> bool:
        """Install the instrumentation; false when it already was.

        :raises ImportError: the library is not installed.
        :raises Exception: what the install function raised, after every patch
            it made was undone.
        """
        if self._patches is not None:
            return False
        # imported before the lock is taken: an import another thread is running
        # finishes first (and may instrument the library from its post-import hook)
        importlib.import_module(self.library)
        # a library the install imports (through the plugin's own modules, say) is
        # instrumented after it, never from a half-imported module, and outside this lock
        with _imports.deferred(), self._lock:
            if self.is_instrumented():  # by the thread that imported it meanwhile
                return False
            self._cancel_wait()
            patches = Patches()
            try:
                self._install(patches)
            except BaseException:
                patches.restore()
                raise
            self._patches = patches
        return True

    def instrument_on_import(self, component: str) -> bool:
        """Instrument the library now if it is imported, else as soon as the
        application imports it; never import it.

        A failure to instrument is reported once under *component* and the
        library is left as it is. Idempotent; :meth:`uninstrument` stops the wait.
        Returns false when the library was already instrumented or waited for.

        :param component: the plugin's name, used when a failure is reported.
        """
        with self._lock:
            if self._patches is not None or self._on_import is not None:
                return False

            def on_import(module: ModuleType) -> None:
                with self._lock:
                    if self._on_import is not on_import:  # uninstrumented meanwhile
                        return
                    self._on_import = None
                try:
                    self.instrument()
                except Exception as exc:
                    report_failure(component, f"instrument {self.name}", exc)

            self._on_import = on_import
        _imports.when_imported(self.library, on_import)
        return True

    def _cancel_wait(self) -> None:
        waiting, self._on_import = self._on_import, None
        if waiting is not None:
            _imports.cancel(self.library, waiting)

    def uninstrument(self) -> bool:
        """Restore the library exactly (and stop waiting for its import); false when
        it was neither instrumented nor waited for."""
        with self._lock:
            waited = self._on_import is not None
            self._cancel_wait()
            patches, self._patches = self._patches, None
            if patches is None:
                return waited
            try:
                if self._remove is not None:
                    self._remove()
            finally:
                patches.restore()
        return True


class Instrumentation:
    """A surface's instrumentors behind the one contract.

    :param component: the plugin's name, used when a failure is reported.
    :param instrumentors: one per supported library.
    """

    def __init__(self, component: str, instrumentors: Iterable[Instrumentor]) -> None:
        self.component = component
        self.instrumentors = {i.name: i for i in instrumentors}

    @property
    def names(self) -> tuple[str, ...]:
        """The libraries this surface can instrument, by name."""
        return tuple(self.instrumentors)

    def _select(self, names: tuple[str, ...]) -> list[Instrumentor]:
        unknown = [n for n in names if n not in self.instrumentors]
        if unknown:
            raise ValueError(
                f"{self.component} cannot instrument {', '.join(map(repr, unknown))} "
                f"(it knows {', '.join(self.instrumentors)})"
            )
        return [self.instrumentors[n] for n in names]

    def instrument(self, *names: str) -> tuple[str, ...]:
        """Instrument the libraries called *names*, or, with none given, every
        supported library that is installed; return those instrumented by this call.

        Idempotent. With names given, a library that is missing or fails to
        instrument raises (nothing of it stays patched); with none given, a
        failure is reported once and the other libraries are still instrumented.
        """
        done: list[str] = []
        if names:
            for instrumentor in self._select(names):
                if instrumentor.instrument():
                    done.append(instrumentor.name)
            return tuple(done)
        for instrumentor in self.instrumentors.values():
            if instrumentor.is_instrumented() or not instrumentor.available():
                continue
            try:
                if instrumentor.instrument():
                    done.append(instrumentor.name)
            except Exception as exc:
                report_failure(self.component, f"instrument {instrumentor.name}", exc)
        return tuple(done)

    def instrument_on_import(self, *names: str) -> tuple[str, ...]:
        """Instrument the libraries called *names* (every supported one, with none
        given) each when the application imports it, or now if it already has;
        return those instrumented or waited for by this call.

        Nothing is imported: a library that is not installed, or that the
        application never imports, is never touched. A failure to instrument is
        reported once and the library left as it is. Idempotent;
        :meth:`uninstrument` stops the wait.
        """
        chosen = self._select(names) if names else list(self.instrumentors.values())
        return tuple(i.name for i in chosen if i.instrument_on_import(self.component))

    def uninstrument(self, *names: str) -> tuple[str, ...]:
        """Restore the libraries called *names* (every one, with none given), and stop
        waiting for their import; return those that were instrumented or waited for."""
        chosen = self._select(names) if names else list(self.instrumentors.values())
        return tuple(i.name for i in chosen if i.uninstrument())

    def is_instrumented(self, name: str | None = None) -> bool:
        """Whether the library called *name* (any library, with none given) is instrumented."""
        if name is not None:
            return self._select((name,))[0].is_instrumented()
        return any(i.is_instrumented() for i in self.instrumentors.values())
