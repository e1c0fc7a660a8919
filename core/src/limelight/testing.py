"""Test helpers: an isolated telemetry with in-memory span capture and metric reading.

Use :class:`Harness` directly, or the ``telemetry`` pytest fixture that the
``limelight`` pytest plugin provides (installed with the core)::

    def test_checkout(telemetry):
        checkout()
        span = telemetry.span(name="shop.checkout", kind="server")
        assert span.status.is_ok
        assert 1 == telemetry.value("function_calls_total",
                                    function="shop.checkout", result="ok")

Spans are exported synchronously as they end, so they can be asserted on
right after the code under test returns. While a harness runs, the
OpenTelemetry globals (tracer provider, meter provider, propagator) are its
own; stopping it gives back the ones that were there before, so one test's
telemetry never leaks into the next. Starting and stopping a harness also
forgets what limelight remembers for the process (``limelight._state``): a
failure reported once, or a configuration problem warned about once, is
reported again in the next harness.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from limelight_hookspecs import (
    HistogramPoint,
    MetricFamily,
    MetricsSnapshot,
    NumberPoint,
    TelemetryView,
    hookimpl,
)

from ._propagation import install_propagator
from ._sdk.providers import SavedGlobals
from ._state import reset as reset_process_state
from ._store import MetricStore
from ._telemetry import Telemetry, _GlobalTracerProvider

__all__ = ["Harness", "SpanCapturePlugin"]


class SpanCapturePlugin:
    """A plugin that captures every finished span in memory."""

    limelight_name = "limelight.testing"
    limelight_priority = 1000

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()

    @hookimpl
    def limelight_spans_provide_processors(
        self, telemetry: TelemetryView
    ) -> Sequence[SpanProcessor]:
        return (SimpleSpanProcessor(self.exporter),)


class _OtelGlobals(SavedGlobals):
    """The OpenTelemetry globals as they were before a harness took them over."""

    def install(self, telemetry: Telemetry) -> None:
        """Make *telemetry* the target of the OpenTelemetry API, as a running service's is."""
        install_propagator(telemetry.config.propagators)
        self.set_tracer_provider(_GlobalTracerProvider())
        if telemetry.enabled:
            # meters handed out before, through the API's proxy, follow it too
            self.set_meter_provider(telemetry.meter_provider)


def _kind(value: SpanKind | str) -> SpanKind:
    return value if isinstance(value, SpanKind) else SpanKind[value.upper()]


def _status(value: StatusCode | str) -> StatusCode:
    return value if isinstance(value, StatusCode) else StatusCode[value.upper()]


def _trace_id(value: int | str) -> int:
    return value if isinstance(value, int) else int(value, 16)


def _describe(span: ReadableSpan) -> str:
    ctx = span.context
    trace_hex = f"{ctx.trace_id:032x}" if ctx else "?"
    return (
        f"{span.name!r} kind={span.kind.name} status={span.status.status_code.name} "
        f"trace={trace_hex} attributes={dict(span.attributes or {})!r}"
    )


