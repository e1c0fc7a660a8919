"""The metric store: declaration, bound children, series limit, namespace, snapshot."""

from __future__ import annotations

import enum
import threading
from decimal import Decimal

import prometheus_client
import pytest
from opentelemetry import trace
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from structlog.testing import capture_logs

from limelight.metrics import OVERFLOW_LABEL_VALUE, MetricConflictError, MetricStore
from limelight.testing import Harness
from limelight_hookspecs import (
    DEFAULT_BUCKETS,
    HistogramPoint,
    MetricDeclaration,
    MetricKind,
    NumberPoint,
)


def _points(store: MetricStore, name: str) -> dict[tuple[str, ...], NumberPoint]:
    family = store.snapshot().family(name)
    return {tuple(p.labels.values()): p for p in family.points}  # type: ignore[misc]


class TestDeclaration:
    """One name has one shape; a conflicting declaration names both declarers."""

    def test_same_declaration_twice_returns_the_same_metric(self) -> None:
        store = MetricStore()
        decl = MetricDeclaration("jobs_total", MetricKind.COUNTER, "Jobs.", label_names=("q",))
        assert store.declare(decl, "a") is store.declare(decl, "b")

    def test_other_kind_is_an_error_naming_both_declarers(self) -> None:
        store = MetricStore()
        store.declare(MetricDeclaration("depth", MetricKind.GAUGE_SET, "Depth."), "queue-plugin")
        with pytest.raises(MetricConflictError) as info:
            store.declare(MetricDeclaration("depth", MetricKind.GAUGE_ADD, "Depth."), "other")
        message = str(info.value)
        assert "'queue-plugin'" in message and "'other'" in message
        assert "gauge_set" in message and "gauge_add" in message

    def test_other_labels_are_an_error(self) -> None:
        store = MetricStore()
        store.counter("jobs_total", "Jobs.", ["queue"], declarer="a")
        with pytest.raises(MetricConflictError, match=r"'b'.*'a'"):
            store.counter("jobs_total", "Jobs.", ["queue", "result"], declarer="b")

    def test_other_buckets_are_an_error(self) -> None:
        store = MetricStore()
        store.histogram("wait_seconds", "Wait.", buckets=[0.1, 1], declarer="a")
        with pytest.raises(MetricConflictError, match="buckets"):
            store.histogram("wait_seconds", "Wait.", buckets=[0.5, 1], declarer="b")

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"name": "jobs", "kind": "counter"}, "must end in '_total'"),
            ({"name": "bad-name", "kind": "gauge_set"}, "invalid metric name"),
            ({"name": "x", "kind": "gauge_set", "label_names": ("__x",)}, "invalid label"),
            ({"name": "x", "kind": "gauge_set", "label_names": ("a", "a")}, "duplicate"),
            ({"name": "x", "kind": "histogram", "buckets": (1, 0.5)}, "strictly increasing"),
            ({"name": "x", "kind": "gauge_add", "buckets": (1,)}, "only histograms"),
            ({"name": "x", "kind": "summary"}, "summary"),
        ],
    )
    def test_invalid_declarations_are_rejected_clearly(
        self, kwargs: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            MetricDeclaration(help="h", **kwargs)  # type: ignore[arg-type]


class TestEmission:
    """Bound children are cached per label set and record into the one store."""

    def test_labels_returns_the_same_child_for_the_same_values(self) -> None:
        store = MetricStore()
        counter = store.counter("hits_total", "Hits.", ["route", "code"])
        assert counter.labels("/a", "200") is counter.labels("/a", "200")
        assert counter.labels("/a", 200) is counter.labels("/a", "200")
        assert counter.labels(route="/a", code="200") is counter.labels("/a", "200")

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (200, 200.0),
            (200.0, 200),
            (1, True),
            (True, 1),
            (0.0, -0.0),
            (Decimal("1.0"), Decimal("1.00")),
        ],
    )
    def test_equal_values_that_print_differently_are_different_series(
        self, first: object, second: object
    ) -> None:
        store = MetricStore()
        counter = store.counter("hits_total", "Hits.", ["code"])
        for value in (first, second, first, second, second):
            counter.labels(value).inc()
        points = _points(store, "hits_total")
        assert {(str(first),): 2, (str(second),): 3} == {k: p.value for k, p in points.items()}

    def test_enum_and_int_values_are_cached_per_type(self) -> None:
        class Code(enum.Enum):
            OK = 200

        store = MetricStore()
        counter = store.counter("hits_total", "Hits.", ["code", "ok"])
        assert counter.labels(200, True) is counter.labels("200", "True")
        assert counter.labels(200, True) is counter.labels(200, True)
        assert counter.labels(Code.OK, True) is counter.labels("Code.OK", "True")
        assert counter.labels(200.0, 1) is not counter.labels(200, True)
        assert [("200", "True"), ("Code.OK", "True"), ("200.0", "1")] == list(
            _points(store, "hits_total")
        )

    def test_a_str_enum_member_counts_as_its_value_whatever_comes_first(self) -> None:
        class Method(str, enum.Enum):  # noqa: UP042 - str() is "Method.GET", unlike StrEnum
            GET = "GET"

        store = MetricStore()
        first, second = store.counter("a_total", "A.", ["m"]), store.counter("b_total", "B.", ["m"])
        assert first.labels(Method.GET) is first.labels("GET")
        assert second.labels("GET") is second.labels(Method.GET)
        assert [("GET",)] == list(_points(store, "a_total")) == list(_points(store, "b_total"))

    def test_every_kind_records(self) -> None:
        store = MetricStore()
        store.counter("c_total", "C.", ["k"]).labels("x").inc(2)
        store.gauge_add("g_add", "G.", ["k"]).labels("x").inc(5)
        store.gauge_add("g_add", "G.", ["k"]).labels("x").dec(2)
        store.gauge_set("g_set", "G.").set(7.5)
        store.histogram("h_seconds", "H.", buckets=[0.1, 1.0]).observe(0.5)
        assert 2 == _points(store, "c_total")[("x",)].value
        assert 3 == _points(store, "g_add")[("x",)].value
        assert 7.5 == _points(store, "g_set")[()].value
        [point] = store.snapshot().family("h_seconds").points
        assert isinstance(point, HistogramPoint)
        assert (0, 1, 0) == point.bucket_counts
        assert (0, 1, 1) == point.cumulative_counts()
        assert 1 == point.count and 0.5 == point.sum

    @pytest.mark.parametrize("exemplars", [True, False])
    def test_buckets_agree_with_prometheus_client_at_every_boundary(self, exemplars: bool) -> None:
        values = [-1.0, 0.0, 0.005, 0.0050001, 0.1, 0.75, 1.0, 9.99, 10.0, 10.5, 1e9, float("inf")]
        store = MetricStore(exemplars=exemplars)
        ours = store.histogram("ours_seconds", "O.")
        theirs = prometheus_client.Histogram(
            "theirs_seconds", "T.", registry=prometheus_client.CollectorRegistry()
        )
        for value in values:
            ours.observe(value)
            theirs.observe(value)
        [point] = store.snapshot().family("ours_seconds").points
        assert isinstance(point, HistogramPoint)
        [family] = list(theirs.collect())
        expected = [s.value for s in family.samples if s.name.endswith("_bucket")]
        assert expected == list(point.cumulative_counts())
        assert len(values) == point.count

    def test_nan_is_counted_in_the_inf_bucket(self) -> None:
        store = MetricStore()
        store.histogram("n_seconds", "N.", buckets=[1.0]).observe(float("nan"))
        [point] = store.snapshot().family("n_seconds").points
        assert (0, 1) == point.bucket_counts  # type: ignore[union-attr]

    def test_default_buckets_are_the_prometheus_defaults(self) -> None:
        store = MetricStore()
        store.histogram("d_seconds", "D.").observe(3)
        [point] = store.snapshot().family("d_seconds").points
        assert DEFAULT_BUCKETS == point.bounds  # type: ignore[union-attr]
        assert len(DEFAULT_BUCKETS) + 1 == len(point.bucket_counts)  # type: ignore[union-attr]

    def test_wrong_number_of_label_values_is_a_clear_error(self) -> None:
        counter = MetricStore().counter("hits_total", "Hits.", ["route", "code"])
        with pytest.raises(ValueError, match=r"expected 2 label values \('route', 'code'\)"):
            counter.labels("/a")
        with pytest.raises(ValueError, match="expected labels"):
            counter.labels(route="/a", status="200")

    def test_unlabelled_use_of_a_labelled_metric_is_a_clear_error(self) -> None:
        counter = MetricStore().counter("hits_total", "Hits.", ["route"])
        with pytest.raises(ValueError, match="call labels"):
            counter.inc()

    def test_concurrent_emission_loses_nothing(self) -> None:
        store = MetricStore()
        counter = store.counter("race_total", "Race.", ["worker"])
        gauge = store.gauge_add("race_in_flight", "Race.")

        def work(i: int) -> None:
            child = counter.labels(str(i % 3))
            for _ in range(5000):
                gauge.inc()
                child.inc()
                gauge.dec()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(p.value for p in _points(store, "race_total").values())
        assert 30000 == total
        assert 0 == _points(store, "race_in_flight")[()].value


