"""Building the effective :class:`~limelight_hookspecs.Config` from the environment."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from limelight_hookspecs import (
    BatchSettings,
    Config,
    ConfigProblem,
    EnvVar,
    OtlpSettings,
    member_problem,
    parse_float,
    split_key_values,
)

from . import _env as env
from ._log import get_logger
from ._metadata import entry_points
from ._propagation import known_propagators
from ._state import STATE

T = TypeVar("T")

__all__ = ["ProblemReporter", "installed_exporters", "load_config", "resolve_exporters"]

_log = get_logger("limelight")

_UNSUPPORTED_SAMPLERS = frozenset({"parentbased_jaeger_remote", "jaeger_remote", "xray"})
_RATIO_SAMPLERS = frozenset({"traceidratio", "parentbased_traceidratio"})


class ProblemReporter:
    """Reports each configuration problem once per process (until
    ``limelight._state.reset``), as a warning."""

    def __call__(self, problem: ConfigProblem) -> None:
        key = (problem.variable, problem.value)
        with STATE.reporting_lock:
            seen = STATE.reported_problems
            if key in seen:
                return
            seen.add(key)
        _log.warning(
            "invalid configuration value",
            variable=problem.variable,
            value=problem.shown_value(),
            fallback=problem.fallback,
            reason=problem.reason,
        )


REPORTER = ProblemReporter()
"""The process-wide reporter (one warning per distinct invalid value)."""


class _Builder:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.sources: dict[str, str] = {}
        self.problems: list[ConfigProblem] = []
        # (variable, value, reason) -> (index in problems, fallback per signal)
        self._seen: dict[tuple[str, str, str], tuple[int, dict[str | None, str]]] = {}

    def read(self, field: str, var: EnvVar[T], signal: str | None = None) -> T:
        reading = var.read(self.environ)
        if reading.problem is not None:
            self.add(reading.problem, signal)
        self.sources[field] = reading.source
        return reading.value

    def problem(
        self, variable: str, value: str, fallback: str, reason: str, signal: str | None = None
    ) -> None:
        self.add(ConfigProblem(variable, value, fallback, reason), signal)

    def add(self, problem: ConfigProblem, signal: str | None = None) -> None:
        """Record *problem* once: a variable read for both signals (the generic
        ``OTEL_EXPORTER_OTLP_*``) is one problem, naming each signal's fallback
        when they differ."""
        key = (problem.variable, problem.value, problem.reason)
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = (len(self.problems), {signal: problem.fallback})
            self.problems.append(problem)
            return
        index, fallbacks = seen
        fallbacks.setdefault(signal, problem.fallback)
        if len(set(fallbacks.values())) > 1:
            merged = ", ".join(f"{fb} for {sig}" for sig, fb in fallbacks.items())
            self.problems[index] = attrs.evolve(self.problems[index], fallback=merged)


def _default_service_name() -> str:
    executable = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return f"unknown_service:{executable}" if executable else "unknown_service"


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header_problem(name: str, value: str) -> str | None:
    """Why a decoded header would fail every export, or ``None``."""
    if not _HEADER_NAME.fullmatch(name):
        return f"{name!r} is not an HTTP header name"
    if not all(" " <= c <= "~" or c == "\t" for c in value):
        return f"the value of {name} has characters an HTTP header cannot carry"
    return None


def _known_samplers() -> frozenset[str]:
    try:
        extra = {ep.name for ep in entry_points(group="opentelemetry_traces_sampler")}
    except Exception:  # pragma: no cover - broken metadata
        extra = set()
    return frozenset(env.SAMPLER_NAMES) | extra


def _otlp_settings(b: _Builder, signal: str) -> OtlpSettings:
    specific = {"traces": env.OTLP_TRACES, "metrics": env.OTLP_METRICS, "logs": env.OTLP_LOGS}[
        signal
    ]
    generic = env.OTLP_GENERIC

    def pick(key: str) -> Any:
        """The signal-specific variable, else the generic one, else the default; an
        invalid signal-specific value is reported with the fallback actually used."""
        field = f"otlp_{signal}.{key}"
        reading = specific[key].read(b.environ)
        if reading.source != "default":
            b.sources[field] = reading.source
            unused = generic[key].read(b.environ).problem  # reported even when shadowed
            if unused is not None:
                b.add(unused, signal)
            return reading.value
        value = b.read(field, generic[key], signal)
        problem = reading.problem
        if problem is not None:
            name = generic[key].name
            if b.sources[field] == name:
                fallback = f"{b.environ[name].strip()} from {name}"
                problem = attrs.evolve(problem, fallback=fallback)
            b.add(problem, signal)
        return value

    protocol = pick("protocol") or "http/protobuf"
    is_http = protocol != "grpc"
    default_base = "http://localhost:4318" if is_http else "http://localhost:4317"
    default_endpoint = f"{default_base}/v1/{signal}" if is_http else default_base
    source_key = f"otlp_{signal}.endpoint"

    def valid(var: EnvVar[str]) -> tuple[str, ConfigProblem | None]:
        """*var*'s URL (``""`` when unset or invalid) and the problem when invalid."""
        reading = var.read(b.environ)
        value, problem = reading.value, reading.problem
        if problem is None and value and is_http and "://" not in value:
            reason = "expected an http:// or https:// URL"
            problem = ConfigProblem(var.name, b.environ[var.name], "", reason)
            value = ""
        return value, problem

    # the signal-specific endpoint as given, else the generic one with the signal's
    # path for HTTP, else the default
    endpoint, bad_specific = valid(specific["endpoint"])
    b.sources[source_key] = specific["endpoint"].name if endpoint else "default"
    if endpoint:  # the generic one is not used for this signal; still reported when invalid
        _base, shadowed = valid(generic["endpoint"])
        if shadowed is not None:
            b.add(attrs.evolve(shadowed, fallback=default_base), signal)
    else:
        base, bad_generic = valid(generic["endpoint"])
        if base:
            endpoint = base.rstrip("/") + f"/v1/{signal}" if is_http else base
            b.sources[source_key] = generic["endpoint"].name
        if bad_generic is not None:
            b.add(attrs.evolve(bad_generic, fallback=default_base), signal)
        if bad_specific is not None:
            used = f"{endpoint} from {generic['endpoint'].name}" if endpoint else default_endpoint
            b.add(attrs.evolve(bad_specific, fallback=used), signal)
    endpoint = endpoint or default_endpoint

    headers_key = f"otlp_{signal}.headers"
    headers: tuple[tuple[str, str], ...] = ()
    found = False
    for var in (specific["headers"], generic["headers"]):
        raw = b.environ.get(var.name, "")
        if raw.strip() and found:  # shadowed by the signal's own: still reported if invalid
            problem = var.read(b.environ).problem
            if problem is not None:
                b.add(attrs.evolve(problem, fallback="the well-formed members only"), signal)
        elif raw.strip():
            found = True
            pairs, bad = split_key_values(raw)
            reasons = [f"malformed member {m!r} ({member_problem(m)})" for m in bad]
            kept = []
            for name, value in pairs:
                refused = _header_problem(name, value)
                if refused is None:
                    kept.append((name, value))
                else:
                    reasons.append(refused)
            if reasons:
                b.problem(var.name, raw, "the well-formed members only", reasons[0], signal)
            headers, b.sources[headers_key] = tuple(kept), var.name
    if not found:
        b.sources[headers_key] = "default"

    timeout = pick("timeout")
    return OtlpSettings(
        endpoint=endpoint,
        protocol=protocol,
        headers=headers,
        insecure=pick("insecure"),
        timeout=10.0 if timeout is None else timeout,
        compression=pick("compression") or "none",
        certificate=pick("certificate") or None,
        client_key=pick("client_key") or None,
        client_certificate=pick("client_certificate") or None,
    )


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Build the effective configuration.

    :param environ: the environment to read (default ``os.environ``).
    :param overrides: field values that win over the environment, for example
        ``service_name="checkout"``; their source is shown as ``argument``.

    Never raises for an invalid environment value: each one becomes a
    :class:`~limelight_hookspecs.ConfigProblem` in ``Config.problems`` (reported
    once by :func:`limelight.start`) and the documented fallback is used.
    """
    environ = dict(os.environ if environ is None else environ)
    b = _Builder(environ)

    sdk_disabled = b.read("sdk_disabled", env.OTEL_SDK_DISABLED)

    # a malformed value is discarded whole, as the specification says
    resource_pairs = b.read("resource_attributes", env.OTEL_RESOURCE_ATTRIBUTES)
    resource_attributes = dict(resource_pairs)

    service_name = b.read("service_name", env.OTEL_SERVICE_NAME)
    if not service_name and resource_attributes.get("service.name"):
        service_name = resource_attributes["service.name"]
        b.sources["service_name"] = env.OTEL_RESOURCE_ATTRIBUTES.name
    if not service_name:
        service_name = _default_service_name()
    service_version = resource_attributes.get("service.version")
    b.sources["service_version"] = (
        env.OTEL_RESOURCE_ATTRIBUTES.name if service_version else "default"
    )

    sampler = b.read("traces_sampler", env.OTEL_TRACES_SAMPLER)
    fallback_sampler = "parentbased_always_on"
    if sampler in _UNSUPPORTED_SAMPLERS:
        b.problem(
            env.OTEL_TRACES_SAMPLER.name,
            sampler,
            fallback_sampler,
            "this sampler needs a remote service limelight does not ship",
        )
        sampler, b.sources["traces_sampler"] = fallback_sampler, "default"
    elif sampler not in env.SAMPLER_NAMES and sampler not in _known_samplers():
        b.problem(
            env.OTEL_TRACES_SAMPLER.name,
            sampler,
            fallback_sampler,
            "unknown sampler (expected one of " + ", ".join(env.SAMPLER_NAMES[:6]) + ")",
        )
        sampler, b.sources["traces_sampler"] = fallback_sampler, "default"

    sampler_arg: float | None = None
    raw_arg = b.read("traces_sampler_arg", env.OTEL_TRACES_SAMPLER_ARG)
    if sampler in _RATIO_SAMPLERS:
        sampler_arg = 1.0
        if raw_arg:
            try:
                sampler_arg = parse_float(minimum=0.0, maximum=1.0)(raw_arg)
            except ValueError as exc:
                b.problem(env.OTEL_TRACES_SAMPLER_ARG.name, raw_arg, "ratio 1.0", str(exc))
                b.sources["traces_sampler_arg"] = "default"
    elif raw_arg:
        try:
            sampler_arg = float(raw_arg)
        except ValueError:
            sampler_arg = None

    propagators = b.read("propagators", env.OTEL_PROPAGATORS)
    known = known_propagators()
    valid = tuple(p for p in propagators if p in known or p == "none")
    fallback_propagators = (
        "the other listed propagators"
        if valid
        else "the default " + env.OTEL_PROPAGATORS.describe_default()
    )
    for name in propagators:
        if name not in valid:
            b.problem(
                env.OTEL_PROPAGATORS.name,
                name,
                fallback_propagators,
                "unknown propagator (installed: " + ", ".join(sorted(known)) + ")",
            )
    if "none" in valid:
        valid = ()
    elif not valid and propagators:
        valid = ("tracecontext", "baggage")
        b.sources["propagators"] = "default"

    def exporters(field: str, var: EnvVar[Any]) -> tuple[str, ...] | None:
        value: tuple[str, ...] | None = b.read(field, var)
        if value is None:
            return None
        return tuple(v for v in value if v != "none")

    batch = BatchSettings(
        schedule_delay=b.read("batch.schedule_delay", env.OTEL_BSP_SCHEDULE_DELAY),
        max_queue_size=b.read("batch.max_queue_size", env.OTEL_BSP_MAX_QUEUE_SIZE),
        max_export_batch_size=b.read(
            "batch.max_export_batch_size", env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE
        ),
        export_timeout=b.read("batch.export_timeout", env.OTEL_BSP_EXPORT_TIMEOUT),
        queue_full_wait=b.read("batch.queue_full_wait", env.LIMELIGHT_BSP_QUEUE_FULL_WAIT),
    )
    if batch.max_export_batch_size > batch.max_queue_size:
        b.problem(
            env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE.name,
            str(batch.max_export_batch_size),
            str(batch.max_queue_size),
            "must not exceed OTEL_BSP_MAX_QUEUE_SIZE",
        )
        batch = attrs.evolve(batch, max_export_batch_size=batch.max_queue_size)

    log_batch = BatchSettings(
        schedule_delay=b.read("log_batch.schedule_delay", env.OTEL_BLRP_SCHEDULE_DELAY),
        max_queue_size=b.read("log_batch.max_queue_size", env.OTEL_BLRP_MAX_QUEUE_SIZE),
        max_export_batch_size=b.read(
            "log_batch.max_export_batch_size", env.OTEL_BLRP_MAX_EXPORT_BATCH_SIZE
        ),
        export_timeout=b.read("log_batch.export_timeout", env.OTEL_BLRP_EXPORT_TIMEOUT),
    )
    if log_batch.max_export_batch_size > log_batch.max_queue_size:
        b.problem(
            env.OTEL_BLRP_MAX_EXPORT_BATCH_SIZE.name,
            str(log_batch.max_export_batch_size),
            str(log_batch.max_queue_size),
            "must not exceed OTEL_BLRP_MAX_QUEUE_SIZE",
        )
        log_batch = attrs.evolve(log_batch, max_export_batch_size=log_batch.max_queue_size)

    values: dict[str, Any] = {
        "sdk_disabled": sdk_disabled,
        "service_name": service_name,
        "service_version": service_version,
        "resource_attributes": resource_attributes,
        "traces_sampler": sampler,
        "traces_sampler_arg": sampler_arg,
        "propagators": valid,
        "traces_exporters": exporters("traces_exporters", env.OTEL_TRACES_EXPORTER),
        "metrics_exporters": exporters("metrics_exporters", env.OTEL_METRICS_EXPORTER),
        "logs_exporters": exporters("logs_exporters", env.OTEL_LOGS_EXPORTER),
        "otlp_traces": _otlp_settings(b, "traces"),
        "otlp_metrics": _otlp_settings(b, "metrics"),
        "otlp_logs": _otlp_settings(b, "logs"),
        "batch": batch,
        "log_batch": log_batch,
        "metric_export_interval": b.read("metric_export_interval", env.OTEL_METRIC_EXPORT_INTERVAL),
        "metric_export_timeout": b.read("metric_export_timeout", env.OTEL_METRIC_EXPORT_TIMEOUT),
        "metrics_namespace": b.read("metrics_namespace", env.LIMELIGHT_METRICS_NAMESPACE),
        "series_limit": b.read("series_limit", env.LIMELIGHT_SERIES_LIMIT),
        "shutdown_timeout": b.read("shutdown_timeout", env.LIMELIGHT_SHUTDOWN_TIMEOUT),
        "plugins": b.read("plugins", env.LIMELIGHT_PLUGINS),
        "disabled_plugins": b.read("disabled_plugins", env.LIMELIGHT_DISABLED_PLUGINS),
        "strict": b.read("strict", env.LIMELIGHT_STRICT),
    }
    # read by the SDK itself, which raises on an invalid value: parsed here (reported,
    # shown by `limelight config`) and handed to the SDK as explicit values
    for sdk_var in env.SDK_VARIABLES:
        b.read(sdk_var.name, sdk_var)
    # every other core variable (read later, at start) is checked now, so that the
    # start reports it and `limelight config` lists it
    reported = {p.variable for p in b.problems}
    for var in env.CORE_VARIABLES:
        if var.name not in reported:
            late = var.read(environ).problem
            if late is not None:
                b.add(late)
    for key, value in overrides.items():
        if key not in values:
            raise TypeError(f"unknown configuration field {key!r}")
        values[key] = value
        b.sources[key] = "argument"
    return Config(
        **values,
        environ=environ,
        sources=b.sources,
        problems=tuple(b.problems),
        reporter=REPORTER,
    )


_EXPORTER_FIELDS = {
    "traces": "traces_exporters",
    "metrics": "metrics_exporters",
    "logs": "logs_exporters",
}
_EXPORTER_VARIABLES = {
    "traces": env.OTEL_TRACES_EXPORTER,
    "metrics": env.OTEL_METRICS_EXPORTER,
    "logs": env.OTEL_LOGS_EXPORTER,
}


_EXPORTER_HOOKS = {
    "traces": ("limelight_spans_provide_exporters", "limelight_spans_provide_processors"),
    "metrics": ("limelight_metrics_provide_readers", "limelight_metrics_provide_otel_readers"),
    "logs": ("limelight_logs_provide_exporters", "limelight_logs_provide_processors"),
}


def installed_exporters(infos: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    """For ``"traces"`` and ``"metrics"``, the loaded plugins (of *infos*, the
    :class:`~limelight.plugins.PluginInfo` of a manager) that can export it, and
    under ``"plugins"`` every plugin found, loaded or not."""
    infos = tuple(infos)
    loaded = [i for i in infos if i.status == "loaded"]
    found: dict[str, tuple[str, ...]] = {
        signal: tuple(i.name for i in loaded if set(hooks) & set(i.hooks))
        for signal, hooks in _EXPORTER_HOOKS.items()
    }
    found["plugins"] = tuple(i.name for i in infos)
    return found


def resolve_exporters(config: Config, installed: Mapping[str, Sequence[str]]) -> Config:
    """*config* with the names ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``
    list checked against the exporter plugins *installed* for each signal.

    A name that is no plugin at all (``garbage``, an exporter limelight does not
    ship) is a :class:`~limelight_hookspecs.ConfigProblem` naming the exporters
    that are loaded; it is dropped from the selection, which keeps exactly the
    other names (so with no other name, that signal is not exported, as the
    variable asked: other exporters are never turned on instead). The name of a
    plugin that is installed but not loaded (disabled, or failed) is no problem
    of the variable's: it exports nothing.

    :param installed: for ``"traces"`` and ``"metrics"``, the names of the loaded
        plugins that export that signal; under ``"plugins"``, every plugin found.
    """
    changes: dict[str, Any] = {}
    problems = list(config.problems)
    plugins = set(installed.get("plugins", ()))
    for signal, field in _EXPORTER_FIELDS.items():
        wanted: tuple[str, ...] | None = getattr(config, field)
        var = _EXPORTER_VARIABLES[signal]
        if not wanted or config.sources.get(field) != var.name:
            continue
        names = tuple(installed.get(signal, ()))
        unknown = [n for n in wanted if n not in names and n not in plugins]
        if not unknown:
            continue
        kept = tuple(n for n in wanted if n not in unknown)
        fallback = (
            ",".join(kept) + " (the other names listed)"
            if kept
            else f"no exporter: {signal} are not exported"
        )
        for name in unknown:
            problem = ConfigProblem(
                var.name,
                name,
                fallback,
                f"no installed exporter plugin has that name (loaded {signal} exporters: "
                f"{', '.join(names) or 'none'}; none turns export off)",
            )
            if problem not in problems:
                problems.append(problem)
        changes[field] = kept
    if not changes:
        return config
    return attrs.evolve(config, **changes, problems=tuple(problems))
