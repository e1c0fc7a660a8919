"""nats-py: publish spans (core and JetStream), process spans for every delivery path.

What is patched, all through :class:`~limelight.surface.Patches`:

- ``Client.publish`` (so ``request`` too) and ``JetStreamContext.publish``: a
  PRODUCER span, the context injected into a copy of the headers; a JetStream
  publish that the stream refuses counts as an error. System subjects (``$JS.``,
  ``$KV.``, ...: acknowledgements, API calls) are not messages and pass through;
- ``Client.subscribe``: a callback (JetStream push subscriptions with one
  included) runs inside its delivery, the process span current;
- ``Subscription.next_msg`` and ``async for msg in sub.messages``: each message
  starts a delivery current in the caller until it is settled, the next one is
  asked for or the subscription ends (``unsubscribe``, ``drain``);
- ``PullSubscription.fetch``: every fetched message starts a delivery; a single
  one is current in the caller as above, several are not (one context holds one
  span) and each ends when it is settled or at the next fetch;
- ``Msg.ack``, ``ack_sync``, ``nak``, ``term``: the settlement (``ack``, ``ack``,
  ``nack``, ``reject``).

``messaging.system`` is ``nats``, as the NATS page of the messaging conventions
specifies. A message that needs no acknowledgement (core NATS) counts as ``ack``;
an unsettled JetStream message as ``nack`` (JetStream delivers it again after
its ack wait).
"""

from __future__ import annotations

import contextvars
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import nats.aio.client
import nats.aio.msg
import nats.aio.subscription
import nats.js.client
from opentelemetry import context as otel_context
from opentelemetry.util.types import AttributeValue

from limelight import semconv as sc
from limelight.surface import Patches, current_context

from ._core import (
    ACK,
    NACK,
    REJECT,
    Delivery,
    Instruments,
    _open,
    _pending,
    binding,
    end_channel,
    report,
    settle,
)

__all__ = ["SYSTEM", "install"]

SYSTEM = "nats"
"""``messaging.system`` of nats-py."""
INBOX = "_INBOX"
"""The ``queue`` label (and the span name's destination, left out) of reply inboxes."""
_CACHE_LIMIT = 1024

_get = binding.get
_installed = [False]
"""Whether the instrumentation is in place: callbacks and generators wrapped while
it was pass everything through once it is removed."""
_attach = otel_context.attach
_detach = otel_context.detach
_current: weakref.WeakKeyDictionary[Any, list[Delivery]] = weakref.WeakKeyDictionary()
"""The deliveries a subscription's ``next_msg``, iterator or ``fetch`` handed out last."""
_inner: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "limelight_queue_nats_inner", default=False
)
"""Set while a JetStream publish or fetch runs: the core calls it makes are its own."""
_AUTO_ACK_WRAPPER = "JetStreamContext._auto_ack_callback.<locals>.new_callback"


def _server(client: Any) -> tuple[str | None, int | None]:
    try:
        url = client.connected_url
        if url is not None:
            return url.hostname, url.port
    except Exception:
        pass
    return None, None


_publishers: dict[tuple[Any, ...], tuple[str, str, dict[str, AttributeValue]]] = {}
_consumers: dict[tuple[Any, ...], tuple[str, str, dict[str, AttributeValue]]] = {}


def _destination(
    cache: dict[tuple[Any, ...], tuple[str, str, dict[str, AttributeValue]]],
    operation: str,
    operation_type: str,
    subject: str,
    group: str,
    server: tuple[str | None, int | None],
) -> tuple[str, str, dict[str, AttributeValue]]:
    """(span name, queue label, constant attributes) of *subject*."""
    key = (subject, group, server)
    found = cache.get(key)
    if found is not None:
        return found
    attributes: dict[str, AttributeValue] = {
        sc.MESSAGING_SYSTEM: SYSTEM,
        sc.MESSAGING_OPERATION_NAME: operation,
        sc.MESSAGING_OPERATION_TYPE: operation_type,
        sc.MESSAGING_DESTINATION_NAME: subject,
    }
    if group:
        attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] = group
    address, port = server
    if address:
        attributes[sc.SERVER_ADDRESS] = address
        if port:
            attributes[sc.SERVER_PORT] = port
    if subject.startswith(INBOX + "."):
        found = (operation, INBOX, attributes)
    else:
        found = (f"{operation} {subject}", subject, attributes)
    if len(cache) < _CACHE_LIMIT:
        cache[key] = found
    return found


def _with(attributes: dict[str, AttributeValue], headers: Any, size: int) -> dict[str, Any]:
    attributes = attributes.copy()
    attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] = size
    if headers:
        try:
            message_id = headers.get("Nats-Msg-Id")
        except Exception:
            message_id = None
        if message_id:
            attributes[sc.MESSAGING_MESSAGE_ID] = str(message_id)
    return attributes