class TestSeriesLimit:
    """Past its series limit a metric collapses new label sets into one overflow series."""

    def test_new_label_sets_go_to_the_overflow_series_and_are_counted(self) -> None:
        store = MetricStore(series_limit=3)
        counter = store.counter("paths_total", "Paths.", ["path"])
        for i in range(10):
            counter.labels(f"/user/{i}").inc()
        points = _points(store, "paths_total")
        assert {("/user/0",), ("/user/1",), ("/user/2",), (OVERFLOW_LABEL_VALUE,)} == set(points)
        assert 7 == points[(OVERFLOW_LABEL_VALUE,)].value
        overflow = _points(store, "limelight_series_overflow_total")
        assert 7 == overflow[("paths_total",)].value

    def test_the_first_overflow_of_each_metric_is_logged_once_naming_it_and_its_limit(
        self,
    ) -> None:
        store = MetricStore(series_limit=2)
        paths = store.counter("paths_total", "Paths.", ["path"])
        users = store.histogram("user_seconds", "Users.", ["user"], buckets=[1.0])
        with capture_logs() as logs:
            for i in range(50):
                paths.labels(f"/p/{i}").inc()
                users.labels(f"u{i}").observe(0.5)
        overflows = [e for e in logs if "series limit" in e["event"]]
        assert [("paths_total", 2), ("user_seconds", 2)] == [
            (e["metric"], e["series_limit"]) for e in overflows
        ]
        assert {"warning"} == {e["log_level"] for e in overflows}
        # every redirected lookup is still counted
        assert 48 == _points(store, "limelight_series_overflow_total")[("paths_total",)].value

    def test_existing_series_keep_working_past_the_limit(self) -> None:
        store = MetricStore(series_limit=1)
        counter = store.counter("paths_total", "Paths.", ["path"])
        counter.labels("/a").inc()
        counter.labels("/b").inc()
        counter.labels("/a").inc()
        assert 2 == _points(store, "paths_total")[("/a",)].value

    def test_a_declaration_can_set_its_own_limit(self) -> None:
        store = MetricStore(series_limit=100)
        metric = store.declare(
            MetricDeclaration(
                "t_total", MetricKind.COUNTER, "T.", label_names=("k",), series_limit=2
            )
        )
        for i in range(5):
            metric.labels(str(i)).inc()
        assert 3 == metric.series_count()

    def test_hostile_label_values_are_kept_verbatim(self) -> None:
        store = MetricStore()
        value = 'quote" back\\slash\nnewline ünïcode'
        store.counter("odd_total", "Odd.", ["v"]).labels(value).inc()
        assert (value,) in _points(store, "odd_total")


