"""W3C Trace Context Level 2 conformance of the ``tracecontext`` propagator, rule by rule."""

from __future__ import annotations

import email.message
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

import limelight
from limelight._propagation import _Composite, build_propagator
from limelight._w3c import parse_traceparent, parse_tracestate
from limelight.propagation import HeaderGetter, W3CTraceContextPropagator, header_getter

TRACE = "12345678901234567890123456789012"
PARENT = "1234567890123456"
VALID = f"00-{TRACE}-{PARENT}-01"

W3C = W3CTraceContextPropagator()


def extract(*headers: tuple[str, str]) -> SpanContext:
    """The span context extracted from *headers* given as a list of pairs."""
    ctx = W3C.extract(list(headers), getter=header_getter)
    return trace.get_current_span(ctx).get_span_context()


def extracted_trace_id(*headers: tuple[str, str]) -> str | None:
    span_context = extract(*headers)
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None


def tracestate(*values: str) -> dict[str, str] | None:
    """The tracestate extracted next to a valid traceparent, or None when discarded."""
    span_context = extract(("traceparent", VALID), *(("tracestate", v) for v in values))
    assert span_context.is_valid
    state = span_context.trace_state
    return dict(state.items()) if state else None


def inject(span_context: SpanContext, context: Context | None = None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    W3C.inject(carrier, trace.set_span_in_context(NonRecordingSpan(span_context), context))
    return carrier


class TestTraceparentFormat:
    """A version-00 traceparent is version-trace-id-parent-id-flags, nothing more."""

    def test_valid_header_gives_the_remote_parent(self) -> None:
        span_context = extract(("traceparent", VALID))
        assert int(TRACE, 16) == span_context.trace_id
        assert int(PARENT, 16) == span_context.span_id
        assert span_context.is_remote
        assert span_context.trace_flags.sampled

    def test_unsampled_flag_is_kept(self) -> None:
        assert not extract(("traceparent", f"00-{TRACE}-{PARENT}-00")).trace_flags.sampled

    @pytest.mark.parametrize(
        "value",
        [
            f"{VALID}.",
            f"{VALID}-what-the-future-will-be-like",
            f"{VALID}-",
            f"00-{TRACE}-{PARENT}",
            f"00-{TRACE}{PARENT}-01",
            f"00_{TRACE}-{PARENT}-01",
            "",
            "00",
        ],
    )
    def test_version_00_with_anything_else_restarts_the_trace(self, value: str) -> None:
        assert extracted_trace_id(("traceparent", value)) is None


class TestTraceparentVersion:
    """Version is two lowercase hex digits; ff is invalid; higher versions are parsed as 00."""

    @pytest.mark.parametrize("value", [f"ff-{TRACE}-{PARENT}-01", f"ff-{TRACE}-{PARENT}-01-ab"])
    def test_version_ff_is_invalid(self, value: str) -> None:
        assert extracted_trace_id(("traceparent", value)) is None

    @pytest.mark.parametrize(
        "version", [".0", "0.", "000", "0000", "0", "CC", "Cc", "g0", " 0", "+1"]
    )
    def test_malformed_version_restarts_the_trace(self, version: str) -> None:
        assert extracted_trace_id(("traceparent", f"{version}-{TRACE}-{PARENT}-01")) is None

    @pytest.mark.parametrize(
        "value",
        [
            f"cc-{TRACE}-{PARENT}-01",
            f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like",
            f"01-{TRACE}-{PARENT}-01-",
            f"fe-{TRACE}-{PARENT}-01-x-y-z",
        ],
    )
    def test_future_version_is_parsed_for_the_fields_this_level_knows(self, value: str) -> None:
        assert TRACE == extracted_trace_id(("traceparent", value))

    @pytest.mark.parametrize(
        "value",
        [
            f"cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like",
            f"cc-{TRACE}-{PARENT}-011",
            f"cc-{TRACE}-{PARENT}-1",
            f"cc-{TRACE}-{PARENT[:-1]}-01-extra",
            f"cc-{TRACE}1-{PARENT}-01",
        ],
    )
    def test_future_version_still_needs_valid_known_fields(self, value: str) -> None:
        assert extracted_trace_id(("traceparent", value)) is None

    def test_future_version_is_downgraded_to_00_when_sent_on(self) -> None:
        span_context = extract(("traceparent", f"cc-{TRACE}-{PARENT}-01-extra-fields"))
        assert f"00-{TRACE}-{PARENT}-01" == inject(span_context)["traceparent"]

    def test_overlong_future_header_is_ignored(self) -> None:
        value = f"cc-{TRACE}-{PARENT}-01-" + "x" * 600
        assert extracted_trace_id(("traceparent", value)) is None


class TestTraceparentIds:
    """trace-id is 32 and parent-id 16 lowercase hex digits, never all zeros."""

    @pytest.mark.parametrize(
        "trace_id",
        [
            "0" * 32,
            "." + TRACE[1:],
            TRACE[:-1] + ".",
            TRACE + "3",
            TRACE[:-1],
            TRACE.upper().replace("1", "A"),
            "1234567890123456789012345678901G",
        ],
    )
    def test_invalid_trace_id_restarts_the_trace(self, trace_id: str) -> None:
        assert extracted_trace_id(("traceparent", f"00-{trace_id}-{PARENT}-01")) is None

    @pytest.mark.parametrize(
        "parent_id",
        [
            "0" * 16,
            "." + PARENT[1:],
            PARENT[:-1] + ".",
            PARENT + "7",
            PARENT[:-1],
            "ABCDEF0123456789",
        ],
    )
    def test_invalid_parent_id_restarts_the_trace(self, parent_id: str) -> None:
        assert extracted_trace_id(("traceparent", f"00-{TRACE}-{parent_id}-01")) is None

    def test_hex_digits_a_to_f_are_accepted(self) -> None:
        value = "00-abcdef0123456789abcdef0123456789-abcdef0123456789-01"
        assert "abcdef0123456789abcdef0123456789" == extracted_trace_id(("traceparent", value))


class TestTraceparentFlags:
    """trace-flags is two lowercase hex digits; only defined bits are used and sent."""

    @pytest.mark.parametrize("flags", [".0", "0.", "001", "1", "0G", "0A", ""])
    def test_malformed_flags_restart_the_trace(self, flags: str) -> None:
        assert extracted_trace_id(("traceparent", f"00-{TRACE}-{PARENT}-{flags}")) is None

    @pytest.mark.parametrize(("flags", "sampled"), [("09", True), ("fe", False), ("ff", True)])
    def test_the_sampled_bit_is_read_with_a_mask(self, flags: str, sampled: bool) -> None:
        span_context = extract(("traceparent", f"00-{TRACE}-{PARENT}-{flags}"))
        assert sampled == span_context.trace_flags.sampled

    @pytest.mark.parametrize(("received", "sent"), [("ff", "03"), ("fd", "01"), ("04", "00")])
    def test_reserved_bits_are_sent_as_zero(self, received: str, sent: str) -> None:
        span_context = extract(("traceparent", f"00-{TRACE}-{PARENT}-{received}"))
        assert f"00-{TRACE}-{PARENT}-{sent}" == inject(span_context)["traceparent"]

    def test_reserved_bits_of_a_local_span_are_sent_as_zero(self) -> None:
        span_context = SpanContext(int(TRACE, 16), int(PARENT, 16), False, TraceFlags(0xFF))
        assert inject(span_context)["traceparent"].endswith("-03")


class TestRandomTraceIdFlag:
    """Level 2: random-trace-id is read, and sent unchanged while the trace id is unchanged."""

    @pytest.mark.parametrize(("flags", "random"), [("02", True), ("03", True), ("01", False)])
    def test_random_flag_is_extracted(self, flags: str, random: bool) -> None:
        span_context = extract(("traceparent", f"00-{TRACE}-{PARENT}-{flags}"))
        assert random == bool(span_context.trace_flags & 0x02)

    @pytest.mark.parametrize("flags", ["00", "01", "02", "03"])
    def test_child_span_sends_the_received_random_flag(self, flags: str) -> None:
        tracer = TracerProvider().get_tracer("test")
        parent_ctx = W3C.extract({"traceparent": f"00-{TRACE}-{PARENT}-{flags}"})
        with tracer.start_as_current_span("server", context=parent_ctx):
            carrier: dict[str, str] = {}
            W3C.inject(carrier)
        _version, trace_id, span_id, sent = carrier["traceparent"].split("-")
        assert (TRACE, flags) == (trace_id, sent)
        assert span_id != PARENT

    @pytest.mark.parametrize(("wrong", "expected"), [(0x03, "01"), (0x01, "03")])
    def test_random_flag_is_corrected_when_the_sdk_changed_it(
        self, wrong: int, expected: str
    ) -> None:
        # Older SDKs drop the flag on children; some set it on every span.
        received = "03" if expected == "03" else "01"
        parent_ctx = W3C.extract({"traceparent": f"00-{TRACE}-{PARENT}-{received}"})
        child = SpanContext(int(TRACE, 16), 0xABC, False, TraceFlags(wrong))
        assert inject(child, parent_ctx)["traceparent"].endswith(f"-{expected}")

    def test_a_new_trace_keeps_the_flags_of_its_own_root(self) -> None:
        parent_ctx = W3C.extract({"traceparent": f"00-{TRACE}-{PARENT}-01"})
        other = SpanContext(0xABCDEF, 0xABC, False, TraceFlags(0x03))
        assert inject(other, parent_ctx)["traceparent"].endswith("-03")

    def test_sdk_root_span_is_sent_with_the_flags_the_sdk_gave_it(self) -> None:
        tracer = TracerProvider().get_tracer("test")
        with tracer.start_as_current_span("root") as span:
            carrier: dict[str, str] = {}
            W3C.inject(carrier)
        assert (
            f"{span.get_span_context().trace_flags & 0x03:02x}"
            == carrier["traceparent"].rsplit("-", 1)[1]
        )


class TestRepeatedTraceparent:
    """More than one traceparent field is invalid: the trace restarts."""

    def test_two_different_headers_restart_the_trace(self) -> None:
        headers = [
            ("traceparent", f"00-{TRACE[:-1]}1-{PARENT}-01"),
            ("traceparent", VALID),
        ]
        assert extracted_trace_id(*headers) is None

    def test_two_identical_headers_restart_the_trace(self) -> None:
        assert extracted_trace_id(("traceparent", VALID), ("traceparent", VALID)) is None

    def test_headers_in_different_cases_count_as_repeated(self) -> None:
        assert extracted_trace_id(("traceparent", VALID), ("TraceParent", VALID)) is None

    @pytest.mark.parametrize("joined", [f"{VALID},{VALID}", f"{VALID}, {VALID}"])
    def test_repeated_headers_combined_into_one_field_restart_the_trace(self, joined: str) -> None:
        assert extracted_trace_id(("traceparent", joined)) is None

    def test_repeated_future_version_combined_into_one_field_restarts_the_trace(self) -> None:
        future = f"cc-{TRACE}-{PARENT}-01"
        assert extracted_trace_id(("traceparent", f"{future},{future}")) is None

    def test_default_getter_sees_both_spellings(self) -> None:
        ctx = W3C.extract({"traceparent": VALID, "TraceParent": VALID})
        assert not trace.get_current_span(ctx).get_span_context().is_valid

    def test_list_valued_mapping_carrier_is_repeated(self) -> None:
        ctx = W3C.extract({"traceparent": [VALID, VALID]})
        assert not trace.get_current_span(ctx).get_span_context().is_valid

    def test_tracestate_is_not_read_when_traceparent_is_repeated(self) -> None:
        ctx = W3C.extract(
            [("traceparent", VALID), ("traceparent", VALID), ("tracestate", "foo=1")],
            getter=header_getter,
        )
        assert trace.INVALID_SPAN_CONTEXT == trace.get_current_span(ctx).get_span_context()


class TestHeaderNames:
    """Header names are matched in any case; other names are not these headers."""

    @pytest.mark.parametrize("name", ["traceparent", "TraceParent", "TrAcEpArEnT", "TRACEPARENT"])
    def test_traceparent_in_any_case(self, name: str) -> None:
        assert TRACE == extracted_trace_id((name, VALID))

    @pytest.mark.parametrize("name", ["trace-parent", "trace.parent", "traceparent2", "parent"])
    def test_other_names_are_ignored(self, name: str) -> None:
        assert extracted_trace_id((name, VALID)) is None

    @pytest.mark.parametrize("name", ["TraceState", "TrAcEsTaTe", "TRACESTATE"])
    def test_tracestate_in_any_case(self, name: str) -> None:
        span_context = extract(("traceparent", VALID), (name, "foo=1"))
        assert {"foo": "1"} == dict(span_context.trace_state.items())

    @pytest.mark.parametrize("name", ["trace-state", "trace.state"])
    def test_misnamed_tracestate_is_ignored(self, name: str) -> None:
        assert {} == dict(extract(("traceparent", VALID), (name, "foo=1")).trace_state.items())

    def test_case_insensitive_even_with_the_default_getter(self) -> None:
        ctx = W3C.extract({"TraceParent": VALID, "TRACESTATE": "foo=1"})
        span_context = trace.get_current_span(ctx).get_span_context()
        assert int(TRACE, 16) == span_context.trace_id
        assert "1" == span_context.trace_state["foo"]

    def test_headers_are_sent_lowercase(self) -> None:
        state = TraceState([("foo", "1")])
        carrier = inject(SpanContext(1, 2, False, TraceFlags(1), state))
        assert {"traceparent", "tracestate"} == set(carrier)
        assert {"traceparent", "tracestate"} == W3C.fields


class TestWhitespace:
    """Spaces and tabs around values and list members are optional whitespace."""

    @pytest.mark.parametrize(
        "value", [f" {VALID}", f"\t{VALID}", f"{VALID} ", f"{VALID}\t", f"\t {VALID} \t"]
    )
    def test_traceparent_ows_is_ignored(self, value: str) -> None:
        assert TRACE == extracted_trace_id(("traceparent", value))

    @pytest.mark.parametrize(
        "value",
        [f"00 -{TRACE}-{PARENT}-01", f"00-{TRACE} -{PARENT}-01", f"00-{TRACE}-{PARENT}- 01"],
    )
    def test_whitespace_inside_traceparent_is_invalid(self, value: str) -> None:
        assert extracted_trace_id(("traceparent", value)) is None

    @pytest.mark.parametrize(
        "value",
        [
            "foo=1 \t , \t bar=2, \t baz=3",
            "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
            " foo=1,bar=2,baz=3",
            "\tfoo=1,bar=2,baz=3 \t",
        ],
    )
    def test_tracestate_ows_around_members_is_ignored(self, value: str) -> None:
        assert {"foo": "1", "bar": "2", "baz": "3"} == tracestate(value)

    def test_leading_spaces_belong_to_the_value_trailing_ones_do_not(self) -> None:
        assert {"foo": "  1 2"} == tracestate("foo=  1 2  ")

    @pytest.mark.parametrize("value", ["foo =1", "foo= 1\t2", "foo=1\n"])
    def test_whitespace_inside_keys_or_tabs_in_values_discard_tracestate(self, value: str) -> None:
        assert tracestate(value) is None


class TestTracestateList:
    """tracestate is a list of up to 32 members, from one or several fields, in order."""

    def test_members_of_several_fields_are_combined_in_order(self) -> None:
        state = tracestate("foo=1,bar=2", "rojo=1,congo=2", "baz=3")
        assert ["foo", "bar", "rojo", "congo", "baz"] == list(state or {})

    @pytest.mark.parametrize(
        "values",
        [("",), ("foo=1", ""), ("", "foo=1"), ("foo=1,,",), (",foo=1, ,",), (" ", "foo=1")],
    )
    def test_empty_fields_and_members_are_accepted(self, values: tuple[str, ...]) -> None:
        state = tracestate(*values)
        assert (state or {}) == ({"foo": "1"} if any("foo" in v for v in values) else {})

    def test_empty_tracestate_is_not_sent(self) -> None:
        span_context = extract(("traceparent", VALID), ("tracestate", " , "))
        assert "tracestate" not in inject(span_context)

    def test_32_members_are_kept(self) -> None:
        members = [f"bar{i:02d}={i:02d}" for i in range(1, 33)]
        state = tracestate(",".join(members[:10]), ",".join(members[10:30]), ",".join(members[30:]))
        assert state is not None
        assert 32 == len(state)
        assert "01" == state["bar01"]

    def test_33_members_discard_the_list(self) -> None:
        members = [f"bar{i:02d}={i:02d}" for i in range(1, 34)]
        assert tracestate(",".join(members[:20]), ",".join(members[20:])) is None

    @pytest.mark.parametrize(
        "values",
        [
            ("foo=1,foo=1",),
            ("foo=1,foo=2",),
            ("foo=1", "foo=1"),
            ("foo=1", "foo=2"),
            ("foo=1,bar=2", "foo=3"),
        ],
    )
    def test_a_key_given_twice_keeps_the_list_with_its_leftmost_entry(
        self, values: tuple[str, ...]
    ) -> None:
        # the harness expects the list passed on (deduplicated or as received); the
        # left-most entry is the most recent position, as mutations move keys left
        span_context = extract(("traceparent", VALID), *(("tracestate", v) for v in values))
        expected = {"foo": "1", "bar": "2"} if "bar=2" in values[0] else {"foo": "1"}
        assert expected == dict(span_context.trace_state.items())
        sent = inject(span_context)["tracestate"]
        assert ",".join(f"{k}={v}" for k, v in expected.items()) == sent

    def test_members_given_twice_count_towards_the_limit(self) -> None:
        members = [f"bar{i:02d}={i:02d}" for i in range(1, 33)]
        assert tracestate(",".join(members), "bar01=01") is None

    def test_tracestate_is_sent_on_unchanged(self) -> None:
        span_context = extract(
            ("traceparent", VALID), ("tracestate", "rojo=00f067aa, congo=t61rcW")
        )
        assert "rojo=00f067aa,congo=t61rcW" == inject(span_context)["tracestate"]

    def test_invalid_tracestate_keeps_the_traceparent(self) -> None:
        span_context = extract(("traceparent", VALID), ("tracestate", "FOO=1"))
        assert int(TRACE, 16) == span_context.trace_id
        assert not span_context.trace_state

    def test_tracestate_without_traceparent_is_ignored(self) -> None:
        ctx = W3C.extract([("tracestate", "foo=1")], getter=header_getter)
        assert not trace.get_current_span(ctx).get_span_context().is_valid

    def test_oversized_input_is_discarded_without_parsing(self) -> None:
        assert parse_tracestate(["a=" + "b" * 70_000]) is None


class TestTracestateKeys:
    """Keys: ``( lcalpha / DIGIT ) 0*255( keychar )``, keychar lcalpha, DIGIT, ``_-*/@``.

    The current Level 2 text: a key begins with a lowercase letter or a digit and
    has up to 256 characters; ``@`` is one more key character, with no tenant and
    system parts of their own (the older grammar's 241 and 14 characters are gone).
    """

    KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@"

    @pytest.mark.parametrize(
        "key",
        [
            KEY_CHARS,
            "abcdefghijklmnopqrstuvwxyz0123456789_-*/" + "@a-z0-9_-*/",
            "z" * 256,
            "t" * 241 + "@" + "v" * 14,
            "1tenant@vendor",
            "0@a",
            "a@b",
            "congo",
        ],
    )
    def test_valid_keys_are_kept(self, key: str) -> None:
        assert {"foo": "1", key: "v"} == tracestate("foo=1", f"{key}=v")

    @pytest.mark.parametrize("key", ["1foo", "0", "9", "42-vendor", "0abc@def"])
    def test_a_key_may_begin_with_a_digit(self, key: str) -> None:
        assert {"foo": "1", key: "v"} == tracestate("foo=1", f"{key}=v")

    @pytest.mark.parametrize(
        "key", ["foo@", "foo@@bar", "foo@bar@baz", "foo@1bar", "a@b@c@d", "x@-*/", "0@"]
    )
    def test_at_signs_are_key_characters_anywhere_after_the_first(self, key: str) -> None:
        assert {"foo": "1", key: "v"} == tracestate("foo=1", f"{key}=v")

    @pytest.mark.parametrize(
        "key",
        [
            "t" * 242 + "@v",
            "t@" + "v" * 15,
            "t" * 200 + "@" + "v" * 55,
            "t@" + "v" * 254,
            "t" * 255 + "@",
        ],
    )
    def test_the_256_character_limit_is_for_the_whole_key(self, key: str) -> None:
        assert 256 >= len(key)
        assert {"foo": "1", key: "v"} == tracestate("foo=1", f"{key}=v")

    @pytest.mark.parametrize(
        "key",
        [
            "FOO",
            "Foo",
            "foo.bar",
            "foo bar",
            "_foo",
            "-foo",
            "*foo",
            "/foo",
            "z" * 257,
            "t" * 242 + "@" + "v" * 14,
            "t@" + "v" * 255,
            "@foo",
            "@",
            "foo@Bar",
            "fóo",
            "",
        ],
    )
    def test_invalid_keys_discard_the_list(self, key: str) -> None:
        assert tracestate("foo=1", f"{key}=1,bar=2") is None

    def test_keys_of_the_current_grammar_are_sent_on_unchanged(self) -> None:
        received = "foo@=1,1foo=2,t@" + "v" * 15 + "=3,congo=4"
        span_context = extract(("traceparent", VALID), ("tracestate", received))
        assert received == inject(span_context)["tracestate"]


class TestTracestateValues:
    """Values: 1 to 256 printable ASCII characters but comma and equals, not ending in space."""

    ALL_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")

    def test_every_allowed_character(self) -> None:
        assert {"foo": self.ALL_CHARS} == tracestate(f"foo={self.ALL_CHARS}")

    def test_256_characters(self) -> None:
        assert {"foo": "v" * 256} == tracestate("foo=" + "v" * 256)

    @pytest.mark.parametrize(
        "member", ["foo=bar=baz", "foo=", "foo= ", "foo=" + "v" * 257, "foo=é", "foo=\x7f", "foo"]
    )
    def test_invalid_values_discard_the_list(self, member: str) -> None:
        assert tracestate(f"{member},bar=3") is None


class TestTracestateTruncation:
    """A length limit drops whole entries: long ones first, then from the right."""

    def test_long_entries_go_first_then_the_rightmost(self) -> None:
        propagator = W3CTraceContextPropagator(max_tracestate_length=40)
        state = TraceState([("a", "1"), ("big", "x" * 200), ("b", "2"), ("c", "3" * 30)])
        carrier: dict[str, str] = {}
        span = NonRecordingSpan(SpanContext(1, 2, False, TraceFlags(1), state))
        propagator.inject(carrier, trace.set_span_in_context(span))
        assert "a=1,b=2,c=" + "3" * 30 == carrier["tracestate"]
        propagator = W3CTraceContextPropagator(max_tracestate_length=10)
        carrier = {}
        propagator.inject(carrier, trace.set_span_in_context(span))
        assert "a=1,b=2" == carrier["tracestate"]

    def test_negative_limit_is_refused(self) -> None:
        with pytest.raises(ValueError, match="max_tracestate_length"):
            W3CTraceContextPropagator(max_tracestate_length=-1)


class TestInject:
    """Injection writes a version-00 traceparent for a valid span context only."""

    def test_format(self) -> None:
        carrier = inject(SpanContext(0xABC, 0xDEF, False, TraceFlags(1)))
        assert f"00-{0xABC:032x}-{0xDEF:016x}-01" == carrier["traceparent"]

    def test_nothing_without_a_valid_span(self) -> None:
        carrier: dict[str, str] = {}
        W3C.inject(carrier, Context())
        assert {} == carrier

    def test_round_trip_through_a_server_span(self) -> None:
        tracer = TracerProvider().get_tracer("test")
        incoming = {"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "congo=t61rcWkgMzE"}
        with tracer.start_as_current_span("server", context=W3C.extract(incoming)) as span:
            outgoing: dict[str, str] = {}
            W3C.inject(outgoing)
        span_id = f"{span.get_span_context().span_id:016x}"
        assert f"00-{TRACE}-{span_id}-01" == outgoing["traceparent"]
        assert "congo=t61rcWkgMzE" == outgoing["tracestate"]


class TestParsers:
    """The parsing functions are usable on their own."""

    def test_parse_traceparent(self) -> None:
        assert (int(TRACE, 16), int(PARENT, 16), 1) == parse_traceparent(VALID)
        assert parse_traceparent("nonsense") is None

    def test_parse_tracestate(self) -> None:
        state = parse_tracestate(["a=1", "b=2"])
        assert state is not None
        assert [("a", "1"), ("b", "2")] == list(state.items())


class _GetList:
    """A starlette-style multi-dict: ``getlist(name)``."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k.lower() == key.lower()]

    def keys(self) -> list[str]:
        return [k for k, _ in self.pairs]


class TestHeaderGetter:
    """The header getter reads every occurrence of a header from common carriers."""

    @pytest.mark.parametrize(
        "carrier",
        [
            {"TraceParent": VALID},
            {"traceparent": [VALID]},
            {b"traceparent": b"%b" % VALID.encode()},
            [(b"traceparent", VALID.encode())],
            [("Traceparent", VALID)],
            _GetList([("traceparent", VALID)]),
        ],
    )
    def test_one_value(self, carrier: Any) -> None:
        assert [VALID] == header_getter.get(carrier, "traceparent")

    def test_wsgi_environ(self) -> None:
        environ = {"REQUEST_METHOD": "GET", "HTTP_TRACEPARENT": VALID, "HTTP_TRACESTATE": "a=1"}
        assert [VALID] == header_getter.get(environ, "traceparent")
        ctx = W3C.extract(environ, getter=header_getter)
        assert "1" == trace.get_current_span(ctx).get_span_context().trace_state["a"]

    def test_wsgi_environ_with_repeated_fields_joined(self) -> None:
        ctx = W3C.extract({"HTTP_TRACEPARENT": f"{VALID},{VALID}"}, getter=header_getter)
        assert not trace.get_current_span(ctx).get_span_context().is_valid

    def test_repeated_in_asgi_pairs(self) -> None:
        carrier = [(b"traceparent", b"a"), (b"host", b"x"), (b"TraceParent", b"b")]
        assert ["a", "b"] == header_getter.get(carrier, "traceparent")

    def test_repeated_in_an_http_message(self) -> None:
        message = email.message.Message()
        message["Traceparent"] = "a"
        message["traceparent"] = "b"
        assert ["a", "b"] == header_getter.get(message, "traceparent")
        assert ["Traceparent", "traceparent"] == header_getter.keys(message)

    def test_repeated_in_a_getlist_multidict(self) -> None:
        carrier = _GetList([("traceparent", "a"), ("TRACEPARENT", "b")])
        assert ["a", "b"] == header_getter.get(carrier, "traceparent")

    def test_absent(self) -> None:
        assert header_getter.get({"host": "x"}, "traceparent") is None
        assert header_getter.get([], "traceparent") is None
        assert header_getter.get(object(), "traceparent") is None

    def test_keys(self) -> None:
        assert ["host", "traceparent"] == header_getter.keys(
            [(b"host", b"x"), (b"traceparent", b"a"), (b"traceparent", b"b")]
        )
        assert ["a"] == HeaderGetter().keys({"a": "1"})


class TestDefault:
    """``tracecontext`` in OTEL_PROPAGATORS, the default, resolves to this propagator."""

    def test_name_resolves_to_the_conformant_propagator(self) -> None:
        composite = build_propagator(["tracecontext"])
        assert isinstance(composite, CompositePropagator)
        assert [W3CTraceContextPropagator] == [type(p) for p in composite._propagators]

    def test_exported_from_limelight(self) -> None:
        assert limelight.propagation.W3CTraceContextPropagator is W3CTraceContextPropagator
        assert limelight.propagation.header_getter is header_getter

    def test_started_telemetry_installs_it_globally(self, telemetry: Any) -> None:
        textmap = propagate.get_global_textmap()
        assert isinstance(textmap, CompositePropagator)
        assert W3CTraceContextPropagator in [type(p) for p in textmap._propagators]
        ctx = propagate.extract(
            [("traceparent", VALID), ("traceparent", VALID)], getter=header_getter
        )
        assert not trace.get_current_span(ctx).get_span_context().is_valid


class _Recording(W3CTraceContextPropagator):
    """A propagator limelight does not know: it must see the span in the context."""

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        carrier["seen"] = trace.get_current_span(context).get_span_context().span_id
        super().inject(carrier, context)


class TestInjectSpan:
    """``inject_span`` sets what the global propagator's inject would, with the span as parent."""

    @pytest.fixture
    def restore_textmap(self) -> Any:
        previous = propagate.get_global_textmap()
        yield
        propagate.set_global_textmap(previous)

    @staticmethod
    def contexts() -> list[Context]:
        from opentelemetry import baggage

        remote = W3C.extract({"traceparent": f"00-{TRACE}-{PARENT}-03", "tracestate": "v=1"})
        unsampled = W3C.extract({"traceparent": f"00-{TRACE}-{PARENT}-00"})
        return [
            Context(),
            remote,
            unsampled,  # the span started under it is not recording, its context still goes out
            baggage.set_baggage("tenant", "a,b", remote),
            baggage.set_baggage("user", "7"),
        ]

    @pytest.mark.parametrize("names", [["tracecontext", "baggage"], ["tracecontext"], []])
    def test_same_headers_as_the_propagator(self, names: list[str], restore_textmap: Any) -> None:
        propagator = build_propagator(names)
        propagate.set_global_textmap(propagator)
        tracer = TracerProvider().get_tracer("t")
        for ctx in self.contexts():
            span = tracer.start_span("client", ctx)
            expected: dict[str, str] = {}
            propagator.inject(expected, trace.set_span_in_context(span, ctx))
            actual: dict[str, str] = {}
            limelight.propagation.inject_span(actual, span, ctx)
            assert expected == actual
            if names:
                span_id = f"{span.get_span_context().span_id:016x}"
                assert span_id == actual["traceparent"].split("-")[2]

    def test_the_received_random_flag_and_tracestate_are_sent_on(
        self, restore_textmap: Any
    ) -> None:
        propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))
        ctx = self.contexts()[3]
        span = TracerProvider().get_tracer("t").start_span("client", ctx)
        carrier: dict[str, str] = {}
        limelight.propagation.inject_span(carrier, span, ctx)
        assert carrier["traceparent"].startswith(f"00-{TRACE}-")
        assert carrier["traceparent"].endswith("-03")
        assert "v=1" == carrier["tracestate"]
        assert "tenant=a%2Cb" == carrier["baggage"]

    @pytest.mark.parametrize("composite", [True, False])
    def test_another_propagator_sees_the_span_in_the_context(
        self, composite: bool, restore_textmap: Any
    ) -> None:
        recording = _Recording()
        propagate.set_global_textmap(_Composite([W3C, recording]) if composite else recording)
        span = TracerProvider().get_tracer("t").start_span("client", Context())
        carrier: dict[str, Any] = {}
        limelight.propagation.inject_span(carrier, span, Context())
        assert span.get_span_context().span_id == carrier["seen"]
        assert carrier["traceparent"].split("-")[2] == f"{span.get_span_context().span_id:016x}"


