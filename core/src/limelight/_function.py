"""The function surface: ``@instrument`` and the interceptor chain it runs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from limelight_hookspecs import AttributeValue, CallHandler, FunctionTarget, SpanRole

from ._binding import TelemetryBinding
from ._failures import report_failure

if TYPE_CHECKING:
    from ._telemetry import Telemetry

__all__ = ["instrument"]

F = TypeVar("F", bound=Callable[..., Any])


class _Chain:
    """The handlers of one function for one telemetry start, with their bound
    methods resolved once so a call does no attribute lookups."""

    __slots__ = ("activate", "deactivate", "enters", "exits", "handlers")

    def __init__(self, handlers: tuple[CallHandler, ...]) -> None:
        self.handlers = handlers
        self.enters = tuple((h, h.enter) for h in handlers)
        n = len(handlers)
        # innermost first, with the index of the state each exit receives
        self.exits = tuple((n - 1 - i, h, h.exit) for i, h in enumerate(reversed(handlers)))
        self.activate = tuple((i, h, h.activate) for i, h in enumerate(handlers) if h.activates)
        self.deactivate = tuple((h, h.deactivate) for h in reversed(handlers) if h.activates)


def _report(handler: CallHandler, phase: str, exc: BaseException) -> None:
    report_failure("function", f"{type(handler).__qualname__}.{phase}", exc)


def _bind(telemetry: Telemetry, target: FunctionTarget) -> _Chain:
    """The chain of *target* under *telemetry* (empty when telemetry is not enabled)."""
    handlers: list[CallHandler] = []
    if telemetry.enabled:
        for interceptor in telemetry.interceptors:
            try:
                handler = interceptor.bind(target)
            except Exception as exc:
                report_failure("function", f"bind {interceptor.name}", exc)
                continue
            if handler is not None:
                handlers.append(handler)
    return _Chain(tuple(handlers))


def _enter(chain: _Chain) -> list[object]:
    states: list[object] = []
    append = states.append
    for handler, enter in chain.enters:
        try:
            append(enter())
        except Exception as exc:
            _report(handler, "enter", exc)
            append(_FAILED)
    return states


def _activate(chain: _Chain, states: list[object]) -> list[object]:
    tokens: list[object] = []
    for index, handler, activate in chain.activate:
        state = states[index]
        if state is _FAILED:
            tokens.append(_FAILED)
            continue
        try:
            tokens.append(activate(state))
        except Exception as exc:
            _report(handler, "activate", exc)
            tokens.append(_FAILED)
    return tokens


def _deactivate(chain: _Chain, tokens: list[object]) -> None:
    i = len(tokens)
    for handler, deactivate in chain.deactivate:
        i -= 1
        token = tokens[i]
        if token is _FAILED:
            continue
        try:
            deactivate(token)
        except Exception as exc:
            _report(handler, "deactivate", exc)


def _exit(chain: _Chain, states: list[object], error: BaseException | None) -> None:
    for index, handler, exit_ in chain.exits:
        state = states[index]
        if state is _FAILED:
            continue
        try:
            exit_(state, error)
        except Exception as exc:
            _report(handler, "exit", exc)


def _exit_active(chain: _Chain, states: list[object], error: BaseException | None) -> None:
    """:func:`_exit` with the chain active, as a plain call exits: the duration
    observed on exit links (exemplar) to the call's own span."""
    tokens = _activate(chain, states) if chain.activate else None
    try:
        _exit(chain, states, error)
    finally:
        if tokens is not None:
            _deactivate(chain, tokens)


class _Failed:
    __slots__ = ()


_FAILED = _Failed()


def _target_for(
    fn: Callable[..., Any],
    name: str | None,
    role: SpanRole | str,
    attributes: Mapping[str, AttributeValue] | None,
) -> FunctionTarget:
    module = getattr(fn, "__module__", None) or "unknown"
    qualname = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function"))
    is_asyncgen = inspect.isasyncgenfunction(fn)
    return FunctionTarget(
        name=name or f"{module}.{qualname}",
        module=module,
        qualname=qualname,
        role=SpanRole(role),
        attributes=dict(attributes or {}),
        is_async=inspect.iscoroutinefunction(fn) or is_asyncgen,
        is_generator=inspect.isgeneratorfunction(fn) or is_asyncgen,
    )


@overload
def instrument(fn: F, /) -> F: ...