class TestRemove:
    """A removed series leaves every export and frees its place under the series limit."""

    def test_removed_series_is_no_longer_exported(self) -> None:
        store = MetricStore()
        gauge = store.gauge_set("slot_bytes", "Bytes.", ["slot"])
        gauge.labels("a").set(1)
        gauge.labels("b").set(2)
        assert gauge.remove("a")
        assert {("b",): 2.0} == {k: p.value for k, p in _points(store, "slot_bytes").items()}
        exposition = prometheus_client.generate_latest(store.registry).decode()
        assert 'slot_bytes{slot="b"} 2.0' in exposition
        assert 'slot="a"' not in exposition

    def test_removing_frees_a_place_under_the_limit(self) -> None:
        store = MetricStore(series_limit=2)
        gauge = store.gauge_set("slot_bytes", "Bytes.", ["slot"])
        gauge.labels("a").set(1)
        gauge.labels("b").set(2)
        gauge.remove(slot="a")
        gauge.labels("c").set(3)
        assert {("b",), ("c",)} == set(_points(store, "slot_bytes"))
        assert [] == list(store.snapshot().family("limelight_series_overflow_total").points)

    def test_labels_again_starts_a_new_series_and_aliases_go_too(self) -> None:
        store = MetricStore()
        counter = store.counter("codes_total", "Codes.", ["code"])
        old = counter.labels(200)
        old.inc(5)
        assert counter.remove("200")
        assert not counter.remove(200)
        counter.labels(200).inc()
        old.inc()  # a kept child of a removed series goes nowhere
        assert 1 == _points(store, "codes_total")[("200",)].value

    def test_unknown_series_and_bad_values(self) -> None:
        store = MetricStore()
        gauge = store.gauge_set("slot_bytes", "Bytes.", ["slot"])
        assert not gauge.remove("never")
        with pytest.raises(ValueError, match="expected 1 label values"):
            gauge.remove("a", "b")
        with pytest.raises(ValueError, match="no labels"):
            store.gauge_set("plain", "Plain.").remove()