class TestExtractHeaders:
    """``extract_headers`` returns what the global propagator's extract would, fast path or not."""

    @pytest.fixture
    def restore_textmap(self) -> Any:
        previous = propagate.get_global_textmap()
        yield
        propagate.set_global_textmap(previous)

    CARRIERS: tuple[dict[Any, Any], ...] = (
        {},
        {"traceparent": VALID},
        {"traceparent": f"00-{TRACE}-{PARENT}-03", "tracestate": "v=1,w=2"},
        {"traceparent": VALID, "tracestate": "not a list="},
        {"traceparent": VALID, "baggage": "tenant=acme,user=7"},
        {"baggage": "tenant=acme"},
        {"traceparent": "garbage"},
        {"traceparent": ""},
        {"traceparent": VALID, "content-type": "text/plain", "x-retries": 3},
        # another spelling, a repeated one, a WSGI name, bytes, a non-str value: read
        # through the propagator and its getter
        {"TraceParent": VALID},
        {"traceparent": VALID, "Traceparent": VALID},
        {"traceparent": VALID, "TraceState": "v=1"},
        {"HTTP_TRACEPARENT": VALID},
        {b"traceparent": VALID.encode()},
        {"traceparent": VALID.encode()},
        {"traceparent": VALID, "baggage": ["tenant=acme"]},
    )

    @staticmethod
    def summary(ctx: Context) -> tuple[Any, ...]:
        from opentelemetry import baggage

        found = trace.get_current_span(ctx).get_span_context()
        return (
            found.trace_id,
            found.span_id,
            found.is_remote,
            int(found.trace_flags),
            dict(found.trace_state),
            dict(baggage.get_all(ctx)),
            sorted(k.split("-")[0] for k in ctx),
        )

    @pytest.mark.parametrize(
        "names", [["tracecontext", "baggage"], ["baggage", "tracecontext"], ["tracecontext"], []]
    )
    @pytest.mark.parametrize("getter", [header_getter, None])
    def test_same_context_as_the_propagator(
        self, names: list[str], getter: Any, restore_textmap: Any
    ) -> None:
        from opentelemetry.propagators.textmap import default_getter

        getter = getter or default_getter
        propagator = build_propagator(names)
        propagate.set_global_textmap(propagator)
        for carrier in self.CARRIERS:
            for start in (Context(), trace.set_span_in_context(trace.INVALID_SPAN)):
                expected = propagator.extract(carrier, start, getter)
                actual = limelight.propagation.extract_headers(carrier, start, getter)
                assert self.summary(expected) == self.summary(actual), carrier
                # what an injection reads back: the received random-trace-id flag
                span = TracerProvider().get_tracer("t").start_span("child", actual)
                sent: dict[str, str] = {}
                limelight.propagation.inject_span(sent, span, actual)
                again: dict[str, str] = {}
                propagator.inject(again, trace.set_span_in_context(span, expected))
                assert again == sent

    def test_nothing_extracted_gives_the_context_back(self, restore_textmap: Any) -> None:
        propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))
        start = Context()
        assert start is limelight.propagation.extract_headers({"x": "1"}, start)
        assert start is limelight.propagation.extract_headers({"traceparent": "x"}, start)

    @pytest.mark.parametrize("composite", [True, False])
    def test_another_propagator_is_asked(self, composite: bool, restore_textmap: Any) -> None:
        class Reading(W3CTraceContextPropagator):
            def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Context:
                return super().extract({"traceparent": carrier["x-trace"]}, context)

        reading = Reading()
        propagate.set_global_textmap(_Composite([reading]) if composite else reading)
        ctx = limelight.propagation.extract_headers({"x-trace": VALID})
        assert int(TRACE, 16) == trace.get_current_span(ctx).get_span_context().trace_id

    def test_another_getter_is_used(self, restore_textmap: Any) -> None:
        from opentelemetry.propagators.textmap import Getter

        class Renaming(Getter[Any]):
            def get(self, carrier: Any, key: str) -> list[str] | None:
                value = carrier.get("x-" + key)
                return None if value is None else [value]

            def keys(self, carrier: Any) -> list[str]:
                return list(carrier)

        propagate.set_global_textmap(build_propagator(["tracecontext", "baggage"]))
        ctx = limelight.propagation.extract_headers(
            {"x-traceparent": VALID, "traceparent": f"00-{'1' * 32}-{PARENT}-01"}, None, Renaming()
        )
        assert int(TRACE, 16) == trace.get_current_span(ctx).get_span_context().trace_id


