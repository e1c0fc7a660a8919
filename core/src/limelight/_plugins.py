"""Plugin discovery, ordering, isolation, and the typed facade over pluggy's hooks."""

from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, PackageNotFoundError
from typing import TYPE_CHECKING, Any

import attrs
import pluggy
from opentelemetry.sdk.metrics.export import MetricReader

import limelight_hookspecs
from limelight._log import get_logger
from limelight._metadata import entry_points, name_and_version, version
from limelight_hookspecs import (
    DEFAULT_PRIORITY,
    ENTRY_POINT_GROUP,
    PROJECT_NAME,
    Config,
    EnvVar,
    Interceptor,
    MetricDeclaration,
    StoreReader,
    TelemetryView,
    hookimpl,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

__all__ = [
    "PluginError",
    "PluginFailure",
    "PluginInfo",
    "PluginManager",
    "discover",
]

_log = get_logger("limelight")

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("limelight.function_metrics", "limelight._builtin:function_metrics"),
    ("limelight.function_tracing", "limelight._builtin:function_tracing"),
    ("limelight.runtime_metrics", "limelight._runtime:runtime_metrics"),
)
"""The core's own plugins (also declared as entry points of the ``limelight``
distribution), registered like any other."""


class PluginError(RuntimeError):
    """A plugin failed and ``LIMELIGHT_STRICT`` is set (or the failure is fatal).

    :param message: what failed, naming the plugin.
    :param plugin: the name of the plugin that failed (as pluggy's
        ``PluginValidationError.plugin`` names its plugin).
    :param hook: the hook it failed in, or ``None`` when it failed to load.
    """

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None):
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook


@attrs.frozen
class PluginFailure:
    """A plugin that failed to load or raised in a hook.

    :param plugin: the plugin name.
    :param phase: ``load`` or ``hook <name>``.
    :param error: ``Type: message`` of the exception.
    :param detail: the formatted traceback.
    """

    plugin: str
    phase: str
    error: str
    detail: str = attrs.field(default="", repr=False, eq=False)

    def message(self) -> str:
        """One line naming the plugin, the phase and the error."""
        return f"plugin {self.plugin!r} failed ({self.phase}): {self.error}"


@attrs.frozen
class PluginInfo:
    """One plugin as discovered and, if loaded, registered.

    :param name: the entry-point name (the plugin's name).
    :param priority: its declared ``limelight_priority``.
    :param distribution: the distribution that provides it, if any.
    :param version: that distribution's version, if known.
    :param status: ``loaded``, ``disabled`` (by the allow/block lists) or ``failed``.
    :param hooks: the hooks it implements, sorted.
    :param error: why it failed, when it did.
    """

    name: str
    priority: int
    distribution: str | None
    version: str | None
    status: str
    hooks: tuple[str, ...] = ()
    error: str | None = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _Failures:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.items: list[PluginFailure] = []
        self._lock = threading.Lock()
        self._reported: set[tuple[str, str]] = set()

    def record(self, plugin: str, phase: str, exc: BaseException) -> PluginFailure:
        failure = PluginFailure(
            plugin,
            phase,
            _describe(exc),
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )
        with self._lock:
            self.items.append(failure)
            first = (plugin, phase) not in self._reported
            self._reported.add((plugin, phase))
        if first:
            _log.error(
                "plugin failed",
                plugin=plugin,
                phase=phase,
                error=failure.error,
                message=failure.message(),
            )
        return failure


@attrs.define
class _Candidate:
    name: str
    load: Callable[[], object]
    distribution: str | None = None
    version: str | None = None


def _entry_point_candidates() -> list[_Candidate]:
    out = []
    for ep in entry_points(ENTRY_POINT_GROUP):  # one scan, shared with the other lookups
        dist = ep.dist
        name, dist_version = name_and_version(dist) if dist is not None else (None, None)
        out.append(_Candidate(ep.name, ep.load, name, dist_version))
    return out


def _builtin_candidates() -> list[_Candidate]:
    try:
        core_version: str | None = version("limelight")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        core_version = None
    return [
        _Candidate(name, EntryPoint(name, value, ENTRY_POINT_GROUP).load, "limelight", core_version)
        for name, value in BUILTIN_PLUGINS
    ]


def _call(impl: Any, kwargs: Mapping[str, Any]) -> Any:
    """Call one hook implementation (its guard) with the arguments it names, as pluggy does."""
    return impl.function(*[kwargs[a] for a in impl.argnames])