class TestNamespace:
    """LIMELIGHT_METRICS_NAMESPACE prefixes every exported name."""

    def test_prefix_applies_to_exported_names_but_not_lookups(self) -> None:
        store = MetricStore(namespace="shop")
        store.counter("orders_total", "Orders.").inc()
        names = [f.name for f in store.snapshot()]
        assert "shop_orders_total" in names
        assert "shop_limelight_spans_dropped_total" in names
        assert "shop_orders_total" == store.get("orders_total").name

    def test_a_name_that_already_starts_with_the_namespace_is_prefixed_too(self) -> None:
        store = MetricStore(namespace="http")
        store.counter("http_requests_total", "Requests.").inc()
        names = [f.name for f in store.snapshot()]
        assert ["http_limelight_spans_dropped_total", "http_http_requests_total"] == [
            n for n in names if n.endswith(("requests_total", "spans_dropped_total"))
        ]
        assert 1 == store.registry.get_sample_value("http_http_requests_total")

    def test_limelight_namespace_prefixes_the_self_metrics_too(self) -> None:
        store = MetricStore(namespace="limelight")
        assert (
            "limelight_limelight_spans_dropped_total"
            == store.get("limelight_spans_dropped_total").name
        )

    def test_prefix_from_the_environment(self) -> None:
        with Harness(env={"LIMELIGHT_METRICS_NAMESPACE": "shop"}) as harness:
            assert harness.metric("shop_function_calls_total").kind is MetricKind.COUNTER

    def test_prometheus_registry_holds_the_same_values(self) -> None:
        store = MetricStore(namespace="shop")
        store.counter("orders_total", "Orders.", ["state"]).labels("paid").inc(3)
        assert 3 == store.registry.get_sample_value("shop_orders_total", {"state": "paid"})