class TestFormatTraceparent:
    """``format_traceparent`` writes version 00 with fixed-width lowercase hex."""

    def test_fields_are_fixed_width_lowercase_hex(self) -> None:
        assert f"00-{TRACE}-{PARENT}-01" == limelight.propagation.format_traceparent(
            int(TRACE, 16), int(PARENT, 16), 1
        )
        assert f"00-{'0' * 31}1-{'0' * 15}2-00" == limelight.propagation.format_traceparent(1, 2, 0)
        top = limelight.propagation.format_traceparent(2**128 - 1, 2**64 - 1, 3)
        assert f"00-{'f' * 32}-{'f' * 16}-03" == top

    @pytest.mark.parametrize(("flags", "sent"), [(0xFF, "03"), (0x81, "01"), (0x04, "00")])
    def test_reserved_flag_bits_are_cleared(self, flags: int, sent: str) -> None:
        assert limelight.propagation.format_traceparent(1, 1, flags).endswith(f"-{sent}")

    def test_round_trip(self) -> None:
        value = limelight.propagation.format_traceparent(0xABC, 0xDEF, 2)
        assert (0xABC, 0xDEF, 2) == parse_traceparent(value)

    @pytest.mark.parametrize(("trace_id", "span_id"), [(2**128, 1), (1, 2**64), (-1, 1)])
    def test_an_id_out_of_range_is_refused(self, trace_id: int, span_id: int) -> None:
        with pytest.raises(OverflowError):
            limelight.propagation.format_traceparent(trace_id, span_id, 1)
