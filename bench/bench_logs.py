"""Added CPU per log call: limelight-logs versus opentelemetry-instrumentation-logging.

One run, one process. Every variant writes the same lines through the same
handler (a ``StreamHandler`` on ``os.devnull``); the ids are part of the format
where a variant provides them. Both instrumentations are global, so each round
installs one variant, measures it and takes it out again; rounds are interleaved
so machine noise hits every variant alike. The figure is CPU time per log call
(``time.process_time``) minus the bare call's, as the median of the rounds.

- stdlib: ``logger.info("order %d", i)`` inside a span (a new span every
  ``LINES_PER_SPAN`` calls, in every variant alike); limelight adds the three ids
  and counts the line in ``log_emissions_total``; the peer
  (``LoggingInstrumentor().instrument(inject_trace_context=True)``, its handler
  off) adds its four ``otel*`` fields and counts nothing.
- structlog: ``log.info("order", n=i)`` through ``add_log_level`` and
  ``JSONRenderer`` to ``os.devnull``; limelight's processor adds the ids and the
  count; there is no OpenTelemetry instrumentation of structlog, so the peer is
  the processor the usual recipe writes (``trace.get_current_span()`` and
  ``format(..., "032x")``), without a count. Both add the same three keys with the
  same text (``trace_id`` 32, ``span_id`` 16, ``trace_flags`` 2 hex digits), so the
  rendered lines are alike; limelight's processor runs as
  ``LIMELIGHT_LOGS_INSTRUMENT=structlog`` leaves it (``logging`` not instrumented).
  ``bare, the ids' text formatted`` adds three fixed strings instead: what having
  the ids in the line costs, which every variant with ids pays.

    nox -s "bench(logs)"
"""

from __future__ import annotations

import logging
import os
import statistics
from collections.abc import Callable, MutableMapping
from typing import Any

import limelight_logs
import structlog
from _common import cpu_per_op
from opentelemetry import trace
from opentelemetry.instrumentation.logging import LoggingInstrumentor

import limelight