class TestExemplars:
    """A histogram observation inside a sampled span carries the span's ids."""

    def test_observation_in_a_span_links_to_it(self) -> None:
        with Harness() as harness:
            histogram = harness.store.histogram("work_seconds", "Work.", buckets=[1.0])
            tracer = harness.telemetry.tracer("test")
            with tracer.start_as_current_span("work") as span:
                histogram.observe(0.5)
            [point] = harness.metric("work_seconds").points
            assert isinstance(point, HistogramPoint)
            exemplar = point.exemplars[0]
            assert exemplar is not None
            assert f"{span.get_span_context().trace_id:032x}" == exemplar.trace_id
            assert f"{span.get_span_context().span_id:016x}" == exemplar.span_id
            assert 0.5 == exemplar.value

    def test_observation_outside_a_span_has_no_exemplar(self) -> None:
        store = MetricStore()
        store.histogram("work_seconds", "Work.", buckets=[1.0]).observe(0.5)
        [point] = store.snapshot().family("work_seconds").points
        assert (None, None) == point.exemplars  # type: ignore[union-attr]

    def test_a_bucket_keeps_its_exemplar_for_the_interval(self) -> None:
        with Harness() as harness:
            store = MetricStore(exemplar_interval=60.0)
            histogram = store.histogram("slow_seconds", "Slow.", buckets=[1.0])
            tracer = harness.telemetry.tracer("test")
            with tracer.start_as_current_span("first") as first:
                histogram.observe(0.1)
            with tracer.start_as_current_span("second"):
                histogram.observe(0.2)
            with tracer.start_as_current_span("third") as third:
                histogram.observe(5.0)  # another bucket: linked at once
            [point] = store.snapshot().family("slow_seconds").points
            low, high = point.exemplars  # type: ignore[union-attr]
            assert low is not None and high is not None
            assert f"{first.get_span_context().span_id:016x}" == low.span_id
            assert f"{third.get_span_context().span_id:016x}" == high.span_id

    def test_an_unsampled_observation_does_not_hide_the_next_sampled_one(self) -> None:
        unsampled = trace.NonRecordingSpan(
            trace.SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=trace.TraceFlags(0))
        )
        with Harness() as harness:
            histogram = harness.store.histogram("mixed_seconds", "Mixed.", buckets=[1.0])
            tracer = harness.telemetry.tracer("test")
            histogram.observe(0.1)  # outside any span
            with trace.use_span(unsampled):
                histogram.observe(0.1)
            with tracer.start_as_current_span("sampled") as span:
                histogram.observe(0.1)
            [point] = harness.metric("mixed_seconds").points
            exemplar = point.exemplars[0]  # type: ignore[union-attr]
            assert exemplar is not None
            assert f"{span.get_span_context().span_id:016x}" == exemplar.span_id

    def test_interval_zero_links_every_observation(self) -> None:
        with Harness() as harness:
            store = MetricStore(exemplar_interval=0.0)
            histogram = store.histogram("each_seconds", "Each.", buckets=[1.0])
            tracer = harness.telemetry.tracer("test")
            for name in ("a", "b"):
                with tracer.start_as_current_span(name) as span:
                    histogram.observe(0.1)
            [point] = store.snapshot().family("each_seconds").points
            assert point.exemplars[0] is not None  # type: ignore[union-attr]
            assert f"{span.get_span_context().span_id:016x}" == point.exemplars[0].span_id  # type: ignore[union-attr]


