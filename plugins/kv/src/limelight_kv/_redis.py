"""redis-py clients (sync and asyncio, pipelines included).

:func:`instrument_redis` wraps the execute path of one client instance: its
``execute_command`` and ``pipeline`` (and, on the pipelines it returns,
``execute`` and ``immediate_execute_command``). Nothing is patched at class
level: other clients, and redis-py itself, are untouched. redis-py offers no
per-command hook (its event dispatcher covers connection lifecycle only, and
its built-in OpenTelemetry recorder is process-global with no per-client
namespace), and instance attributes are how redis-py itself attaches extra
commands (``Redis.load_external_module``).

:func:`install` is the instrument contract's step for ``"redis"``: the
``__init__`` of ``redis.Redis`` and ``redis.asyncio.Redis`` is wrapped so
that every client made afterwards goes through :func:`instrument_redis` with
its :func:`default_namespace`; :func:`remove` undoes it on those clients.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from opentelemetry.util.types import AttributeValue

from limelight.semconv import (
    DB_NAMESPACE,
    DB_OPERATION_BATCH_SIZE,
    DB_SYSTEM_NAME,
    SERVER_ADDRESS,
    SERVER_PORT,
)
from limelight.surface import Patches, TelemetryBinding

from ._instruments import Bound, Op, client_binding, perf_counter, report_failure

__all__ = [
    "DEFAULT_NAMESPACE",
    "default_namespace",
    "install",
    "instrument_redis",
    "is_client_instrumented",
    "remove",
    "uninstrument_redis",
]

R = TypeVar("R")

_STATE = "_limelight_kv"
_WRAPPED = ("execute_command", "pipeline", "execute", "immediate_execute_command")
_lock = threading.Lock()

PIPELINE = "PIPELINE"
MULTI = "MULTI"


def _status_code(exc: BaseException) -> str | None:
    """The Redis error prefix (``WRONGTYPE``, ``ERR``) of a server error reply."""
    from redis.exceptions import ResponseError

    if not isinstance(exc, ResponseError) or not exc.args:
        return None
    first = str(exc.args[0]).split(" ", 1)[0]
    return first if first.isupper() and first.isalpha() else "ERR"


def _server_attributes(client: Any) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {DB_SYSTEM_NAME: "redis"}
    kwargs = _connection_kwargs(client)
    path = kwargs.get("path")
    host = kwargs.get("host")
    if path:
        attributes[SERVER_ADDRESS] = str(path)
    elif host:
        attributes[SERVER_ADDRESS] = str(host)
        port = kwargs.get("port")
        if isinstance(port, int) and port != 6379:
            attributes[SERVER_PORT] = port
    db = kwargs.get("db")
    if isinstance(db, int):
        attributes[DB_NAMESPACE] = str(db)
    return attributes


def _connection_kwargs(client: Any) -> Mapping[str, Any]:
    pool = getattr(client, "connection_pool", None)
    kwargs: Mapping[str, Any] = getattr(pool, "connection_kwargs", None) or {}
    return kwargs


class _State:
    """What :func:`instrument_redis` attached to one client or pipeline (*auto*: through
    the instrument contract, :func:`install`, not an explicit call)."""

    __slots__ = ("auto", "binding", "previous")

    def __init__(self, binding: TelemetryBinding[Bound], auto: bool = False):
        self.binding = binding
        self.previous: dict[str, Any] = {}
        self.auto = auto


def _is_async(client: object) -> bool:
    try:
        from redis.asyncio import Redis as AsyncRedis
    except ImportError:  # pragma: no cover - redis without asyncio support
        return False
    return isinstance(client, AsyncRedis)


def _is_pipeline(client: object) -> bool:
    from redis.asyncio.client import Pipeline as AsyncPipeline
    from redis.client import Pipeline

    return isinstance(client, Pipeline | AsyncPipeline)


def is_client_instrumented(client: object) -> bool:
    """Whether *client* is instrumented (by :func:`instrument_redis`, or by
    ``limelight_kv.instrument("redis")`` when it was made), and it was not undone."""
    return _STATE in vars(client)


def instrument_redis(client: R, namespace: str, *, spans: bool | None = None) -> R:
    """Instrument one redis-py client in place and return it.

    Works on ``redis.Redis`` and ``redis.asyncio.Redis`` (and their
    subclasses), and on a pipeline. Pipelines created by an instrumented client
    are instrumented too. Every command records ``kv_ops_total`` and
    ``kv_op_duration_seconds`` with ``namespace``, ``op`` (the command name
    lowercased, ``DEL`` as ``delete``; ``pipeline`` or ``multi`` for a pipeline
    execution) and ``result`` (``ok``; ``not_found`` when a read found nothing;
    ``error`` when it raised, the exception propagating unchanged).

    Instrumenting again replaces the namespace and span setting; other
    clients are never affected.

    :param client: the client to instrument.
    :param namespace: what the client stores, for example ``"sessions"``;
        the ``namespace`` label. Never a key.
    :param spans: create a CLIENT span per command; ``None`` follows
        ``LIMELIGHT_KV_SPANS`` (off by default).
    :raises ValueError: *namespace* is empty.
    :raises TypeError: *client* is not a redis-py client.
    """
    try:
        from redis import Redis
        from redis.asyncio import Redis as AsyncRedis
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise TypeError(
            "instrument_redis needs redis-py (pip install limelight-kv[redis])"
        ) from exc
    if not isinstance(client, Redis | AsyncRedis):
        raise TypeError(f"expected a redis-py client, got {type(client).__qualname__}")
    _instrument(client, namespace, spans, auto=False)
    return client


def _instrument(client: Any, namespace: str, spans: bool | None, *, auto: bool) -> None:
    binding = client_binding(namespace, spans, _server_attributes(client), _status_code)
    state = _State(binding, auto)
    with _lock:
        uninstrument_redis(client)
        if _is_pipeline(client):
            _instrument_pipeline(client, state)
        else:
            _instrument_client(client, state)


def uninstrument_redis(client: object) -> None:
    """Undo :func:`instrument_redis` on *client* (pipelines it already made keep recording)."""
    attrs = vars(client)
    state: _State | None = attrs.pop(_STATE, None)
    if state is None:
        return
    for name in _WRAPPED:
        if name in state.previous:
            setattr(client, name, state.previous[name])
        elif name in attrs and getattr(attrs[name], "_limelight_kv", False):
            del attrs[name]


def _replace(target: Any, name: str, state: _State, wrapper: Callable[..., Any]) -> None:
    current = vars(target).get(name)
    if current is not None:
        state.previous[name] = current
    wrapper._limelight_kv = True  # type: ignore[attr-defined]
    setattr(target, name, wrapper)


def _instrument_client(client: Any, state: _State) -> None:
    is_async = _is_async(client)
    execute = client.execute_command
    original_pipeline = client.pipeline
    get = state.binding.get
    wrapper = (_async_command if is_async else _sync_command)(execute, get)

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = original_pipeline(*args, **kwargs)
        try:
            _instrument_pipeline(pipe, state)
        except Exception as exc:
            report_failure("redis pipeline", exc)
        return pipe

    vars(client)[_STATE] = state
    _replace(client, "execute_command", state, wrapper)
    _replace(client, "pipeline", state, pipeline)


def _instrument_pipeline(pipe: Any, state: _State) -> None:
    is_async = _is_async(pipe)
    get = state.binding.get
    immediate = (_async_command if is_async else _sync_command)(pipe.immediate_execute_command, get)
    execute = (_async_pipeline if is_async else _sync_pipeline)(pipe, pipe.execute, get)
    vars(pipe)[_STATE] = state
    _replace(pipe, "immediate_execute_command", state, immediate)
    _replace(pipe, "execute", state, execute)


# -- every client made while instrumented (the instrument contract) ---------------------

DEFAULT_NAMESPACE = "redis"
"""The ``namespace`` of a client instrumented by ``instrument("redis")``, database 0."""

_AUTO: weakref.WeakSet[Any] = weakref.WeakSet()
"""The clients the contract instrumented, for :func:`remove` to undo."""


def default_namespace(client: Any) -> str:
    """The namespace ``instrument("redis")`` gives *client*: ``redis`` for database 0
    (the default), ``redis/<n>`` for database *n*, as the client's connection pool has it."""
    db = _connection_kwargs(client).get("db")
    if isinstance(db, int) and db != 0:
        return f"{DEFAULT_NAMESPACE}/{db}"
    return DEFAULT_NAMESPACE