OPS = int(os.environ.get("BENCH_OPS", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
LINES_PER_SPAN = 10
TARGET = 0.5  # of the peer's added cost

PLAIN = "%(levelname)s %(name)s %(message)s"
IDS = " trace_id=%(trace_id)s span_id=%(span_id)s trace_flags=%(trace_flags)s"
FIXED = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
RENDERING = "bare, the ids' text formatted (fixed values)"
FORMATS = {
    "bare logging": PLAIN,
    "limelight-logs (ids + counter)": PLAIN + IDS,
    "opentelemetry-instrumentation-logging (ids)": PLAIN
    + " trace_id=%(otelTraceID)s span_id=%(otelSpanID)s sampled=%(otelTraceSampled)s",
}


def _recipe(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """The structlog processor the usual OpenTelemetry recipe writes."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
        event_dict["trace_flags"] = format(ctx.trace_flags, "02x")
    return event_dict


def _fixed(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Three fixed strings: what rendering the ids costs, without finding them."""
    event_dict["trace_id"] = FIXED["trace_id"]
    event_dict["span_id"] = FIXED["span_id"]
    event_dict["trace_flags"] = "01"
    return event_dict


def main() -> int:
    telemetry = limelight.Telemetry(
        plugins=[limelight_logs.plugin],
        entry_points=False,
        install_globals=True,  # the peer reads the current span through the API, as ours
        handle_signals=False,
        environ={"LIMELIGHT_LOGS_INSTRUMENT": "none", "OTEL_TRACES_EXPORTER": "none"},
        service_name="bench-logs",
        traces_sampler="always_on",
    ).start()
    tracer = telemetry.tracer("bench")
    sink = open(os.devnull, "w")  # noqa: SIM115 - closed at the end
    handler = logging.StreamHandler(sink)
    logger = logging.getLogger("bench.shop")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)

    span_box: list[Any] = [None]

    def in_spans(call: Callable[[int], None]) -> Callable[[int], None]:
        def op(i: int) -> None:
            if i % LINES_PER_SPAN == 0:
                if span_box[0] is not None:
                    span_box[0].__exit__(None, None, None)
                span_box[0] = trace.use_span(tracer.start_span("request"), end_on_exit=True)
                span_box[0].__enter__()
            call(i)

        return op

    def close_span() -> None:
        if span_box[0] is not None:
            span_box[0].__exit__(None, None, None)
            span_box[0] = None

    def stdlib_line(i: int) -> None:
        logger.info("order %d", i)

    processors: dict[str, list[Any]] = {
        "bare structlog": [structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        RENDERING: [
            structlog.processors.add_log_level,
            _fixed,
            structlog.processors.JSONRenderer(),
        ],
        "limelight-logs processor (ids + counter)": [
            structlog.processors.add_log_level,
            limelight_logs.add_trace_context,
            structlog.processors.JSONRenderer(),
        ],
        "hand-written OpenTelemetry processor (ids)": [
            structlog.processors.add_log_level,
            _recipe,
            structlog.processors.JSONRenderer(),
        ],
    }
    slog = structlog.wrap_logger(structlog.WriteLogger(sink))

    def structlog_line(i: int) -> None:
        slog.info("order", n=i)

    peer = LoggingInstrumentor()

    def stdlib_variant(name: str) -> float:
        handler.setFormatter(logging.Formatter(FORMATS[name]))
        if name.startswith("limelight"):
            limelight_logs.instrument("logging")
        elif name.startswith("opentelemetry"):
            peer.instrument(inject_trace_context=True, enable_log_auto_instrumentation=False)
        try:
            return cpu_per_op(in_spans(stdlib_line), OPS)
        finally:
            close_span()
            limelight_logs.uninstrument("logging")
            if peer.is_instrumented_by_opentelemetry:
                peer.uninstrument()

    def structlog_variant(name: str) -> float:
        structlog.configure(processors=processors[name])
        try:
            return cpu_per_op(in_spans(structlog_line), OPS)
        finally:
            close_span()

    results: dict[tuple[str, str], list[float]] = {}
    try:
        for round_number in range(ROUNDS + 1):  # the first round warms up
            for name in FORMATS:
                cost = stdlib_variant(name)
                if round_number:
                    results.setdefault(("logging", name), []).append(cost)
            for name in processors:
                cost = structlog_variant(name)
                if round_number:
                    results.setdefault(("structlog", name), []).append(cost)
        lines = telemetry.store.get("log_emissions_total").labels("info")
        counted = lines.get() if hasattr(lines, "get") else None
    finally:
        telemetry.stop()
        sink.close()

    print(
        f"{OPS} log calls x {ROUNDS} rounds, a new span every {LINES_PER_SPAN} calls, "
        "CPU µs per call (median)"
    )
    print(f"{'library':10} {'variant':46} {'CPU µs/call':>11} {'added µs':>9}")
    verdicts = []
    for library, names in (("logging", list(FORMATS)), ("structlog", list(processors))):
        bare = statistics.median(results[(library, names[0])])
        added = {}
        for name in names:
            cost = statistics.median(results[(library, name)])
            added[name] = cost - bare
            extra = "" if name == names[0] else f"{cost - bare:+9.2f}"
            print(f"{library:10} {name:46} {cost:11.2f} {extra:>9}")
        ours, theirs = added[names[-2]], added[names[-1]]
        ratio = ours / theirs if theirs > 0 else float("inf")
        verdict = "within" if ratio <= TARGET else "over"
        line = (
            f"{library}: limelight adds {ours:.2f} µs with ids and the counter, the peer "
            f"{theirs:.2f} µs with ids: {ratio:.0%} of its cost ({verdict} the target of "
            f"{TARGET:.0%})"
        )
        if RENDERING in added:
            render = added[RENDERING]
            own = (ours - render) / (theirs - render) if theirs > render else float("inf")
            line += (
                f"; both pay {render:.2f} µs for the ids' text in the line, without which "
                f"limelight's work is {own:.0%} of the peer's"
            )
        verdicts.append(line)
    print()
    print("\n".join(verdicts))
    if counted is not None:
        print(f"(lines counted in log_emissions_total{{level=info}}: {counted:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