class TestCounterExemplars:
    """A counter incremented inside a sampled span links to it, as histograms do."""

    def test_an_increment_in_a_sampled_span_carries_its_ids(self) -> None:
        with Harness() as harness:
            counter = harness.store.counter("orders_total", "Orders.", ["state"])
            with harness.telemetry.tracer("test").start_as_current_span("order") as span:
                counter.labels("paid").inc(3)
            [point] = harness.metric("orders_total").points
            assert isinstance(point, NumberPoint)
            ctx = span.get_span_context()
            assert point.exemplar is not None
            assert (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", 3.0) == (
                point.exemplar.trace_id,
                point.exemplar.span_id,
                point.exemplar.value,
            )
            text = openmetrics_latest(harness.store.registry).decode()  # type: ignore[no-untyped-call]
            line = next(x for x in text.splitlines() if x.startswith("orders_total{"))
            assert f'# {{span_id="{ctx.span_id:016x}",trace_id="{ctx.trace_id:032x}"}} 3.0' in line

    def test_an_increment_outside_a_span_does_not_hide_the_next_one_in_a_span(self) -> None:
        with Harness() as harness:
            store = MetricStore(exemplar_interval=0.0)
            counter = store.counter("jobs_total", "Jobs.")
            counter.inc()  # outside any span
            unsampled = trace.NonRecordingSpan(
                trace.SpanContext(1, 2, is_remote=False, trace_flags=trace.TraceFlags(0))
            )
            with trace.use_span(unsampled):
                counter.inc()
            [point] = store.snapshot().family("jobs_total").points
            assert point.exemplar is None  # type: ignore[union-attr]
            with harness.telemetry.tracer("test").start_as_current_span("job") as span:
                counter.inc()
            [point] = store.snapshot().family("jobs_total").points
            assert point.exemplar is not None  # type: ignore[union-attr]
            assert f"{span.get_span_context().span_id:016x}" == point.exemplar.span_id  # type: ignore[union-attr]

    def test_a_series_keeps_its_exemplar_for_the_interval(self) -> None:
        with Harness() as harness:
            store = MetricStore(exemplar_interval=60.0)
            counter = store.counter("jobs_total", "Jobs.")
            tracer = harness.telemetry.tracer("test")
            with tracer.start_as_current_span("first") as first:
                counter.inc()
            with tracer.start_as_current_span("second"):
                counter.inc()
            [point] = store.snapshot().family("jobs_total").points
            assert 2 == point.value  # type: ignore[union-attr]
            assert f"{first.get_span_context().span_id:016x}" == point.exemplar.span_id  # type: ignore[union-attr]

    def test_exemplars_off_links_nothing(self) -> None:
        with Harness() as harness:
            store = MetricStore(exemplars=False)
            counter = store.counter("jobs_total", "Jobs.")
            with harness.telemetry.tracer("test").start_as_current_span("job"):
                counter.inc()
            [point] = store.snapshot().family("jobs_total").points
            assert point.exemplar is None  # type: ignore[union-attr]
            assert 1 == point.value  # type: ignore[union-attr]


