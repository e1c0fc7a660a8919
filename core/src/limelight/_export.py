"""What every exporter needs around its exports: a worker thread and failure accounting.

:class:`ExportWorker` runs an exporter's work in one daemon thread, every
*interval* seconds or when woken, and lets callers ask for a run and wait for
it with a deadline, so a down or slow endpoint never holds the caller longer
than its timeout. :class:`ExportHealth` counts failed exports in
``limelight_export_errors_total{exporter}`` and logs a failure episode twice:
when it starts and when exports recover, never once per export.
:func:`suppressed` keeps an exporter's own network calls out of the surfaces
that would record them.

The core's batch span processor and the OTLP metric reader are built on them;
a third-party exporter can be too.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry.context import attach, detach, set_value

from limelight_hookspecs import SelfMetrics

from ._failures import report_failure
from ._log import get_logger
from ._sdk.context import SUPPRESS_INSTRUMENTATION_KEY

__all__ = ["ExportHealth", "ExportWorker", "run_bounded", "suppressed"]

_log = get_logger("limelight")


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Within this block instrumented clients record nothing (an exporter's own calls)."""
    token = attach(set_value(SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        detach(token)


def run_bounded(fn: Callable[[], object], timeout: float, what: str) -> bool:
    """Run *fn* in a daemon helper thread and wait for it at most *timeout* seconds.

    For the steps of a shutdown that can block for longer than the caller may
    wait (an exporter's ``shutdown`` waiting on an in-flight export): the caller
    returns by its deadline and the step goes on in the background. An
    exception from *fn* is logged. True when *fn* finished in time.
    """
    done = threading.Event()

    def target() -> None:
        try:
            fn()
        except Exception as exc:
            _log.warning("shutdown step failed", step=what, error=repr(exc))
        finally:
            done.set()

    thread = threading.Thread(target=target, name=f"limelight-stop-{what}", daemon=True)
    thread.start()
    if not done.wait(max(0.0, timeout)):
        _log.warning("shutdown step timed out", step=what, timeout=round(timeout, 3))
        return False
    return True


class ExportWorker:
    """One daemon thread running ``work(flush)``, periodically and on request.

    :param name: the thread name.
    :param interval: seconds between two runs when nobody asks for one (> 0).
    :param work: called in the thread; *flush* is true when a caller asked
        for everything recorded so far. An exception is reported once and the
        thread keeps running.
    """

    def __init__(self, name: str, interval: float, work: Callable[[bool], None]) -> None:
        if not interval > 0:
            # 0 would make the thread spin; a negative value makes Event.wait return at once
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.name = name
        self.interval = interval
        self._work = work
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._requested = 0
        self._done = 0
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def restart(self) -> None:
        """A fresh thread (and locks) in a forked child, which inherits neither running."""
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self.start()

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called and :meth:`close` was not (in a forked
        child: whether the parent's worker was running at the fork)."""
        return self._thread is not None and not self._closing

    @property
    def alive(self) -> bool:
        """Whether the thread runs and has not been asked to stop."""
        thread = self._thread
        return not self._closing and thread is not None and thread.is_alive()

    def is_current(self) -> bool:
        """Whether the caller runs in the worker thread (in ``work``)."""
        return self._thread is threading.current_thread()

    def wake(self) -> None:
        """Run soon, without waiting for the interval."""
        if not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Ask for a run with ``flush=True``; true when it finished within *timeout*."""
        if not self.alive:
            return False
        deadline = time.monotonic() + timeout
        with self._cond:
            self._requested += 1
            target = self._requested
        self._wake.set()
        with self._cond:
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.alive:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float) -> bool:
        """Stop after the current run; true when the thread ended within *timeout*."""
        self._closing = True
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(max(0.0, timeout))
        return not thread.is_alive()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closing:
                return
            with self._cond:
                target = self._requested
            try:
                self._work(target > self._done)
            except Exception as exc:
                report_failure("export", self.name, exc)
            with self._cond:
                self._done = max(self._done, target)
                self._cond.notify_all()


class ExportHealth:
    """Counts failed exports and logs each failure episode once when it starts and ends.

    :param self_metrics: where failures are counted (``telemetry.self_metrics``).
    :param exporter: the ``exporter`` label of ``limelight_export_errors_total``.
    :param what: what is exported, for the log lines (``"span export"``).
    :param consequence: what a failure costs, said once in the warning.
    """

    def __init__(
        self, self_metrics: SelfMetrics, exporter: str, what: str, consequence: str
    ) -> None:
        self._metrics = self_metrics
        self.exporter = exporter
        self._what = what
        self._consequence = consequence
        self.failing = False
        self.failures = 0

    def succeeded(self) -> None:
        """An export went through: log the recovery when exports were failing."""
        if self.failing:
            self.failing = False
            _log.info(f"{self._what} recovered", exporter=self.exporter)

    def failed(self, error: str, **fields: Any) -> None:
        """An export failed with *error*: count it, warn when a failure episode starts."""
        self.failures += 1
        self._metrics.export_error(self.exporter)
        if not self.failing:
            self.failing = True
            _log.warning(
                f"{self._what} failing; {self._consequence}",
                exporter=self.exporter,
                error=error,
                **fields,
            )
