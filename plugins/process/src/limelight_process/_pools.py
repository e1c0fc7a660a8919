"""Pool tasks: the submitter's context travels with each task; each is counted and traced.

At submit time (``ProcessPoolExecutor.submit`` and so ``map``;
``multiprocessing.Pool.apply_async``, ``map_async``, ``starmap_async`` and so
``apply``, ``map``, ``starmap``; ``imap`` and ``imap_unordered``) the callable
is wrapped with the submitter's current context into a picklable
:class:`Task`. In the worker, the task makes that context current (whatever
context the worker process was started in) and, when the worker runs
telemetry, runs the function in a CONSUMER span named after it.

In the submitter, every task handed over is counted (``kind="pool_task"``):
started at submit, active until its result is in, terminated with
``result="error"`` when it raised (or was cancelled), its duration from submit
to result. An executor task is one ``submit`` (an executor's ``map`` submits
one per chunk, one item by default); a ``Pool`` task is one ``apply_async`` or
one ``map``-family call, since the pool reports one result for it. ``imap``
and ``imap_unordered`` deliver results one by one with no end to observe:
their items carry the context and get worker spans, but are not counted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.trace import SpanKind, Status, StatusCode

from limelight.propagation import inject_span
from limelight.semconv import CODE_FUNCTION_NAME, ERROR_TYPE
from limelight.surface import (
    Patches,
    current_context,
    current_span,
    error_type,
    report_failure,
)

from . import _children
from ._instruments import Instruments, Run, binding
from ._metrics import POOL_TASK
from ._names import callable_name

__all__ = ["Task", "install_executor", "install_pool"]

_CONSUMER = SpanKind.CONSUMER


class Task:
    """A pool task's callable with its submitter's context (picklable with *fn*).

    :param fn: what the worker calls.
    :param carrier: the submitter's context as the global propagator injects it.
    :param name: the span name (``module.qualname`` of *fn*).
    """

    __slots__ = ("carrier", "fn", "name")

    def __init__(self, fn: Callable[..., Any], carrier: dict[str, str], name: str) -> None:
        self.fn = fn
        self.carrier = carrier
        self.name = name

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return Task, (self.fn, self.carrier, self.name)

    def __repr__(self) -> str:
        return f"<limelight_process.Task {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            _children.arm()
            inst = binding.get()
            carrier = self.carrier
            token = attach(propagate.extract(carrier) if carrier else Context())
        except Exception as exc:
            report_failure("process", "begin pool task", exc)
            return self.fn(*args, **kwargs)
        try:
            if not inst.enabled:
                return self.fn(*args, **kwargs)
            return _traced(inst, self.fn, self.name, args, kwargs)
        finally:
            detach(token)


def _traced(inst: Instruments, fn: Callable[..., Any], name: str, args: Any, kwargs: Any) -> Any:
    span = inst.tracer.start_span(name, kind=_CONSUMER, attributes={CODE_FUNCTION_NAME: name})
    with trace.use_span(span, end_on_exit=True, record_exception=False):
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_attribute(ERROR_TYPE, error_type(exc))
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def _carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    inject_span(carrier, current_span(), current_context())
    return carrier


def _task(fn: Callable[..., Any], carrier: dict[str, str]) -> Task:
    return fn if isinstance(fn, Task) else Task(fn, carrier, callable_name(fn))


def _end_from_future(run: Run) -> Callable[[Future[Any]], None]:
    def done(future: Future[Any]) -> None:
        if future.cancelled():
            from concurrent.futures import CancelledError

            run.failed(CancelledError())
            return
        exc = future.exception()
        if exc is None:
            run.succeeded()
        else:
            run.failed(exc)

    return done


def install_executor(patches: Patches) -> None:
    """Wrap ``ProcessPoolExecutor.submit``."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures import process as futures_process

    chunk = getattr(futures_process, "_process_chunk", None)
    original = ProcessPoolExecutor.submit
    get = binding.get

    def submit(
        self: ProcessPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        inst = get()
        if not inst.enabled:
            return original(self, fn, *args, **kwargs)
        try:
            carrier = _carrier()
            if type(fn) is functools.partial and fn.func is chunk and fn.args:
                # an executor's map: one span per item, in the worker
                task: Any = functools.partial(chunk, _task(fn.args[0], carrier), *fn.args[1:])
            else:
                task = _task(fn, carrier)
            run = Run(inst.series[POOL_TASK], None)
        except Exception as exc:
            report_failure("process", "begin pool task", exc)
            return original(self, fn, *args, **kwargs)
        try:
            future = original(self, task, *args, **kwargs)
        except BaseException as exc:
            run.failed(exc)
            raise
        future.add_done_callback(_end_from_future(run))
        return future

    submit.__wrapped__ = original  # type: ignore[attr-defined]
    patches.wrap(ProcessPoolExecutor, "submit", submit)
    _children.arm()


def _callbacks(
    run: Run, callback: Callable[[Any], Any] | None, error_callback: Callable[[Any], Any] | None
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    def on_result(value: Any) -> None:
        run.succeeded()
        if callback is not None:
            callback(value)

    def on_error(exc: Any) -> None:
        run.failed(exc if isinstance(exc, BaseException) else RuntimeError(repr(exc)))
        if error_callback is not None:
            error_callback(exc)

    return on_result, on_error


def _ended_already(run: Run, result: Any) -> None:
    """A result that is ready when the call returns (an empty map reports no callback)."""
    try:
        if result.ready():
            if result.successful():
                run.succeeded()
            else:
                try:
                    result.get(0)
                except BaseException as exc:
                    run.failed(exc)
    except Exception as exc:
        report_failure("process", "pool result", exc)


def install_pool(patches: Patches) -> None:
    """Wrap ``Pool.apply_async``, ``Pool._map_async``, ``Pool.imap`` and ``Pool.imap_unordered``."""
    from multiprocessing.pool import Pool

    get = binding.get
    apply_async = Pool.apply_async
    # the map, map_async, starmap and starmap_async of the pool (not in the stubs)
    map_async = Pool._map_async  # type: ignore[attr-defined]

    def begin(inst: Instruments, func: Callable[..., Any]) -> tuple[Task, Run] | None:
        try:
            return _task(func, _carrier()), Run(inst.series[POOL_TASK], None)
        except Exception as exc:
            report_failure("process", "begin pool task", exc)
            return None

    def apply_async_(
        self: Pool,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: dict[str, Any] | None = None,
        callback: Callable[[Any], Any] | None = None,
        error_callback: Callable[[BaseException], Any] | None = None,
    ) -> Any:
        kwds = {} if kwds is None else kwds
        inst = get()
        begun = begin(inst, func) if inst.enabled else None
        if begun is None:
            return apply_async(self, func, args, kwds, callback, error_callback)
        task, run = begun
        on_result, on_error = _callbacks(run, callback, error_callback)
        try:
            result = apply_async(self, task, args, kwds, on_result, on_error)
        except BaseException as exc:
            run.failed(exc)
            raise
        _ended_already(run, result)
        return result

    def map_async_(
        self: Pool,
        func: Callable[..., Any],
        iterable: Iterable[Any],
        mapper: Callable[..., Any],
        chunksize: int | None = None,
        callback: Callable[[Any], Any] | None = None,
        error_callback: Callable[[BaseException], Any] | None = None,
    ) -> Any:
        inst = get()
        begun = begin(inst, func) if inst.enabled else None
        if begun is None:
            return map_async(self, func, iterable, mapper, chunksize, callback, error_callback)
        task, run = begun
        on_result, on_error = _callbacks(run, callback, error_callback)
        try:
            result = map_async(self, task, iterable, mapper, chunksize, on_result, on_error)
        except BaseException as exc:
            run.failed(exc)
            raise
        _ended_already(run, result)
        return result

    def imap_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
        def imap(
            self: Pool, func: Callable[..., Any], iterable: Iterable[Any], chunksize: int = 1
        ) -> Any:
            inst = get()
            if inst.enabled:
                try:
                    func = _task(func, _carrier())
                except Exception as exc:
                    report_failure("process", "begin pool task", exc)
            return original(self, func, iterable, chunksize)

        imap.__wrapped__ = original  # type: ignore[attr-defined]
        return imap

    apply_async_.__wrapped__ = apply_async  # type: ignore[attr-defined]
    map_async_.__wrapped__ = map_async  # type: ignore[attr-defined]
    patches.wrap(Pool, "apply_async", apply_async_)
    patches.wrap(Pool, "_map_async", map_async_)
    patches.wrap(Pool, "imap", imap_wrapper(Pool.imap))
    patches.wrap(Pool, "imap_unordered", imap_wrapper(Pool.imap_unordered))
    _children.arm()
