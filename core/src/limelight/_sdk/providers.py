"""The OpenTelemetry API's global tracer and meter providers.

Assumptions ``meter-provider-proxy`` and ``provider-globals`` (see
:mod:`limelight._sdk`). The API lets a process set each global provider once;
a test harness needs to set them per test and give them back afterwards.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider

from . import fallback

__all__ = ["PROVIDER_GLOBALS", "SavedGlobals", "meter_provider_is_default"]


def _proxy_type() -> type | None:
    try:
        from opentelemetry.metrics._internal import _ProxyMeterProvider
    except ImportError as exc:
        fallback("meter-provider-proxy", "only an SDK MeterProvider counts as set", exc)
        return None
    return _ProxyMeterProvider


_PROXY = _proxy_type()


def meter_provider_is_default() -> bool:
    """Whether no global meter provider has been set yet (the API's proxy is in place)."""
    current = metrics.get_meter_provider()
    if _PROXY is not None:
        return isinstance(current, _PROXY)
    return not isinstance(current, MeterProvider)


def globals_problem() -> str | None:
    """Why the API's provider globals are not where :class:`SavedGlobals` finds
    them, or ``None``."""
    try:
        from opentelemetry.metrics import _internal as metrics_state
        from opentelemetry.util._once import Once

        for module, names in (
            (trace, ("_TRACER_PROVIDER", "_TRACER_PROVIDER_SET_ONCE")),
            (metrics_state, ("_METER_PROVIDER", "_METER_PROVIDER_SET_ONCE")),
        ):
            for name in names:
                if not hasattr(module, name):
                    return f"{module.__name__} has no {name}"
        guards: dict[str, Any] = {
            "tracer": trace._TRACER_PROVIDER_SET_ONCE,
            "meter": metrics_state._METER_PROVIDER_SET_ONCE,
        }
        for what, guard in guards.items():
            if not isinstance(guard, Once):
                return f"the {what} provider is not guarded by util._once.Once"
        proxy = metrics_state._PROXY_METER_PROVIDER
        if not hasattr(proxy, "_real_meter_provider") or not callable(
            getattr(proxy, "on_set_meter_provider", None)
        ):
            return "the API's proxy meter provider has no _real_meter_provider"
    except (ImportError, AttributeError) as exc:
        return repr(exc)
    return None


_problem = globals_problem()
PROVIDER_GLOBALS = _problem is None
"""Whether the global providers can be replaced and given back."""
if not PROVIDER_GLOBALS:
    fallback("provider-globals", "the globals are set once through the public API", _problem)


class SavedGlobals:
    """The OpenTelemetry globals (tracer provider, meter provider, propagator) as they
    were when this was made; :meth:`restore` gives them back."""

    def __init__(self) -> None:
        self.textmap = propagate.get_global_textmap()
        self._saved: tuple[Any, ...] | None = None
        if PROVIDER_GLOBALS:
            from opentelemetry.metrics import _internal as metrics_state

            self._saved = (
                trace._TRACER_PROVIDER,
                trace._TRACER_PROVIDER_SET_ONCE,
                metrics_state._METER_PROVIDER,
                metrics_state._METER_PROVIDER_SET_ONCE,
            )

    @staticmethod
    def set_tracer_provider(provider: trace.TracerProvider) -> None:
        """Make *provider* the global tracer provider, even when one was set before."""
        if PROVIDER_GLOBALS:
            from opentelemetry.util._once import Once

            trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace.set_tracer_provider(provider)

    @staticmethod
    def set_meter_provider(provider: metrics.MeterProvider) -> None:
        """Make *provider* the global meter provider, even when one was set before;
        meters handed out earlier through the API's proxy follow it too."""
        if PROVIDER_GLOBALS:
            from opentelemetry.metrics import _internal as metrics_state
            from opentelemetry.util._once import Once

            metrics_state._METER_PROVIDER_SET_ONCE = Once()
        metrics.set_meter_provider(provider)

    def restore(self) -> None:
        """Give every global back."""
        propagate.set_global_textmap(self.textmap)
        if self._saved is None:
            return
        from opentelemetry.metrics import _internal as metrics_state

        tracer_provider, tracer_once, meter_provider, meter_once = self._saved
        trace._TRACER_PROVIDER = tracer_provider
        trace._TRACER_PROVIDER_SET_ONCE = tracer_once
        metrics_state._METER_PROVIDER = meter_provider
        metrics_state._METER_PROVIDER_SET_ONCE = meter_once
        proxy = metrics_state._PROXY_METER_PROVIDER
        proxy.on_set_meter_provider(meter_provider or NoOpMeterProvider())
        proxy._real_meter_provider = meter_provider