# -- publishing -------------------------------------------------------------------------


def _begin_publish(
    inst: Instruments, client: Any, subject: Any, payload: Any, headers: Any
) -> tuple[Any, Any]:
    """(publication, headers to send) for one message; (None, headers) when not recorded."""
    try:
        subject = str(subject)
        if subject.startswith("$"):
            return None, headers
        if headers is None:
            carried: Any = {}
        elif isinstance(headers, dict):
            carried = dict(headers)
        else:
            carried = headers  # not a dict: inject reports it, the message goes as it was
        name, label, base = _destination(
            _publishers, "publish", "send", subject, "", _server(client)
        )
        size = len(payload) if isinstance(payload, bytes | bytearray) else 0
        publication = inst.publish(name, label, _with(base, headers, size), carried)
        return publication, carried
    except Exception as exc:
        report("nats publish", exc)
        return None, headers


def _publish_call(
    args: tuple[Any, ...], kwargs: dict[str, Any], position: int
) -> tuple[Any, Any, Any]:
    subject = args[0] if args else kwargs.get("subject", "")
    payload = args[1] if len(args) > 1 else kwargs.get("payload", b"")
    headers = args[position] if len(args) > position else kwargs.get("headers")
    return subject, payload, headers


def _replace_headers(
    args: tuple[Any, ...], kwargs: dict[str, Any], position: int, headers: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if len(args) > position:
        return (*args[:position], headers, *args[position + 1 :]), kwargs
    return args, {**kwargs, "headers": headers}


def _wrap_publish(
    original: Callable[..., Awaitable[Any]], position: int, jetstream: bool
) -> Callable[..., Awaitable[Any]]:
    """``Client.publish`` (headers are argument 4) or ``JetStreamContext.publish`` (5)."""

    @functools.wraps(original)
    async def publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        inst = _get()
        if not inst.active or _inner.get():
            return await original(self, *args, **kwargs)
        subject, payload, headers = _publish_call(args, kwargs, position)
        client = self._nc if jetstream else self
        publication, carried = _begin_publish(inst, client, subject, payload, headers)
        if publication is None:
            return await original(self, *args, **kwargs)
        if carried is not headers:
            args, kwargs = _replace_headers(args, kwargs, position, carried)
        token = _inner.set(True) if jetstream else None
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            publication.finish(exc)
            raise
        finally:
            if token is not None:
                _inner.reset(token)
        publication.finish()
        return result

    return publish


# -- deliveries -------------------------------------------------------------------------


def _is_jetstream(msg: Any) -> bool:
    reply = msg.reply
    return isinstance(reply, str) and reply.startswith("$JS.ACK.")


def _deliver(inst: Instruments, client: Any, msg: Any, group: str, pulled: bool) -> Delivery | None:
    try:
        name, label, base = _destination(
            _consumers, "process", "process", str(msg.subject), group, _server(client)
        )
        headers = msg.headers
        data = msg.data
        size = len(data) if isinstance(data, bytes | bytearray) else 0
        jetstream = _is_jetstream(msg)
        delivery = inst.deliver(
            name,
            label,
            _with(base, headers, size),
            headers,
            not jetstream,
            current_context() if pulled else None,
        )
        if jetstream:
            delivery.track(id(msg), client, 0, msg)
        return delivery
    except Exception as exc:
        report("nats delivery", exc)
        return None


def _internal(cb: Any) -> bool:
    """Whether *cb* is one nats-py subscribes for itself (request replies, async
    publish acknowledgements, key-value watchers); JetStream's auto-ack wrapper
    around the application's callback is not."""
    module = getattr(cb, "__module__", "") or ""
    if not module.startswith("nats."):
        return False
    return getattr(cb, "__qualname__", "") != _AUTO_ACK_WRAPPER


def _traced_callback(client: Any, group: str, cb: Callable[[Any], Awaitable[Any]]) -> Any:
    async def on_message(msg: Any) -> Any:
        inst = _get()
        delivery = (
            _deliver(inst, client, msg, group, False) if inst.active and _installed[0] else None
        )
        if delivery is None:
            return await cb(msg)
        token = _attach(delivery.context)
        try:
            result = await cb(msg)
        except BaseException as exc:
            _detach(token)
            delivery.finish(exc)
            raise
        _detach(token)
        delivery.finish()
        return result

    on_message.__wrapped__ = cb  # type: ignore[attr-defined]
    return on_message


def _wrap_subscribe(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def subscribe(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            cb = args[2] if len(args) > 2 else kwargs.get("cb")
            if cb is not None and not _internal(cb):
                group = args[1] if len(args) > 1 else kwargs.get("queue", "")
                traced = _traced_callback(self, str(group or ""), cb)
                if len(args) > 2:
                    args = (*args[:2], traced, *args[3:])
                else:
                    kwargs = {**kwargs, "cb": traced}
        except Exception as exc:
            report("nats subscribe", exc)
        return await original(self, *args, **kwargs)

    return subscribe


def _end_current(owner: Any) -> None:
    previous = _current.pop(owner, None)
    if previous:
        for delivery in previous:
            delivery.finish()


def _pulled(owner: Any, client: Any, msgs: list[Any], group: str) -> None:
    inst = _get()
    if not inst.active:
        return
    deliveries = []
    for msg in msgs:
        delivery = _deliver(inst, client, msg, group, True)
        if delivery is not None:
            delivery.enter(len(msgs) == 1)
            deliveries.append(delivery)
    if deliveries:
        _current[owner] = deliveries


def _wrap_next_msg(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def next_msg(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _inner.get():  # a fetch reading its replies
            return await original(self, *args, **kwargs)
        _end_current(self)
        msg = await original(self, *args, **kwargs)
        try:
            _pulled(self, getattr(self, "_conn", None), [msg], str(getattr(self, "_queue", "")))
        except Exception as exc:
            report("nats next_msg", exc)
        return msg

    return next_msg


def _wrap_iterator(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def anext(self: Any) -> Any:
        sub = getattr(self, "_sub", self)
        _end_current(sub)
        msg = await original(self)
        try:
            _pulled(sub, getattr(sub, "_conn", None), [msg], str(getattr(sub, "_queue", "")))
        except Exception as exc:
            report("nats iterator", exc)
        return msg

    return anext


def _wrap_fetch(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        _end_current(self)
        token = _inner.set(True)
        try:
            msgs = await original(self, *args, **kwargs)
        finally:
            _inner.reset(token)
        try:
            client = getattr(getattr(self, "_js", None), "_nc", None)
            _pulled(self, client, list(msgs), "")
        except Exception as exc:
            report("nats fetch", exc)
        return msgs

    return fetch


def _wrap_unsubscribe(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``unsubscribe`` or ``drain``: the deliveries the subscription handed out last end."""

    @functools.wraps(original)
    async def ending(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            _end_current(self)
            inner = getattr(self, "_sub", None)
            if inner is not None and inner is not self:
                _end_current(inner)

    return ending


def _wrap_close(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``Client.close`` or ``drain``: JetStream messages left unsettled count as ``nack``."""

    @functools.wraps(original)
    async def closing(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            end_channel(self)

    return closing


# -- settlements ------------------------------------------------------------------------


def _wrap_settle(original: Callable[..., Awaitable[Any]], result: str) -> Callable[..., Any]:
    @functools.wraps(original)
    async def settled(self: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = await original(self, *args, **kwargs)
        if _open or _pending:
            settle(id(self), result)
        return outcome

    return settled


def remove() -> None:
    """The instrumentation is being removed: what it wrapped passes through from now on."""
    _installed[0] = False


def install(patches: Patches) -> None:
    """Instrument nats-py through *patches*."""
    client = nats.aio.client.Client
    patches.wrap(client, "publish", _wrap_publish(client.publish, 3, False))
    patches.wrap(client, "subscribe", _wrap_subscribe(client.subscribe))
    for name in ("close", "drain"):
        patches.wrap(client, name, _wrap_close(getattr(client, name)))
    js = nats.js.client.JetStreamContext
    patches.wrap(js, "publish", _wrap_publish(js.publish, 4, True))
    subscription = nats.aio.subscription.Subscription
    patches.wrap(subscription, "next_msg", _wrap_next_msg(subscription.next_msg))
    for name in ("unsubscribe", "drain"):
        patches.wrap(subscription, name, _wrap_unsubscribe(getattr(subscription, name)))
    iterator = getattr(nats.aio.subscription, "_SubscriptionMessageIterator", None)
    if iterator is not None and "__anext__" in vars(iterator):
        patches.wrap(iterator, "__anext__", _wrap_iterator(iterator.__anext__))
    pull = js.PullSubscription
    patches.wrap(pull, "fetch", _wrap_fetch(pull.fetch))
    msg = nats.aio.msg.Msg
    patches.wrap(msg, "ack", _wrap_settle(msg.ack, ACK))
    patches.wrap(msg, "ack_sync", _wrap_settle(msg.ack_sync, ACK))
    patches.wrap(msg, "nak", _wrap_settle(msg.nak, NACK))
    patches.wrap(msg, "term", _wrap_settle(msg.term, REJECT))
    _installed[0] = True