_CONFIGURE = "limelight_lifecycle_configure"
_START = "limelight_lifecycle_start"
_STOP = "limelight_lifecycle_stop"
_ENRICH = "limelight_spans_enrich"
_SAMPLER = "limelight_spans_provide_sampler"


class _Replays:
    """How many historic calls a re-registered stand-in has already received (pluggy
    replays the whole history to it; the guard lets those pass it by)."""

    __slots__ = ("skip",)

    def __init__(self) -> None:
        self.skip = 0


class _Hooks:
    """A namespace of guarded hook implementations (equal only to itself, as pluggy
    compares plugins with ``==``)."""

    def __init__(self, plugin: str, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.__dict__.update(functions)
        self._plugin = plugin

    def __repr__(self) -> str:
        return f"<hooks of plugin {self._plugin!r}>"


class _Pluggy(pluggy.PluginManager):
    """pluggy's manager, told where a stand-in keeps its implementations: in its own
    ``__dict__`` (pluggy looks up every name ``dir()`` gives, the ``object`` ones of
    each stand-in included, with :func:`inspect.getattr_static`)."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if type(plugin) is _Hooks and name not in plugin.__dict__:
            return None  # _Hooks' class attributes are never hook implementations
        return super().parse_hookimpl_opts(plugin, name)


@attrs.define(eq=False)
class _StandIn:
    """What pluggy registers for one plugin: its implementations, each guarded.

    A plugin with ``trylast`` implementations gets a second stand-in holding
    them, registered in the other order (pluggy calls its ``trylast`` tier in
    registration order, every other tier last-registered first).
    """

    plugin: str
    pm_name: str
    namespace: object
    priority: int
    trylast: bool
    replays: _Replays
    hooks: tuple[str, ...]

    @property
    def key(self) -> tuple[int, str]:
        return (self.priority, self.plugin)


class PluginManager:
    """The registered plugins and a typed facade over their hooks.

    Nothing else in limelight touches pluggy: every call goes through a method
    here, with keyword arguments. pluggy does the calling, the ordering and the
    historic replay itself:

    - Each plugin is registered as a *stand-in*, a namespace holding its hook
      implementations (same names, same ``tryfirst``/``trylast``/``specname``
      markers, same signatures) each wrapped in a guard: an implementation that
      raises is reported by the plugin's name and returns nothing, so the
      other plugins still run (``LIMELIGHT_STRICT=1`` makes it a
      :class:`PluginError`, which stops the call). The guard also tags what an
      implementation returns with its plugin's name, so a value of the wrong
      type is reported as a failure of the plugin that returned it.
    - Stand-ins are registered so that pluggy's own order is the priority order:
      pluggy calls the last registered first, so they are registered by
      descending ``(priority, name)``, and a plugin registered late is slotted
      in by unregistering and re-registering the ones that must be called
      before it. ``tryfirst`` implementations run before, ``trylast`` ones
      after every other, each tier in priority order (``hook.get_hookimpls()``
      lists them; :meth:`call_order` names them).
    - ``limelight_lifecycle_configure`` is historic and called through
      ``call_historic``: pluggy replays it to a plugin registered later, through
      that plugin's guard.

    Two hooks keep a call loop of their own, for a reason each:
    ``limelight_lifecycle_stop`` runs in *reverse* priority order, only for the
    plugins that started when a strict start is undone, and every
    implementation runs even under ``LIMELIGHT_STRICT`` (the first failure is
    raised once all ran), none of which pluggy's caller does;
    ``limelight_spans_enrich`` runs for every span, so its guarded
    implementations are bound once into plain callables (a pluggy call costs
    about 1 µs). Both walk ``get_hookimpls()`` and call each guard as pluggy
    would. Wrapper implementations (``wrapper`` or ``hookwrapper``) are refused
    at registration: they would wrap guards and tagged results, and those two
    loops have nothing for them to wrap.
    """

    def __init__(self, strict: bool = False) -> None:
        self._pm = _Pluggy(PROJECT_NAME)
        for module in limelight_hookspecs.SPEC_MODULES:
            self._pm.add_hookspecs(module)
        self._failures = _Failures(strict)
        self._infos: dict[str, PluginInfo] = {}
        self._order: list[str] = []
        self._objects: dict[str, object] = {}
        self._stand_ins: dict[str, list[_StandIn]] = {}
        self._registered: list[_StandIn] = []
        self._by_pm_name: dict[str, str] = {}
        self._configured = 0
        self.started: list[str] = []
        """Plugins whose ``limelight_lifecycle_start`` was called, in call order."""

    # -- registration -----------------------------------------------------------------

    @property
    def strict(self) -> bool:
        """Whether failures are fatal."""
        return self._failures.strict

    @property
    def failures(self) -> tuple[PluginFailure, ...]:
        """Every failure so far, in order."""
        return tuple(self._failures.items)

    def infos(self) -> tuple[PluginInfo, ...]:
        """Every discovered plugin, loaded ones first in resolved order."""
        loaded = [self._infos[n] for n in self._order]
        rest = sorted(
            (i for n, i in self._infos.items() if n not in self._order),
            key=lambda i: (i.priority, i.name),
        )
        return tuple(loaded + rest)

    def names(self) -> tuple[str, ...]:
        """The registered plugin names in resolved order."""
        return tuple(self._order)

    def plugin(self, name: str) -> object | None:
        """The registered plugin object called *name*."""
        return self._objects.get(name)

    def call_order(self, hook: str) -> tuple[str, ...]:
        """The plugins implementing *hook*, in the order pluggy calls them."""
        caller = getattr(self._pm.hook, hook)
        return tuple(self._by_pm_name[i.plugin_name] for i in reversed(caller.get_hookimpls()))

    def _fail(self, name: str, phase: str, exc: BaseException, info: PluginInfo) -> None:
        failure = self._failures.record(name, phase, exc)
        self._infos[name] = attrs.evolve(info, status="failed", error=failure.error)
        if self.strict:
            raise PluginError(failure.message(), plugin=name, hook=_hook_of(phase)) from exc

    def load(
        self,
        config: Config,
        *,
        entry_points: bool = True,
        builtins: bool = True,
        extra: Iterable[object | tuple[str, object]] = (),
    ) -> None:
        """Discover, select, sort and register plugins.

        :param config: supplies the allow/block lists and strictness.
        :param entry_points: scan the ``limelight.plugins`` entry-point group.
        :param builtins: when not scanning entry points, still register the
            core's built-in plugins.
        :param extra: plugin objects (or ``(name, object)`` pairs) to register too;
            passed explicitly in code, they are not subject to the allow-list
            (the block-list still applies).
        """
        candidates = _entry_point_candidates() if entry_points else []
        if builtins and not any(c.name.startswith("limelight.") for c in candidates):
            candidates = _builtin_candidates() + candidates
        explicit: set[str] = set()
        for item in extra:
            name, obj = item if isinstance(item, tuple) else (_object_name(item), item)
            candidates.append(_Candidate(name, functools.partial(_identity, obj)))
            explicit.add(name)

        allow = config.plugins
        block = set(config.disabled_plugins)
        names = {c.name for c in candidates}
        if allow is not None:
            for unknown in sorted(set(allow) - names):
                _log.warning(
                    "unknown plugin in LIMELIGHT_PLUGINS",
                    plugin=unknown,
                    installed=sorted(names),
                    message=f"LIMELIGHT_PLUGINS names {unknown!r}, which is not installed "
                    f"(installed: {', '.join(sorted(names)) or 'none'})",
                )
        for unknown in sorted(block - names):
            _log.warning(
                "unknown plugin in LIMELIGHT_DISABLED_PLUGINS",
                plugin=unknown,
                installed=sorted(names),
            )

        loaded: list[tuple[int, str, object, PluginInfo]] = []
        seen: set[str] = set()
        for cand in candidates:
            info = PluginInfo(
                cand.name, DEFAULT_PRIORITY, cand.distribution, cand.version, "loaded"
            )
            if cand.name in seen:
                self._fail(
                    cand.name,
                    "load",
                    ValueError(
                        f"duplicate plugin name {cand.name!r} "
                        f"(from {cand.distribution or 'an argument'})"
                    ),
                    info,
                )
                continue
            seen.add(cand.name)
            allowed = allow is None or cand.name in allow or cand.name in explicit
            if not allowed or cand.name in block:
                self._infos[cand.name] = attrs.evolve(info, status="disabled")
                continue
            try:
                obj = cand.load()
                priority = _priority(obj)
            except Exception as exc:
                self._fail(cand.name, "load", exc, info)
                continue
            if priority != info.priority:
                info = attrs.evolve(info, priority=priority)
            loaded.append((priority, cand.name, obj, info))

        # highest first: each registration then lands where pluggy's order wants it,
        # and nothing registered before has to move
        for priority, name, obj, info in sorted(loaded, key=lambda t: (t[0], t[1]), reverse=True):
            self._register(name, obj, info, priority)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register one more plugin now, in its priority place (it still receives
        ``limelight_lifecycle_configure`` if that was called already)."""
        name = name or _object_name(plugin)
        info = PluginInfo(name, DEFAULT_PRIORITY, None, None, "loaded")
        try:
            priority = _priority(plugin)
        except Exception as exc:
            self._fail(name, "load", exc, info)
            return
        self._register(name, plugin, attrs.evolve(info, priority=priority), priority)

    def unregister(self, name: str) -> None:
        """Remove a registered plugin."""
        for stand_in in self._stand_ins.pop(name, []):
            if stand_in in self._registered:
                self._pm.unregister(stand_in.namespace)
                self._registered.remove(stand_in)
            self._by_pm_name.pop(stand_in.pm_name, None)
        self._objects.pop(name, None)
        if name in self._order:
            self._order.remove(name)
        self._infos.pop(name, None)

    def _build_stand_ins(self, name: str, obj: object, priority: int) -> list[_StandIn]:
        """The stand-ins of *obj*: its hook implementations, guarded (a plugin that
        implements a hook that does not exist is reported, or refused when strict)."""
        found: dict[bool, dict[str, Callable[..., Any]]] = {False: {}, True: {}}
        hooks: dict[bool, set[str]] = {False: set(), True: set()}
        # one per stand-in: each is re-registered (and replayed to) on its own
        replays = {False: _Replays(), True: _Replays()}
        for attr in dir(obj):
            if attr.startswith("__"):  # never a hook; pluggy would look each one up statically
                continue
            opts = self._pm.parse_hookimpl_opts(obj, attr)
            if opts is None:
                continue
            hook = opts.get("specname") or attr
            if opts.get("wrapper") or opts.get("hookwrapper"):
                raise TypeError(
                    f"implements {hook} as a wrapper, which limelight does not "
                    "support (each implementation is guarded on its own; order one "
                    "with tryfirst or trylast)"
                )
            caller = getattr(self._pm.hook, hook, None)
            if caller is None or not caller.has_spec():
                if opts.get("optionalhook"):
                    continue
                # a typo or a hook from another version of the contract: say so
                self._failures.record(
                    name, "load", LookupError(f"implements {hook}, which is not a limelight hook")
                )
                if self.strict:
                    raise PluginError(
                        f"plugin {name!r} implements unknown hook {hook}", plugin=name, hook=hook
                    )
                continue
            marker = hookimpl(
                tryfirst=bool(opts.get("tryfirst")),
                trylast=bool(opts.get("trylast")),
                optionalhook=bool(opts.get("optionalhook")),
                specname=opts.get("specname"),
            )
            function = getattr(obj, attr)
            tier = bool(opts.get("trylast"))
            found[tier][attr] = marker(self._guard(function, name, hook, replays[tier]))
            hooks[tier].add(hook)
        out = []
        for trylast, functions in found.items():
            if functions or not trylast:
                pm_name = f"{name} (trylast)" if trylast else name
                namespace = _Hooks(name, functions)
                out.append(
                    _StandIn(
                        name,
                        pm_name,
                        namespace,
                        priority,
                        trylast,
                        replays[trylast],
                        tuple(sorted(hooks[trylast])),
                    )
                )
        return out

    def _register(self, name: str, obj: object, info: PluginInfo, priority: int) -> None:
        if name in self._objects:
            self._fail(name, "load", ValueError(f"plugin {name!r} is already registered"), info)
            return
        if any(other is obj for other in self._objects.values()):
            refused = ValueError("the object is registered under another name")
            self._fail(name, "load", refused, info)
            return
        try:
            stand_ins = self._build_stand_ins(name, obj, priority)
        except PluginError as exc:
            self._infos[name] = attrs.evolve(info, status="failed", error=str(exc))
            raise
        except Exception as exc:
            self._fail(name, "load", exc, info)
            return
        self._objects[name] = obj
        self._stand_ins[name] = stand_ins
        for stand_in in stand_ins:
            self._by_pm_name[stand_in.pm_name] = name
        try:
            self._sync()
        except Exception as exc:
            # nothing of a plugin that failed to register stays behind; the others
            # are put back in their order
            self.unregister(name)
            self._sync()
            if isinstance(exc, PluginError):  # strict: its configure replay failed
                self._infos[name] = attrs.evolve(info, status="failed", error=str(exc))
                raise
            self._fail(name, "load", exc, info)
            return
        hooks = sorted({hook for stand_in in stand_ins for hook in stand_in.hooks})
        self._infos[name] = attrs.evolve(info, hooks=tuple(hooks))
        self._order.append(name)
        self._order.sort(key=lambda n: (self._infos[n].priority, n))

    def _sync(self) -> None:
        """Register the stand-ins in the order pluggy's calling turns into priority
        order: every tier but ``trylast`` by descending ``(priority, name)``, the
        ``trylast`` tier ascending; stand-ins already in place stay registered."""
        every = [s for group in self._stand_ins.values() for s in group]
        wanted = sorted((s for s in every if not s.trylast), key=lambda s: s.key, reverse=True)
        wanted += sorted((s for s in every if s.trylast), key=lambda s: s.key)
        keep = 0
        while (
            keep < len(self._registered)
            and keep < len(wanted)
            and self._registered[keep] is wanted[keep]
        ):
            keep += 1
        for stand_in in reversed(self._registered[keep:]):
            self._pm.unregister(stand_in.namespace)
            # pluggy replays every historic call on registration; it already had them
            stand_in.replays.skip = self._configured
        del self._registered[keep:]
        for stand_in in wanted[keep:]:
            try:
                self._pm.register(stand_in.namespace, name=stand_in.pm_name)
            except BaseException:
                if self._pm.is_registered(stand_in.namespace):
                    self._pm.unregister(stand_in.namespace)
                raise
            self._registered.append(stand_in)

    def _guard(
        self, fn: Callable[..., Any], plugin: str, hook: str, replays: _Replays
    ) -> Callable[..., Any]:
        """*fn* guarded: a failure is *plugin*'s, reported (raised as :class:`PluginError`
        when strict); a result comes back as ``(plugin, result)``."""
        failures = self._failures

        def failed(exc: Exception) -> None:
            failure = failures.record(plugin, f"hook {hook}", exc)
            if failures.strict:
                raise PluginError(failure.message(), plugin=plugin, hook=hook) from exc

        if hook == _ENRICH:  # per span, and its result is not used: nothing but the guard

            @functools.wraps(fn)
            def enrich(*args: Any) -> Any:
                try:
                    fn(*args)
                except Exception as exc:
                    failed(exc)

            return enrich

        started = self.started if hook == _START else None
        sampler = hook == _SAMPLER

        @functools.wraps(fn)
        def guarded(*args: Any) -> Any:
            if hook == _CONFIGURE and replays.skip:
                replays.skip -= 1
                return None
            if started is not None:
                started.append(plugin)
            try:
                result = fn(*args)
            except Exception as exc:
                failed(exc)
                return None
            if result is None:
                return None
            if sampler and not _has_methods(result, "should_sample", "get_description"):
                # checked here, so pluggy asks the next plugin (the hook is firstresult)
                failed(TypeError(f"expected a Sampler, got {result!r}"))
                return None
            return (plugin, result)

        return guarded

    # -- calls ------------------------------------------------------------------------

    def has_impls(self, hook: str) -> bool:
        """Whether any registered plugin implements *hook*."""
        return bool(getattr(self._pm.hook, hook).get_hookimpls())

    def _results(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``(plugin, result)`` of each implementation that returned something, in
        pluggy's call order."""
        results: list[tuple[str, Any]] = getattr(self._pm.hook, hook)(**kwargs)
        return results

    def _collect(
        self, hook: str, valid: Callable[[object], bool], what: str, **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """``(plugin, item)`` for each item of each sequence returned; an item that is not
        *valid* (described as *what*) is reported as a failure of its plugin and left out."""
        out: list[tuple[str, Any]] = []
        for plugin, result in self._results(hook, **kwargs):
            try:
                if isinstance(result, (str, bytes)):
                    raise TypeError
                items = list(result)
            except TypeError:
                self.record_failure(
                    plugin,
                    f"hook {hook}",
                    TypeError(f"expected a sequence of {what}, got {result!r}"),
                )
                continue
            for item in items:
                if valid(item):
                    out.append((plugin, item))
                else:
                    self.record_failure(
                        plugin, f"hook {hook}", TypeError(f"expected {what}, got {item!r}")
                    )
        return out

    # -- the facade: one typed method per hook ----------------------------------------

    def lifecycle_configure(self, config: Config) -> None:
        """``limelight_lifecycle_configure``, through pluggy's ``call_historic``: a plugin
        registered later receives it when it registers."""
        self._configured += 1
        self._pm.hook.limelight_lifecycle_configure.call_historic(kwargs={"config": config})

    def lifecycle_start(self, telemetry: TelemetryView) -> None:
        """``limelight_lifecycle_start``, in priority order; :attr:`started` records
        each plugin as its implementation is called."""
        self._pm.hook.limelight_lifecycle_start(telemetry=telemetry)

    def lifecycle_stop(
        self, telemetry: TelemetryView, timeout: float, only: Iterable[str] | None = None
    ) -> None:
        """``limelight_lifecycle_stop``, in reverse priority order, for every plugin (or
        those in *only*). Every implementation runs even when one fails; under
        ``LIMELIGHT_STRICT`` the first failure is raised once all ran."""
        wanted = None if only is None else set(only)
        args = {"telemetry": telemetry, "timeout": timeout}
        first: PluginError | None = None
        # get_hookimpls() lists them in the reverse of pluggy's call order
        for impl in self._pm.hook.limelight_lifecycle_stop.get_hookimpls():
            if wanted is not None and self._by_pm_name[impl.plugin_name] not in wanted:
                continue
            try:
                _call(impl, args)
            except PluginError as exc:
                first = first or exc
        if first is not None:
            raise first

    def metrics_declare(self, config: Config) -> list[tuple[str, MetricDeclaration]]:
        """``limelight_metrics_declare``: ``(plugin, declaration)`` pairs."""
        return self._collect(
            "limelight_metrics_declare",
            lambda d: isinstance(d, MetricDeclaration),
            "MetricDeclaration objects",
            config=config,
        )

    def metrics_provide_readers(self, telemetry: TelemetryView) -> list[tuple[str, StoreReader]]:
        """``limelight_metrics_provide_readers``: ``(plugin, reader)`` pairs."""
        return self._collect(
            "limelight_metrics_provide_readers",
            lambda r: _has_methods(r, "start", "force_flush", "shutdown"),
            "store readers (start, force_flush, shutdown)",
            telemetry=telemetry,
        )

    def metrics_provide_otel_readers(
        self, telemetry: TelemetryView
    ) -> list[tuple[str, MetricReader]]:
        """``limelight_metrics_provide_otel_readers``: ``(plugin, reader)`` pairs."""
        return self._collect(
            "limelight_metrics_provide_otel_readers",
            lambda r: isinstance(r, MetricReader),
            "OpenTelemetry SDK MetricReader objects",
            telemetry=telemetry,
        )

    def spans_provide_exporters(self, telemetry: TelemetryView) -> list[tuple[str, SpanExporter]]:
        """``limelight_spans_provide_exporters``: ``(plugin, exporter)`` pairs."""
        return self._collect(
            "limelight_spans_provide_exporters",
            lambda e: _has_methods(e, "export", "shutdown"),
            "span exporters (export, shutdown)",
            telemetry=telemetry,
        )

    def spans_provide_processors(self, telemetry: TelemetryView) -> list[tuple[str, SpanProcessor]]:
        """``limelight_spans_provide_processors``: ``(plugin, processor)`` pairs."""
        return self._collect(
            "limelight_spans_provide_processors",
            lambda p: _has_methods(p, "on_start", "on_end", "shutdown", "force_flush"),
            "span processors (on_start, on_end, shutdown, force_flush)",
            telemetry=telemetry,
        )

    def logs_provide_exporters(self, telemetry: TelemetryView) -> list[tuple[str, Any]]:
        """``limelight_logs_provide_exporters``: ``(plugin, exporter)`` pairs."""
        return self._collect(
            "limelight_logs_provide_exporters",
            lambda e: _has_methods(e, "export", "shutdown", "force_flush"),
            "log record exporters (export, shutdown, force_flush)",
            telemetry=telemetry,
        )

    def logs_provide_processors(self, telemetry: TelemetryView) -> list[tuple[str, Any]]:
        """``limelight_logs_provide_processors``: ``(plugin, processor)`` pairs."""
        return self._collect(
            "limelight_logs_provide_processors",
            lambda p: _has_methods(p, "on_emit", "shutdown", "force_flush"),
            "log record processors (on_emit, shutdown, force_flush)",
            telemetry=telemetry,
        )

    def spans_provide_sampler(self, telemetry: TelemetryView) -> Sampler | None:
        """``limelight_spans_provide_sampler``: the first sampler in priority order, if any
        (a value that is not a sampler is reported and the next plugin asked)."""
        found = self._pm.hook.limelight_spans_provide_sampler(telemetry=telemetry)
        return None if found is None else found[1]

    def spans_enrich_callers(self) -> list[Callable[..., Any]]:
        """The guarded ``limelight_spans_enrich`` implementations, in priority order,
        each callable as ``(span, parent_context)``."""
        callers: list[Callable[..., Any]] = []
        for impl in reversed(self._pm.hook.limelight_spans_enrich.get_hookimpls()):
            fn, names = impl.function, tuple(impl.argnames)
            if names == ("span", "parent_context"):
                callers.append(fn)
            else:

                def call(
                    span: Any, parent_context: Any, fn: Any = fn, names: tuple[str, ...] = names
                ) -> Any:
                    args = {"span": span, "parent_context": parent_context}
                    return fn(*[args[n] for n in names])

                callers.append(call)
        return callers

    def interceptors_provide(self, telemetry: TelemetryView) -> list[tuple[str, Interceptor]]:
        """``limelight_interceptors_provide``: ``(plugin, interceptor)`` pairs."""
        return self._collect(
            "limelight_interceptors_provide",
            _valid_interceptor,
            "Interceptor objects (a str name, an int order, a callable bind)",
            telemetry=telemetry,
        )

    def config_declare(self) -> list[tuple[str, EnvVar[Any]]]:
        """``limelight_config_declare``: ``(plugins, variable)`` pairs, one per variable.

        A variable several plugins read (one ``EnvVar`` object, such as
        ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS``) is listed once, owned by all
        of them (``"http, httpclient"``). Another object under a name already
        declared is a failure of the plugin declaring it second.
        """
        owners: dict[str, list[str]] = {}
        found: dict[str, EnvVar[Any]] = {}
        for plugin, var in self._collect(
            "limelight_config_declare", lambda v: isinstance(v, EnvVar), "EnvVar objects"
        ):
            first = found.get(var.name)
            if first is None:
                found[var.name] = var
                owners[var.name] = [plugin]
            elif first is var:
                if plugin not in owners[var.name]:
                    owners[var.name].append(plugin)
            else:
                self.record_failure(
                    plugin,
                    "hook limelight_config_declare",
                    ValueError(
                        f"declares {var.name}, already declared by "
                        f"{', '.join(owners[var.name])} with another definition"
                    ),
                )
        return [(", ".join(owners[name]), var) for name, var in found.items()]

    def record_failure(self, plugin: str, phase: str, exc: BaseException) -> None:
        """Report a failure attributed to *plugin* (raises when strict)."""
        failure = self._failures.record(plugin, phase, exc)
        if self.strict:
            raise PluginError(failure.message(), plugin=plugin, hook=_hook_of(phase)) from exc


def _hook_of(phase: str) -> str | None:
    """The hook a failure phase names (``hook limelight_x`` -> ``limelight_x``)."""
    return phase[len("hook ") :] if phase.startswith("hook ") else None


def _identity(obj: object) -> object:
    return obj


def _has_methods(obj: object, *names: str) -> bool:
    return all(callable(getattr(obj, n, None)) for n in names)


def _valid_interceptor(obj: object) -> bool:
    return (
        isinstance(obj, Interceptor)
        and isinstance(obj.name, str)
        and isinstance(obj.order, int)
        and not isinstance(obj.order, bool)
        and callable(obj.bind)
    )


def _object_name(obj: object) -> str:
    name = getattr(obj, "limelight_name", None) or getattr(obj, "__name__", None)
    return str(name) if name else f"{type(obj).__module__}.{type(obj).__qualname__}"


def _priority(obj: object) -> int:
    value = getattr(obj, "limelight_priority", DEFAULT_PRIORITY)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"limelight_priority must be an int, got {value!r}")
    return value


def discover(
    config: Config, *, entry_points: bool = True, extra: Sequence[object] = ()
) -> PluginManager:
    """Load plugins the way a telemetry start would, without starting anything."""
    manager = PluginManager(strict=False)
    manager.load(config, entry_points=entry_points, extra=extra)
    return manager