@overload
def instrument(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    role: SpanRole | str = SpanRole.AUTO,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Callable[[F], F]: ...


def instrument(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    role: SpanRole | str = SpanRole.AUTO,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> F | Callable[[F], F]:
    """Instrument a function: calls, duration, in-flight, and a span.

    Works on plain functions, coroutine functions, generator functions and
    async generator functions (a generator is measured from its first step to
    its exhaustion or close). Emits ``function_calls_total``,
    ``function_duration_seconds`` and ``function_in_flight`` with labels
    ``function`` and ``result`` (``ok``/``error``), and a span that is SERVER
    when it starts a trace and INTERNAL under a parent (see *role*).

    The interceptor chain is resolved on the first call after telemetry starts
    and cached; with no telemetry running the call goes straight through.
    Exceptions from the function propagate unchanged; a failing interceptor is
    reported once and never affects the call.

    :param name: the ``function`` label and span name (default ``module.qualname``).
    :param role: the span kind; ``auto`` (SERVER at the root, INTERNAL below),
        or ``consumer`` for a function run for a queue delivery, etc.
    :param attributes: extra span attributes.
    """
    if fn is None:
        return lambda f: _wrap(f, _target_for(f, name, role, attributes))
    return _wrap(fn, _target_for(fn, name, role, attributes))


def _wrap(fn: F, target: FunctionTarget) -> F:
    get = TelemetryBinding(functools.partial(_bind, target=target)).get

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            chain = get()
            if not chain.handlers:
                return fn(*args, **kwargs)  # type: ignore[no-any-return]
            return _drive_async_gen(fn(*args, **kwargs), chain)

        wrapper: Callable[..., Any] = agen_wrapper
    elif inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            chain = get()
            if not chain.handlers:
                return fn(*args, **kwargs)  # type: ignore[no-any-return]
            return _drive_gen(fn(*args, **kwargs), chain)

        wrapper = gen_wrapper
    elif inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            chain = get()
            if not chain.handlers:
                return await fn(*args, **kwargs)
            states = _enter(chain)
            tokens = _activate(chain, states) if chain.activate else None
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                _exit(chain, states, exc)
                if tokens is not None:
                    _deactivate(chain, tokens)
                raise
            _exit(chain, states, None)
            if tokens is not None:
                _deactivate(chain, tokens)
            return result

        wrapper = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            chain = get()
            if not chain.handlers:
                return fn(*args, **kwargs)
            states = _enter(chain)
            tokens = _activate(chain, states) if chain.activate else None
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                _exit(chain, states, exc)
                if tokens is not None:
                    _deactivate(chain, tokens)
                raise
            _exit(chain, states, None)
            if tokens is not None:
                _deactivate(chain, tokens)
            return result

        wrapper = sync_wrapper
    wrapper.__limelight_target__ = target  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _drive_gen(gen: Generator[Any, Any, Any], chain: _Chain) -> Generator[Any, Any, Any]:
    """Run *gen* step by step with the chain active around each step."""
    states = _enter(chain)
    error: BaseException | None = None
    send: Callable[[Any], Any] = gen.send
    value: Any = None
    try:
        while True:
            tokens = _activate(chain, states) if chain.activate else None
            try:
                item = send(value)
            except StopIteration as stop:
                return stop.value
            finally:
                if tokens is not None:
                    _deactivate(chain, tokens)
            try:
                value = yield item
                send = gen.send
            except GeneratorExit:
                tokens = _activate(chain, states) if chain.activate else None
                try:
                    gen.close()
                finally:
                    if tokens is not None:
                        _deactivate(chain, tokens)
                raise
            except BaseException as exc:
                send, value = gen.throw, exc
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        _exit_active(chain, states, error)


async def _drive_async_gen(
    agen: AsyncGenerator[Any, Any], chain: _Chain
) -> AsyncGenerator[Any, Any]:
    """Run *agen* step by step with the chain active around each step."""
    states = _enter(chain)
    error: BaseException | None = None
    value: Any = None
    throw: BaseException | None = None
    try:
        while True:
            tokens = _activate(chain, states) if chain.activate else None
            try:
                if throw is not None:
                    item = await agen.athrow(throw)
                else:
                    item = await agen.asend(value)
            except StopAsyncIteration:
                return
            finally:
                throw = None
                if tokens is not None:
                    _deactivate(chain, tokens)
            try:
                value = yield item
            except GeneratorExit:
                tokens = _activate(chain, states) if chain.activate else None
                try:
                    await agen.aclose()
                finally:
                    if tokens is not None:
                        _deactivate(chain, tokens)
                raise
            except BaseException as exc:
                throw = exc
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        _exit_active(chain, states, error)