def _auto_instrument(client: Any) -> None:
    """Instrument a client just made, unless something did already; never raises."""
    try:
        if _STATE in vars(client):
            return
        _instrument(client, default_namespace(client), None, auto=True)
        _AUTO.add(client)
    except Exception as exc:  # the client works as it would without limelight
        report_failure("redis instrument", exc)


def _wrapped_init(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _auto_instrument(self)

    return init


def install(patches: Patches) -> None:
    """Instrument every ``redis.Redis`` and ``redis.asyncio.Redis`` made from now on.

    Their ``__init__`` (inherited by subclasses; a pipeline has its own and is
    instrumented by the client that makes it) is wrapped through *patches*:
    the new client is instrumented as :func:`instrument_redis` would, with
    :func:`default_namespace` and spans as ``LIMELIGHT_KV_SPANS`` says. An
    explicit :func:`instrument_redis` afterwards replaces that namespace.
    """
    from redis import Redis
    from redis.asyncio import Redis as AsyncRedis

    for cls in (Redis, AsyncRedis):
        patches.wrap(cls, "__init__", _wrapped_init(cls.__init__))


def remove() -> None:
    """Undo the instrumentation of the clients :func:`install` instrumented (those
    since instrumented explicitly keep theirs)."""
    with _lock:
        clients = list(_AUTO)
        _AUTO.clear()
    for client in clients:
        state: _State | None = vars(client).get(_STATE)
        if state is not None and state.auto:
            uninstrument_redis(client)


# -- commands ---------------------------------------------------------------------------
#
# Recording never changes what the caller sees: a failure to record is logged once and
# swallowed, and the client's own exception is re-raised as it was.


def _failed(bound: Bound, op: Op, span: Any, exc: BaseException, elapsed: float) -> None:
    try:
        op.error(elapsed)
        if span is not None:
            bound.end_span(span, exc)
    except Exception as failure:
        report_failure("redis error", failure)


def _replied(bound: Bound, op: Op, span: Any, reply: Any, elapsed: float) -> None:
    try:
        op.reply(reply, elapsed)
        if span is not None:
            bound.end_span(span, None)
    except Exception as exc:
        report_failure("redis reply", exc)


def _op_for(bound: Bound, args: tuple[Any, ...]) -> Op | None:
    ns = bound.ns
    if ns is None or not args:
        return None
    try:
        return ns.ops.get(args[0]) or ns.op(args[0])
    except Exception as exc:  # an unusable command name: let redis-py judge it
        report_failure("redis command", exc)
        return None


def _sync_command(execute: Callable[..., Any], get: Callable[[], Bound]) -> Callable[..., Any]:
    def execute_command(*args: Any, **options: Any) -> Any:
        bound = get()
        op = _op_for(bound, args)
        if op is None:
            return execute(*args, **options)
        span = bound.try_start_span(op.name) if bound.tracer is not None else None
        start = perf_counter()
        try:
            reply = execute(*args, **options)
        except BaseException as exc:
            _failed(bound, op, span, exc, perf_counter() - start)
            raise
        _replied(bound, op, span, reply, perf_counter() - start)
        return reply

    execute_command.__wrapped__ = execute  # type: ignore[attr-defined]
    return execute_command


def _async_command(
    execute: Callable[..., Awaitable[Any]], get: Callable[[], Bound]
) -> Callable[..., Awaitable[Any]]:
    async def execute_command(*args: Any, **options: Any) -> Any:
        bound = get()
        op = _op_for(bound, args)
        if op is None:
            return await execute(*args, **options)
        span = bound.try_start_span(op.name) if bound.tracer is not None else None
        start = perf_counter()
        try:
            reply = await execute(*args, **options)
        except BaseException as exc:
            _failed(bound, op, span, exc, perf_counter() - start)
            raise
        _replied(bound, op, span, reply, perf_counter() - start)
        return reply

    execute_command.__wrapped__ = execute  # type: ignore[attr-defined]
    return execute_command


# -- pipelines --------------------------------------------------------------------------


def _pipeline_op(bound: Bound, pipe: Any) -> tuple[Op, Any] | None:
    """The op of one pipeline execution and its span, or None when nothing is recorded."""
    if bound.ns is None or (not pipe.command_stack and not pipe.watching):
        return None
    try:
        # sync pipelines keep the flag in ``transaction``, asyncio ones in ``is_transaction``
        # (where ``transaction`` is the inherited method)
        flag = getattr(pipe, "is_transaction", None)
        if not isinstance(flag, bool):
            flag = getattr(pipe, "transaction", False)
        transaction = flag is True or bool(getattr(pipe, "explicit_transaction", False))
        kind = MULTI if transaction else PIPELINE
        op = bound.ns.op(kind)
        if bound.tracer is None:
            return op, None
        stack = pipe.command_stack
        names = {str(entry[0][0]) for entry in stack if entry and entry[0]}
        extra: dict[str, AttributeValue] = {}
        if len(stack) != 1:
            extra[DB_OPERATION_BATCH_SIZE] = len(stack)
        name = f"{kind} {next(iter(names))}" if len(names) == 1 else kind
        return op, bound.try_start_span(name, extra)
    except Exception as exc:
        report_failure("redis pipeline", exc)
        return None


def _pipeline_done(bound: Bound, op: Op, span: Any, results: Any, elapsed: float) -> None:
    try:
        failed = None
        if isinstance(results, list):
            failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is None:
            op.ok(elapsed)
        else:
            op.error(elapsed)
        if span is not None:
            bound.end_span(span, failed)
    except Exception as exc:
        report_failure("redis pipeline", exc)


def _sync_pipeline(
    pipe: Any, execute: Callable[..., Any], get: Callable[[], Bound]
) -> Callable[..., Any]:
    def execute_pipeline(*args: Any, **kwargs: Any) -> Any:
        bound = get()
        started = _pipeline_op(bound, pipe)
        if started is None:
            return execute(*args, **kwargs)
        op, span = started
        start = perf_counter()
        try:
            results = execute(*args, **kwargs)
        except BaseException as exc:
            _failed(bound, op, span, exc, perf_counter() - start)
            raise
        _pipeline_done(bound, op, span, results, perf_counter() - start)
        return results

    execute_pipeline.__wrapped__ = execute  # type: ignore[attr-defined]
    return execute_pipeline


def _async_pipeline(
    pipe: Any, execute: Callable[..., Awaitable[Any]], get: Callable[[], Bound]
) -> Callable[..., Awaitable[Any]]:
    async def execute_pipeline(*args: Any, **kwargs: Any) -> Any:
        bound = get()
        started = _pipeline_op(bound, pipe)
        if started is None:
            return await execute(*args, **kwargs)
        op, span = started
        start = perf_counter()
        try:
            results = await execute(*args, **kwargs)
        except BaseException as exc:
            _failed(bound, op, span, exc, perf_counter() - start)
            raise
        _pipeline_done(bound, op, span, results, perf_counter() - start)
        return results

    execute_pipeline.__wrapped__ = execute  # type: ignore[attr-defined]
    return execute_pipeline