class TestHistogramMinMax:
    """A histogram keeps the smallest and largest values observed (OTLP min/max)."""

    def test_min_and_max_of_every_series(self) -> None:
        store = MetricStore()
        histogram = store.histogram("wait_seconds", "Wait.", ["q"], buckets=[1.0])
        for value in (0.5, 3.0, -2.0, float("nan"), 0.25):
            histogram.labels("a").observe(value)
        histogram.labels("b").observe(7)
        points = {p.labels["q"]: p for p in store.snapshot().family("wait_seconds").points}
        a, b = points["a"], points["b"]
        assert isinstance(a, HistogramPoint) and isinstance(b, HistogramPoint)
        assert (-2.0, 3.0, 5) == (a.min, a.max, a.count)  # NaN counted, never min or max
        assert (7, 7) == (b.min, b.max)

    def test_no_observation_no_min_or_max(self) -> None:
        store = MetricStore()
        store.histogram("idle_seconds", "Idle.")
        [point] = store.snapshot().family("idle_seconds").points
        assert (None, None, 0) == (point.min, point.max, point.count)  # type: ignore[union-attr]

    def test_an_interval_reader_gives_min_max_since_its_previous_read(self) -> None:
        store = MetricStore()
        histogram = store.histogram("wait_seconds", "Wait.", ["q"], buckets=[1.0])
        early = histogram.labels("early")
        early.observe(0.5)
        interval = store.interval_reader()  # series made before and after it both count
        early.observe(2.0)
        late = histogram.labels("late")
        late.observe(9.0)
        late.observe(4.0)

        def extremes(snapshot: object) -> dict[str, tuple[object, object, int]]:
            family = snapshot.family("wait_seconds")  # type: ignore[attr-defined]
            return {p.labels["q"]: (p.min, p.max, p.count) for p in family.points}

        assert {"early": (2.0, 2.0, 2), "late": (4.0, 9.0, 2)} == extremes(interval.snapshot())
        early.observe(1.5)
        assert {"early": (1.5, 1.5, 3), "late": (None, None, 2)} == extremes(interval.snapshot())
        # the store's own snapshot keeps min/max since the start; another reader its own
        assert {"early": (0.5, 2.0, 3), "late": (4.0, 9.0, 2)} == extremes(store.snapshot())
        other = store.interval_reader()
        late.observe(100.0)
        assert (100.0, 100.0, 3) == extremes(other.snapshot())["late"]
        assert (100.0, 100.0, 3) == extremes(interval.snapshot())["late"]

    def test_concurrent_observations_keep_the_true_extremes(self) -> None:
        store = MetricStore()
        child = store.histogram("race_seconds", "Race.", buckets=[1.0]).labels()
        interval = store.interval_reader()

        def work(offset: int) -> None:
            for i in range(20000):
                child.observe(offset + (i % 1000) / 1000)

        threads = [threading.Thread(target=work, args=(k * 10,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        [point] = store.snapshot().family("race_seconds").points
        [windowed] = interval.snapshot().family("race_seconds").points
        assert (0.0, 30.999, 80000) == (point.min, point.max, point.count)  # type: ignore[union-attr]
        assert (0.0, 30.999) == (windowed.min, windowed.max)  # type: ignore[union-attr]


class TestUnits:
    """A declared unit reaches the exposition: OpenMetrics ``# UNIT`` lines."""

    def test_openmetrics_shows_the_unit_of_each_metric_that_has_one(self) -> None:
        store = MetricStore(namespace="shop")
        store.histogram("order_duration_seconds", "Order time.", unit="s").observe(0.2)
        store.counter("sent_bytes_total", "Sent.", unit="By").inc(10)
        store.gauge_set("cache_hit_ratio", "Hits.", unit="1").set(0.5)
        store.counter("orders_total", "Orders.", unit="1").inc()
        text = openmetrics_latest(store.registry).decode()  # type: ignore[no-untyped-call]
        units = [line for line in text.splitlines() if line.startswith("# UNIT")]
        assert [
            "# UNIT shop_order_duration_seconds seconds",
            "# UNIT shop_sent_bytes bytes",
            "# UNIT shop_cache_hit_ratio ratio",
        ] == units
        assert 10 == store.registry.get_sample_value("shop_sent_bytes_total")

    def test_a_name_without_its_unit_is_refused_at_declaration(self) -> None:
        with pytest.raises(ValueError, match=r"must end in '_seconds'.*'order_time_seconds'"):
            MetricStore().histogram("order_time", "Order time.", unit="s")


class TestSnapshotReadPaths:
    """The direct cell read and prometheus_client's public collect() agree exactly."""

    def test_both_read_paths_agree(self) -> None:
        from limelight._store import _read_cells, _read_collected

        with Harness() as harness:
            store = harness.store
            store.counter("r_total", "R.", ["k"]).labels("a").inc(3)
            store.gauge_add("r_in_flight", "R.", ["k"]).labels("b").inc(2)
            store.gauge_set("r_level", "R.").set(-4.5)
            histogram = store.histogram("r_seconds", "R.", ["k"], buckets=[0.1, 1.0])
            with harness.telemetry.tracer("t").start_as_current_span("s"):
                for value in (0.05, 0.1, 0.5, 7.0):
                    histogram.labels("c").observe(value)
            for metric in store.metrics():
                assert _read_collected(metric) == _read_cells(metric), metric.name


class TestBoundChildren:
    """Bound children keep prometheus_client's rules while skipping its per-call checks."""

    def test_a_counter_refuses_a_negative_increment(self) -> None:
        counter = MetricStore().counter("n_total", "N.")
        with pytest.raises(ValueError, match="non-negative"):
            counter.inc(-1)

    def test_values_land_in_the_prometheus_registry(self) -> None:
        store = MetricStore()
        store.counter("c_total", "C.", ["k"]).labels("a").inc(2.5)
        gauge = store.gauge_add("g", "G.", ["k"]).labels("a")
        gauge.inc(3)
        gauge.dec()
        assert 2.5 == store.registry.get_sample_value("c_total", {"k": "a"})
        assert 2 == store.registry.get_sample_value("g", {"k": "a"})
