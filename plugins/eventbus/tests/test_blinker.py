"""blinker signals: receivers counted by topic, rejections counted, the library unchanged."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import blinker
import limelight_eventbus
import pytest
from conftest import REJECTED, SUBSCRIBERS, bare, collect
from limelight_eventbus import ANONYMOUS_TOPIC, plugin
from opentelemetry import trace

from limelight import semconv as sc
from limelight.testing import Harness

pytestmark = pytest.mark.limelight(plugins=[plugin])
SPANS = pytest.mark.limelight(plugins=[plugin], env={"LIMELIGHT_EVENTBUS_SPANS": "true"})

tracer = trace.get_tracer("test")


def _receiver(sender: object, **kwargs: Any) -> str:
    return "ok"


class Listener:
    """An object whose bound method is connected weakly (as blinker does by default)."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    def on_event(self, sender: object, **kwargs: Any) -> None:
        self.seen.append(sender)


class Sender:
    """A sender blinker references weakly (its receivers are dropped when it is collected)."""


class TestSubscribers:
    """eventbus_subscribers_active follows the receivers a signal holds."""

    def test_connect_and_disconnect(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("order-placed")
        signal.connect(_receiver, weak=False)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="order-placed")

        def other(sender: object) -> None: ...

        signal.connect(other, weak=False)
        signal.connect(other, weak=False)  # the same receiver again: still one
        assert 2 == telemetry.value(SUBSCRIBERS, topic="order-placed")
        signal.disconnect(other)
        signal.disconnect(_receiver)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="order-placed")
        signal.disconnect(_receiver)  # not connected: blinker ignores it, so does the gauge
        assert 0 == telemetry.value(SUBSCRIBERS, topic="order-placed")

    def test_a_weak_receiver_collected(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("weak-function")

        def receiver(sender: object) -> None: ...

        signal.connect(receiver)  # weak=True, blinker's default
        assert 1 == telemetry.value(SUBSCRIBERS, topic="weak-function")
        del receiver
        collect()
        assert 0 == telemetry.value(SUBSCRIBERS, topic="weak-function")
        assert not signal.receivers

    def test_a_weak_bound_method_collected_with_its_object(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("weak-method")
        listeners = [Listener() for _ in range(3)]
        for listener in listeners:
            signal.connect(listener.on_event)
        del listener
        assert 3 == telemetry.value(SUBSCRIBERS, topic="weak-method")
        signal.send("a")
        assert [["a"]] * 3 == [listener.seen for listener in listeners]
        del listeners[1:]
        collect()
        assert 1 == telemetry.value(SUBSCRIBERS, topic="weak-method")
        del listeners[0]
        collect()
        assert 0 == telemetry.value(SUBSCRIBERS, topic="weak-method")

    def test_a_receiver_in_a_reference_cycle_collected_by_the_collector(
        self, telemetry: Harness
    ) -> None:
        signal = blinker.NamedSignal("cycle")
        listener = Listener()
        listener.self_ref = listener  # type: ignore[attr-defined]  # freed only by gc
        signal.connect(listener.on_event)
        del listener
        assert 1 == telemetry.value(SUBSCRIBERS, topic="cycle")
        collect()
        assert 0 == telemetry.value(SUBSCRIBERS, topic="cycle")

    def test_a_signal_collected_with_its_receivers(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("short-lived")
        signal.connect(_receiver, weak=False)
        signal.connect(Listener().on_event, weak=False)
        assert 2 == telemetry.value(SUBSCRIBERS, topic="short-lived")
        del signal
        collect()
        assert 0 == telemetry.value(SUBSCRIBERS, topic="short-lived")

    def test_signals_of_one_name_share_the_topic(self, telemetry: Harness) -> None:
        first, second = blinker.Namespace(), blinker.Namespace()
        first.signal("user-saved").connect(_receiver)
        second.signal("user-saved").connect(_receiver)
        assert 2 == telemetry.value(SUBSCRIBERS, topic="user-saved")
        first.signal("user-saved").disconnect(_receiver)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="user-saved")

    def test_an_anonymous_signal(self, telemetry: Harness) -> None:
        signal = blinker.Signal()
        signal.connect(_receiver)
        assert 1 == telemetry.value(SUBSCRIBERS, topic=ANONYMOUS_TOPIC)
        signal.disconnect(_receiver)
        assert 0 == telemetry.value(SUBSCRIBERS, topic=ANONYMOUS_TOPIC)

    def test_connected_to_and_senders(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("scoped")
        sender = object()
        with signal.connected_to(_receiver, sender=sender):
            assert 1 == telemetry.value(SUBSCRIBERS, topic="scoped")
            assert [(_receiver, "ok")] == signal.send(sender)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="scoped")

    def test_connected_for_one_sender_and_disconnected(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("per-sender")
        a = Sender()
        signal.connect(_receiver, sender=a)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="per-sender")
        signal.disconnect(_receiver, sender=a)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="per-sender")
        # blinker still holds it, but no send calls it any more
        assert 1 == len(signal.receivers)
        assert [] == signal.send(a)
        signal.connect(_receiver, sender="by-name")  # a sender without weak references
        assert 1 == telemetry.value(SUBSCRIBERS, topic="per-sender")
        signal.disconnect(_receiver, sender="by-name")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="per-sender")

    def test_two_senders_disconnected_one_by_one(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("two-senders")
        a, b = Sender(), Sender()
        signal.connect(_receiver, sender=a)
        signal.connect(_receiver, sender=b)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="two-senders")
        signal.disconnect(_receiver, sender=a)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="two-senders")
        assert [(_receiver, "ok")] == signal.send(b)
        signal.disconnect(_receiver, sender=b)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="two-senders")
        signal.disconnect(_receiver)  # and out of signal.receivers: still 0
        assert 0 == telemetry.value(SUBSCRIBERS, topic="two-senders")
        assert not signal.receivers

    def test_connected_for_any_and_disconnected_from_a_sender(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("any-and-sender")
        a = Sender()
        signal.connect(_receiver)
        signal.connect(_receiver, sender=a)
        signal.disconnect(_receiver, sender=a)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="any-and-sender")  # still for ANY
        assert [(_receiver, "ok")] == signal.send(a)
        signal.disconnect(_receiver)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="any-and-sender")

    def test_a_sender_collected(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("sender-collected")
        a, b = Sender(), Sender()
        signal.connect(_receiver, sender=a, weak=False)
        signal.connect(_receiver, sender=b, weak=False)

        def only_a(sender: object) -> None: ...

        signal.connect(only_a, sender=a, weak=False)
        assert 2 == telemetry.value(SUBSCRIBERS, topic="sender-collected")
        del a  # blinker drops a weakly referenced sender's receivers
        collect()
        assert 1 == telemetry.value(SUBSCRIBERS, topic="sender-collected")
        assert [(_receiver, "ok")] == signal.send(b)
        b.self_ref = b  # type: ignore[attr-defined]  # freed only by the collector
        del b
        collect()
        assert 0 == telemetry.value(SUBSCRIBERS, topic="sender-collected")
        assert 2 == len(signal.receivers)  # blinker still holds both

    def test_a_sender_collected_after_uninstrument(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("sender-after-uninstrument")
        a = Sender()
        signal.connect(_receiver, weak=False)

        def only_a(sender: object) -> None: ...

        signal.connect(only_a, sender=a, weak=False)
        assert 2 == telemetry.value(SUBSCRIBERS, topic="sender-after-uninstrument")
        limelight_eventbus.uninstrument("blinker")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="sender-after-uninstrument")
        del a  # its cleanup was made while instrumented: the signal is not counted again
        collect()
        assert 0 == telemetry.value(SUBSCRIBERS, topic="sender-after-uninstrument")
        assert [(_receiver, "ok")] == signal.send("x")  # and blinker still works

    def test_receivers_connected_before_instrumentation(self, telemetry: Harness) -> None:
        limelight_eventbus.uninstrument()
        named = blinker.signal("eventbus-test-early")  # blinker's default namespace
        other = blinker.NamedSignal("eventbus-test-other")
        try:
            named.connect(_receiver)
            other.connect(_receiver)
            limelight_eventbus.instrument("blinker")
            # known at once
            assert 1 == telemetry.value(SUBSCRIBERS, topic="eventbus-test-early")
            # known from its first use
            assert 0 == telemetry.value(SUBSCRIBERS, default=0, topic="eventbus-test-other")
            other.send()
            assert 1 == telemetry.value(SUBSCRIBERS, topic="eventbus-test-other")
        finally:
            named.disconnect(_receiver)
            namespace = getattr(blinker, "default_namespace", None) or getattr(
                blinker.signal, "__self__", {}
            )
            namespace.pop("eventbus-test-early", None)

    def test_counted_into_a_telemetry_started_later(self) -> None:
        limelight_eventbus.instrument("blinker")
        signal = blinker.NamedSignal("before-start")
        signal.connect(_receiver)  # instrumented, but no telemetry runs
        for _ in range(2):  # and again after a restart, into the new store
            with Harness(plugins=[plugin]) as telemetry:
                assert 1 == telemetry.value(SUBSCRIBERS, topic="before-start")
                signal.disconnect(_receiver)
                assert 0 == telemetry.value(SUBSCRIBERS, topic="before-start")
                signal.connect(_receiver)

    def test_uninstrument_takes_the_receivers_out(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("until-uninstrument")
        signal.connect(_receiver)
        assert 1 == telemetry.value(SUBSCRIBERS, topic="until-uninstrument")
        limelight_eventbus.uninstrument("blinker")
        assert 0 == telemetry.value(SUBSCRIBERS, topic="until-uninstrument")
        signal.disconnect(_receiver)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="until-uninstrument")

    def test_threads_connecting_and_disconnecting(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("threads")
        start = threading.Barrier(4)

        def churn() -> None:
            start.wait()
            for _ in range(300):
                listener = Listener()
                signal.connect(listener.on_event)
                signal.send("x")
                if id(listener) % 2:
                    signal.disconnect(listener.on_event)
                del listener  # the others are collected

        threads = [threading.Thread(target=churn) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        collect()
        assert 0 == len(signal.receivers)
        assert 0 == telemetry.value(SUBSCRIBERS, topic="threads")


class TestRejections:
    """eventbus_rejected_total counts a receiver that raised and a send nobody received."""

    def test_a_receiver_that_raised(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("charge")
        error = ValueError("card declined")

        def receiver(sender: object) -> None:
            raise error

        signal.connect(receiver)
        with pytest.raises(ValueError, match="card declined") as raised:
            signal.send("order-1")
        assert raised.value is error
        assert 1 == telemetry.value(REJECTED, topic="charge", reason="error")
        assert 0 == telemetry.value(REJECTED, topic="charge", reason="no_receiver")

    def test_no_receiver(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("nobody")
        assert [] == signal.send()
        signal.connect(_receiver, sender="someone")
        assert [] == signal.send("someone else")
        assert 2 == telemetry.value(REJECTED, topic="nobody", reason="no_receiver")
        assert [(_receiver, "ok")] == signal.send("someone")
        assert 2 == telemetry.value(REJECTED, topic="nobody", reason="no_receiver")
        assert 0 == telemetry.value(REJECTED, topic="nobody", reason="error")

    def test_a_muted_signal_is_not_a_rejection(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("muted")
        signal.connect(_receiver)
        with signal.muted():
            assert [] == signal.send()
        assert 0 == telemetry.value(REJECTED, default=0, topic="muted", reason="no_receiver")

    def test_send_async(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("async")

        async def ok(sender: object) -> str:
            return "done"

        async def fails(sender: object) -> None:
            raise KeyError("gone")

        async def main() -> None:
            signal.connect(ok)
            assert [(ok, "done")] == await signal.send_async("s")
            signal.connect(fails)
            with pytest.raises(KeyError):
                await signal.send_async("s")
            signal.disconnect(ok)
            signal.disconnect(fails)
            assert [] == await signal.send_async("s")

        asyncio.run(main())
        assert 1 == telemetry.value(REJECTED, topic="async", reason="error")
        assert 1 == telemetry.value(REJECTED, topic="async", reason="no_receiver")


def _transcript() -> list[object]:
    """What an application sees of blinker, step by step (compared bare and instrumented)."""
    seen: list[object] = []
    calls: list[object] = []
    error = RuntimeError("receiver failed")
    signal = blinker.NamedSignal("transcript")
    anonymous = blinker.Signal(doc="no name")

    def first(sender: object, **kwargs: Any) -> object:
        calls.append(("first", sender, kwargs))
        return kwargs.get("value")

    def failing(sender: object, **kwargs: Any) -> None:
        calls.append(("failing", sender))
        raise error

    async def coroutine(sender: object) -> str:
        return "async"

    def step(name: str, call: Any) -> None:
        try:
            result = call()
        except Exception as exc:
            seen.append((name, "raised", type(exc), str(exc), exc is error))
        else:
            seen.append((name, "returned", result))

    signal.connect(first)
    step("send", lambda: [(r.__name__, v) for r, v in signal.send("a", value=1)])
    step("send default sender", lambda: [(r.__name__, v) for r, v in signal.send(value=2)])
    step("two positional", lambda: signal.send("a", "b"))  # type: ignore[call-arg, arg-type]
    # one receiver per signal where the outcome depends on the order (a set's) they run in
    per_sender = blinker.NamedSignal("transcript-per-sender")
    per_sender.connect(failing, sender="b")
    step("failing sender", lambda: per_sender.send("b"))
    step("other sender", lambda: per_sender.send("c"))
    step("has receivers", lambda: (per_sender.has_receivers_for("b"), bool(signal.receivers)))
    step("anonymous, none", anonymous.send)
    with signal.muted():
        step("muted", lambda: signal.send("a"))
    signal.connect(coroutine)
    step("coroutine in send", lambda: signal.send("d"))
    step(
        "coroutine with a wrapper",
        lambda: sorted(
            str(v) for _, v in signal.send("d", _async_wrapper=lambda f: lambda *a, **k: "wrapped")
        ),
    )
    step("send_async of a sync receiver", lambda: asyncio.run(signal.send_async("x")))
    per_sender.disconnect(failing)
    signal.disconnect(coroutine)
    step("after disconnect", lambda: [(r.__name__, v) for r, v in signal.send("b", value=3)])
    connected: list[object] = []
    signal.receiver_connected.connect(lambda s, **k: connected.append(k["weak"]), weak=False)
    signal.connect(_receiver, weak=False)
    step("receiver_connected", lambda: list(connected))
    step("receivers", lambda: (len(signal.receivers), len(per_sender.receivers)))
    # per sender: disconnected from one, from the other, a sender collected
    by_sender = blinker.NamedSignal("transcript-by-sender")
    senders = {"a": Sender(), "b": Sender()}

    def state(*names: str) -> object:
        return (
            len(by_sender.receivers),
            [by_sender.has_receivers_for(senders[n]) for n in names],
            [[r.__name__ for r, _ in by_sender.send(senders[n])] for n in names],
        )

    def plain(sender: object) -> None: ...  # records nothing: a sender is not kept alive

    by_sender.connect(plain, sender=senders["a"])
    by_sender.connect(plain, sender=senders["b"])
    by_sender.connect(_receiver, sender=senders["a"], weak=False)
    step("two senders", lambda: state("a", "b"))
    by_sender.disconnect(plain, sender=senders["a"])
    step("disconnected from one", lambda: state("a", "b"))
    by_sender.disconnect(plain, sender=senders["b"])
    step("disconnected from both", lambda: state("a", "b"))
    del senders["a"]
    collect()
    step("a sender collected", lambda: state("b"))
    by_sender.disconnect(plain)
    step("disconnected for ANY", lambda: state("b"))
    seen.append(("calls", calls))
    return seen


class TestUnchanged:
    """The signal behaves exactly as the bare library, receivers' exceptions included."""

    def test_side_by_side(self, telemetry: Harness) -> None:
        with bare("blinker"):
            assert not limelight_eventbus.is_instrumented("blinker")
            expected = _transcript()
        assert limelight_eventbus.is_instrumented("blinker")
        assert expected == _transcript()

    @SPANS
    def test_side_by_side_with_spans(self, telemetry: Harness) -> None:
        with bare("blinker"):
            expected = _transcript()
        assert expected == _transcript()
        assert telemetry.find_spans("send transcript")

    def test_the_library_restored_exactly(self, telemetry: Harness) -> None:
        names = (
            "send",
            "send_async",
            "connect",
            "_disconnect",
            "_clear_state",
            "_cleanup_sender",
            "_make_cleanup_sender",
            "disconnect",
        )
        limelight_eventbus.uninstrument()
        before = {name: vars(blinker.Signal).get(name) for name in names}
        limelight_eventbus.instrument("blinker")
        assert before["send"] is not vars(blinker.Signal)["send"]
        assert "send" not in vars(blinker.NamedSignal)  # inherited, not copied down
        limelight_eventbus.uninstrument("blinker")
        assert before == {name: vars(blinker.Signal).get(name) for name in names}


class TestSpans:
    """With LIMELIGHT_EVENTBUS_SPANS=true, a CONSUMER span per send, under the publisher's."""

    def test_off_by_default(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("quiet")
        signal.connect(_receiver)
        signal.send()
        assert [] == telemetry.spans()

    @SPANS
    def test_a_child_of_the_publisher_linked_to_it(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("user-registered")

        def send_mail(sender: object) -> None:
            with tracer.start_as_current_span("send mail"):
                pass

        signal.connect(send_mail)
        with tracer.start_as_current_span("register") as publisher:
            signal.send("api")
        dispatch = telemetry.span("send user-registered", kind="consumer", status="unset")
        assert dispatch.parent is not None
        assert publisher.get_span_context().span_id == dispatch.parent.span_id
        assert [publisher.get_span_context()] == [link.context for link in dispatch.links]
        assert {
            sc.MESSAGING_SYSTEM: "blinker",
            sc.MESSAGING_OPERATION_TYPE: "process",
            sc.MESSAGING_OPERATION_NAME: "send",
            sc.MESSAGING_DESTINATION_NAME: "user-registered",
        } == dict(dispatch.attributes or {})
        telemetry.span("send mail", parent=dispatch)

    @SPANS
    def test_a_root_without_a_publisher_span(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("from-nowhere")
        signal.send()
        dispatch = telemetry.span("send from-nowhere", kind="consumer")
        assert dispatch.parent is None
        assert not dispatch.links

    @SPANS
    def test_a_receiver_that_raised(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("failing")

        def receiver(sender: object) -> None:
            raise LookupError("no such user")

        signal.connect(receiver)
        with pytest.raises(LookupError):
            signal.send()
        dispatch = telemetry.span("send failing", status="error")
        assert "LookupError" == (dispatch.attributes or {})[sc.ERROR_TYPE]
        assert trace.get_current_span() is trace.INVALID_SPAN  # the context is restored

    @SPANS
    def test_send_async_covers_the_receivers(self, telemetry: Harness) -> None:
        signal = blinker.NamedSignal("async-span")

        async def receiver(sender: object) -> None:
            await asyncio.sleep(0)
            with tracer.start_as_current_span("inside"):
                pass

        signal.connect(receiver)
        asyncio.run(signal.send_async())
        dispatch = telemetry.span("send async-span")
        telemetry.span("inside", parent=dispatch)
