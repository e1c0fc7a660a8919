"""Function-call interceptors: the value types of the interceptor chain."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

import attrs

__all__ = ["AttributeValue", "CallHandler", "FunctionTarget", "Interceptor", "SpanRole"]


class SpanRole(enum.StrEnum):
    """Which span kind a function call gets.

    ``AUTO`` is SERVER when the call starts a trace and INTERNAL under a parent.
    """

    AUTO = "auto"
    SERVER = "server"
    INTERNAL = "internal"
    CONSUMER = "consumer"
    PRODUCER = "producer"
    CLIENT = "client"


AttributeValue = str | bool | int | float


@attrs.frozen
class FunctionTarget:
    """The function being instrumented, as interceptors see it at bind time.

    :param name: the value of the ``function`` metric label and the span name,
        by default ``module.qualname``.
    :param module: ``__module__`` of the function.
    :param qualname: ``__qualname__`` of the function.
    :param role: which span kind to use; see :class:`SpanRole`.
    :param attributes: extra span attributes given to the decorator.
    :param is_async: the function is a coroutine function or async generator.
    :param is_generator: the function is a (sync or async) generator function;
        the call then spans the whole iteration.
    """

    name: str
    module: str
    qualname: str
    role: SpanRole = SpanRole.AUTO
    attributes: Mapping[str, AttributeValue] = attrs.field(factory=dict)
    is_async: bool = False
    is_generator: bool = False


class CallHandler:
    """Per-function state of one interceptor, created once at bind time.

    The chain calls :meth:`enter` outermost first before the function runs and
    :meth:`exit` innermost first after it returned or raised. A handler that
    makes something current for the code it wraps (a span) sets
    :attr:`activates` and implements :meth:`activate` / :meth:`deactivate`,
    which the chain calls around every resumption of the body (once for a
    plain call; around each step of a generator, so the span never leaks into
    the consumer between two ``yield``).

    Handlers run on the hot path: do the work once in ``__init__`` (resolve
    bound metric children, attributes) and keep ``enter``/``exit`` small.
    """

    activates: bool = False
    """Set to true when :meth:`activate` / :meth:`deactivate` do something."""

    def enter(self) -> object:
        """Called before the body; returns state handed back to :meth:`exit`."""
        return None

    def exit(self, state: object, error: BaseException | None) -> None:
        """Called after the body with the :meth:`enter` state and the raised
        exception, if any (``GeneratorExit`` from closing a generator early is
        not an error)."""
        return

    def activate(self, state: object) -> object:
        """Make *state* current; returns a token for :meth:`deactivate`."""
        return None

    def deactivate(self, token: object) -> None:
        """Undo the matching :meth:`activate`."""
        return


@attrs.frozen
class Interceptor:
    """A contribution to the function-call interceptor chain.

    :param name: a unique name, shown by ``limelight plugins``.
    :param order: lower wraps higher: the chain is sorted by ``(order, name)``
        and entered outermost first. limelight's own metrics interceptor has
        order 50 and its tracing interceptor 100, so metrics time the span too.
    :param bind: called once per instrumented function (and again after the
        telemetry restarts); returns the handler for that function, or ``None``
        to stay out of its chain.
    """

    name: str
    order: int
    bind: Callable[[FunctionTarget], CallHandler | None] = attrs.field(eq=False, repr=False)