class Harness:
    """An isolated, started :class:`~limelight.Telemetry` for tests.

    :param plugins: plugin objects to register (the core's built-in plugins
        are always there).
    :param entry_points: also load every installed plugin (off by default, so
        an installed exporter does not open ports in tests).
    :param env: environment variables the configuration is read from; the
        real environment is not read, so tests are deterministic.
    :param overrides: configuration fields (``series_limit=10``, ...). The
        sampler defaults to ``always_on`` and ``service_name`` to
        ``limelight-test``.
    """

    def __init__(
        self,
        *,
        plugins: Iterable[object] = (),
        entry_points: bool = False,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> None:
        self.capture = SpanCapturePlugin()
        environ = dict(env or {})
        overrides.setdefault("shutdown_timeout", 5.0)
        if "OTEL_TRACES_SAMPLER" not in environ:
            overrides.setdefault("traces_sampler", "always_on")
        if "OTEL_SERVICE_NAME" not in environ:
            overrides.setdefault("service_name", "limelight-test")
        self.telemetry = Telemetry(
            plugins=[*plugins, self.capture],
            entry_points=entry_points,
            environ=environ,
            install_globals=False,
            handle_signals=False,
            **overrides,
        )
        self._globals: _OtelGlobals | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Harness:
        """Start the telemetry: it becomes the running one, and the target of the
        OpenTelemetry globals, until :meth:`stop`. What limelight remembers for the
        process (failures and configuration problems already reported once, the
        instance id, caches) is forgotten first, so this harness sees it afresh."""
        if self._globals is None and not self.telemetry.started:
            reset_process_state()
            saved = _OtelGlobals()
            self.telemetry.start()
            self._globals = saved
            saved.install(self.telemetry)
        return self

    def stop(self) -> None:
        """Stop the telemetry; the previously running one and the OpenTelemetry
        globals as they were before :meth:`start` are restored, and what limelight
        remembered while it ran is forgotten, so the next test starts afresh."""
        self.telemetry.stop()
        saved, self._globals = self._globals, None
        if saved is not None:
            saved.restore()
            reset_process_state()

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def store(self) -> MetricStore:
        """The metric store of this telemetry."""
        return self.telemetry.store

    # -- spans --------------------------------------------------------------------------

    def spans(self) -> list[ReadableSpan]:
        """Every finished span so far, in end order."""
        return list(self.capture.exporter.get_finished_spans())

    def clear_spans(self) -> None:
        """Forget the captured spans."""
        self.capture.exporter.clear()

    def find_spans(
        self,
        name: str | None = None,
        *,
        kind: SpanKind | str | None = None,
        status: StatusCode | str | None = None,
        trace_id: int | str | None = None,
        parent: ReadableSpan | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> list[ReadableSpan]:
        """The finished spans matching every given criterion.

        :param name: exact span name.
        :param kind: ``SpanKind`` or its name (``"server"``).
        :param status: ``StatusCode`` or its name (``"error"``, ``"unset"``, ``"ok"``).
        :param trace_id: as an int or 32 hex digits.
        :param parent: the span's parent must be this span.
        :param attributes: each given attribute must have this value.
        """
        out = []
        for span in self.spans():
            if name is not None and span.name != name:
                continue
            if kind is not None and span.kind != _kind(kind):
                continue
            if status is not None and span.status.status_code != _status(status):
                continue
            if trace_id is not None and (
                span.context is None or span.context.trace_id != _trace_id(trace_id)
            ):
                continue
            if parent is not None and (
                span.parent is None
                or parent.context is None
                or span.parent.span_id != parent.context.span_id
            ):
                continue
            if attributes is not None:
                have = span.attributes or {}
                if any(k not in have or have[k] != v for k, v in attributes.items()):
                    continue
            out.append(span)
        return out

    def span(self, name: str | None = None, **criteria: Any) -> ReadableSpan:
        """The one finished span matching the criteria of :meth:`find_spans`.

        :raises AssertionError: none or several match; the message lists every
            captured span.
        """
        found = self.find_spans(name, **criteria)
        if len(found) == 1:
            return found[0]
        listing = "\n  ".join(_describe(s) for s in self.spans()) or "(none)"
        wanted = ", ".join(
            f"{k}={v!r}" for k, v in {"name": name, **criteria}.items() if v is not None
        )
        raise AssertionError(
            f"expected exactly one span with {wanted}, found {len(found)}; captured:\n  {listing}"
        )

    def wait_for_span(
        self, name: str | None = None, *, timeout: float = 5.0, **criteria: Any
    ) -> ReadableSpan:
        """:meth:`span`, once a matching span has ended or *timeout* seconds passed.

        For spans ended on another thread than the test's: a server ends its
        request span right after writing the response, so the client can hold
        the response a moment before the span exists.
        """
        self.wait_until(lambda: self.find_spans(name, **criteria), timeout)
        return self.span(name, **criteria)

    @staticmethod
    def wait_until(probe: Callable[[], object], timeout: float = 5.0) -> bool:
        """Poll *probe* until it returns something truthy; false after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def trace(self, trace_id: int | str) -> list[ReadableSpan]:
        """Every finished span of one trace."""
        return self.find_spans(trace_id=trace_id)

    # -- metrics ------------------------------------------------------------------------

    def snapshot(self) -> MetricsSnapshot:
        """A snapshot of the metric store."""
        return self.store.snapshot()

    def metric(self, name: str) -> MetricFamily:
        """The family called *name* (namespace included)."""
        try:
            return self.snapshot().family(name)
        except KeyError:
            names = ", ".join(f.name for f in self.snapshot())
            raise AssertionError(f"no metric {name!r}; declared: {names}") from None

    def _point(self, name: str, labels: Mapping[str, Any]) -> NumberPoint | HistogramPoint | None:
        family = self.metric(name)
        want = {k: str(v) for k, v in labels.items()}
        for point in family.points:
            if dict(point.labels) == want:
                return point
        return None

    def _missing(self, name: str, labels: Mapping[str, Any]) -> AssertionError:
        family = self.metric(name)
        have = "\n  ".join(repr(dict(p.labels)) for p in family.points) or "(none)"
        return AssertionError(f"{name} has no series {labels!r}; series:\n  {have}")

    def value(self, name: str, /, default: float | None = None, **labels: Any) -> float:
        """The value of a counter or gauge series with exactly these labels.

        :param default: returned when the series does not exist; without it a
            missing series is an :class:`AssertionError` listing the others.
        """
        point = self._point(name, labels)
        if point is None:
            if default is not None:
                return default
            raise self._missing(name, labels)
        if isinstance(point, HistogramPoint):
            raise AssertionError(f"{name} is a histogram: use histogram()")
        return point.value

    def histogram(self, name: str, /, **labels: Any) -> HistogramPoint:
        """The histogram series with exactly these labels."""
        point = self._point(name, labels)
        if point is None:
            raise self._missing(name, labels)
        if not isinstance(point, HistogramPoint):
            raise AssertionError(f"{name} is not a histogram")
        return point

    def series(self, name: str) -> list[Mapping[str, str]]:
        """The label sets of every series of a metric."""
        return [dict(p.labels) for p in self.metric(name).points]
