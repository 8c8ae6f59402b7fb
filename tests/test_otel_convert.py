"""_otel.convert: every SDK instrument, recorded with the real SDK, as prometheus_client families.

The expected values are computed from what the tests record, not from the SDK's points, so a
conversion that merely passes the SDK's numbers through (per-bucket counts as ``le`` values,
say) fails.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import (
    AlwaysOnExemplarFilter,
    Counter,
    Histogram,
    ObservableCounter,
    SimpleFixedSizeExemplarReservoir,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricsData
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from otel_sdk import (
    SERVICE,
    native_bucket_counts,
    native_index,
    native_negative_bucket_counts,
    points,
    record,
    sampled_span,
)

from prometheus_rw_bridge._otel import convert as _convert
from prometheus_rw_bridge._otel import points as _points
from prometheus_rw_bridge._otel.convert import Conversion, convert
from prometheus_rw_bridge._protocol.wire import is_stale_nan

TARGET = {"job": "shop/checkout", "instance": "pod-7"}
SCOPE = {"otel_scope_name": "shop.checkout", "otel_scope_version": "2.1.0"}
IDENTITY = {**TARGET, **SCOPE}
BOUNDS = [0.01, 0.1, 1.0, 10.0]
DELTA = AggregationTemporality.DELTA


def samples(conversion: Conversion) -> dict[tuple[str, frozenset[tuple[str, str]]], Any]:
    """Every sample of the conversion by ``(name, labels)``; no sample may appear twice."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], Any] = {}
    for family in conversion.families:
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, key
            found[key] = sample
    return found


def sample(conversion: Conversion, name: str, **labels: str) -> Any:
    return samples(conversion)[(name, frozenset({**IDENTITY, **labels}.items()))]


def family(conversion: Conversion, name: str) -> Any:
    (match,) = [f for f in conversion.families if f.name == name]
    return match


def ms(time_unix_nano: int) -> float:
    return (time_unix_nano // 1_000_000) / 1000


# --- counters and gauges -------------------------------------------------------------------


def test_counter_is_a_counter_with_total_created_help_and_point_timestamps() -> None:
    def use(meter: Meter) -> None:
        counter = meter.create_counter(
            "http.server.requests", unit="{request}", description="Requests served."
        )
        counter.add(3, {"http.request.method": "GET"})
        counter.add(4, {"http.request.method": "GET"})
        counter.add(1, {"http.request.method": "POST"})

    data = record(use)
    conversion = convert(data)
    fam = family(conversion, "http_server_requests")
    assert (fam.type, fam.documentation, fam.unit) == ("counter", "Requests served.", "")
    get = sample(conversion, "http_server_requests_total", http_request_method="GET")
    assert (
        get.value == 7.0
        and sample(conversion, "http_server_requests_total", http_request_method="POST").value == 1
    )
    (point, _) = sorted(points(data, "http.server.requests"), key=lambda p: p.value, reverse=True)
    assert get.timestamp == ms(point.time_unix_nano)
    created = sample(conversion, "http_server_requests_created", http_request_method="GET")
    assert created.value == ms(point.start_time_unix_nano) and created.timestamp == get.timestamp
    assert conversion.dropped == []


def test_up_down_counter_is_a_gauge_without_created() -> None:
    def use(meter: Meter) -> None:
        depth = meter.create_up_down_counter("queue.depth", unit="{item}", description="Items waiting.")
        depth.add(5)
        depth.add(-8)

    conversion = convert(record(use))
    fam = family(conversion, "queue_depth")
    assert fam.type == "gauge" and fam.documentation == "Items waiting."
    assert [(s.name, s.value) for s in fam.samples] == [("queue_depth", -3.0)]


def test_gauge_and_observable_instruments() -> None:
    def cpu(options: CallbackOptions) -> list[Observation]:
        return [Observation(0.25, {"cpu": "0"}), Observation(0.75, {"cpu": "1"})]

    def use(meter: Meter) -> None:
        meter.create_gauge("room.temperature", unit="Cel").set(21.5, {"room": "日本"})
        meter.create_observable_gauge("system.cpu.utilization", [cpu], unit="1")
        meter.create_observable_counter("network.io", [lambda _: [Observation(4096)]], unit="By")
        meter.create_observable_up_down_counter("db.connections", [lambda _: [Observation(-2)]], unit="1")

    conversion = convert(record(use))
    assert family(conversion, "room_temperature_celsius").unit == "celsius"
    assert sample(conversion, "room_temperature_celsius", room="日本").value == 21.5
    assert family(conversion, "system_cpu_utilization_ratio").type == "gauge"
    assert sample(conversion, "system_cpu_utilization_ratio", cpu="1").value == 0.75
    io = family(conversion, "network_io_bytes")
    assert (io.type, io.unit) == ("counter", "bytes")
    assert sample(conversion, "network_io_bytes_total").value == 4096
    assert sample(conversion, "network_io_bytes_created").value > 0
    # Unit "1" is ratio on gauges only: an up-down counter of connections is no ratio.
    assert family(conversion, "db_connections").type == "gauge"
    assert sample(conversion, "db_connections").value == -2


# --- histograms ---------------------------------------------------------------------------------

VALUES = [0.003, 0.01, 0.05, 0.05, 0.2, 0.7, 3.0, 42.0]


def test_histogram_buckets_are_cumulative_with_inf_count_sum_and_created() -> None:
    views = [View(instrument_name="rpc.duration", aggregation=ExplicitBucketHistogramAggregation(BOUNDS))]

    def use(meter: Meter) -> None:
        histogram = meter.create_histogram("rpc.duration", unit="s", description="RPC time.")
        for value in VALUES:
            histogram.record(value, {"rpc.method": "Get"})

    data = record(use, views=views)
    conversion = convert(data)
    fam = family(conversion, "rpc_duration_seconds")
    assert (fam.type, fam.unit, fam.documentation) == ("histogram", "seconds", "RPC time.")
    buckets = {s.labels["le"]: s.value for s in fam.samples if s.name == "rpc_duration_seconds_bucket"}
    expected = {str(bound): float(sum(v <= bound for v in VALUES)) for bound in BOUNDS}
    assert buckets == {**expected, "+Inf": float(len(VALUES))}
    assert list(buckets) == ["0.01", "0.1", "1.0", "10.0", "+Inf"], (
        "ordered, le spelled as prometheus_client does"
    )
    assert sample(conversion, "rpc_duration_seconds_count", rpc_method="Get").value == len(VALUES)
    assert sample(conversion, "rpc_duration_seconds_sum", rpc_method="Get").value == pytest.approx(
        sum(VALUES)
    )
    (point,) = points(data, "rpc.duration")
    assert sample(conversion, "rpc_duration_seconds_created", rpc_method="Get").value == ms(
        point.start_time_unix_nano
    )


def test_histogram_with_negative_values_has_no_sum() -> None:
    # The Histogram instrument refuses negative values; a histogram view over an up-down counter does not.
    views = [View(instrument_name="balance.change", aggregation=ExplicitBucketHistogramAggregation(BOUNDS))]

    def use(meter: Meter) -> None:
        change = meter.create_up_down_counter("balance.change")
        change.add(-5)
        change.add(2)

    fam = family(convert(record(use, views=views)), "balance_change")
    assert {s.name for s in fam.samples} == {
        "balance_change_bucket",
        "balance_change_count",
        "balance_change_created",
    }
    assert [s.value for s in fam.samples if s.name == "balance_change_bucket"] == [1.0, 1.0, 1.0, 2.0, 2.0]


def test_histogram_without_bounds_has_only_the_inf_bucket() -> None:
    views = [View(instrument_name="h", aggregation=ExplicitBucketHistogramAggregation([]))]
    conversion = convert(record(lambda meter: meter.create_histogram("h").record(3), views=views))
    buckets = [s for s in family(conversion, "h").samples if s.name == "h_bucket"]
    assert [(s.labels["le"], s.value) for s in buckets] == [("+Inf", 1.0)]


# --- exponential histograms -> native histograms --------------------------------------------------

WIDE = [0.0, 0.0004, 0.003, 0.02, 0.5, 1.0, 1.5, 3.0, 7.0, 42.0, 250.0, 9000.0]


def _exponential(values: list[float], max_scale: int = 20) -> tuple[Any, Any]:
    views = [
        View(
            instrument_name="latency", aggregation=ExponentialBucketHistogramAggregation(max_scale=max_scale)
        )
    ]

    def use(meter: Meter) -> None:
        # An up-down counter, since the Histogram instrument refuses negative values.
        histogram = meter.create_up_down_counter("latency", unit="ms", description="Latency.")
        for value in values:
            histogram.add(value)

    data = record(use, views=views)
    (point,) = points(data, "latency")
    return convert(data), point


@pytest.mark.parametrize(
    ("values", "max_scale"),
    [
        pytest.param(WIDE, 20, id="wide-range-sdk-downscales"),
        pytest.param([1.01, 1.02, 1.03, 1.05], 20, id="narrow-scale-20-merged-to-8"),
        pytest.param([3.0, 5.0, 5.5], 8, id="scale-8-as-is"),
        pytest.param([-1.5, -0.2, 0.0, 0.7, 2.0], 20, id="negative-values"),
    ],
)
def test_exponential_histogram_is_a_native_histogram_with_the_recorded_buckets(
    values: list[float], max_scale: int
) -> None:
    conversion, point = _exponential(values, max_scale)
    if max_scale == 20 and len(values) == 4:
        assert point.scale > 8, "the narrow case must exercise merging buckets down to schema 8"
    fam = family(conversion, "latency_milliseconds")
    assert (fam.type, fam.unit, fam.documentation) == ("histogram", "milliseconds", "Latency.")
    (only,) = fam.samples
    assert only.name == "latency_milliseconds" and only.labels == IDENTITY
    assert only.timestamp == ms(point.time_unix_nano)
    native = only.native_histogram
    assert native.schema == min(point.scale, 8)
    assert native.count_value == len(values) and native.sum_value == pytest.approx(sum(values))
    assert native.zero_count == values.count(0.0) and native.zero_threshold == 1e-128

    def expected(sign: int) -> dict[int, int]:
        counts: dict[int, int] = {}
        for value in values:
            if value * sign > 0:
                index = native_index(value, native.schema)
                counts[index] = counts.get(index, 0) + 1
        return counts

    assert native_bucket_counts(native) == expected(1)
    assert native_negative_bucket_counts(native) == expected(-1)


def test_exponential_histogram_of_a_scale_below_minus_4_is_dropped_and_reported() -> None:
    # Two buckets for values 1e-300 apart force the SDK down to a scale Prometheus has no schema for.
    views = [View(instrument_name="spread", aggregation=ExponentialBucketHistogramAggregation(max_size=2))]

    def use(meter: Meter) -> None:
        histogram = meter.create_histogram("spread")
        histogram.record(1e-300)
        histogram.record(1e300)
        meter.create_counter("kept").add(1)

    data = record(use, views=views)
    (point,) = points(data, "spread")
    assert point.scale < -4
    conversion = convert(data)
    assert [f.name for f in conversion.families if f.name == "spread"] == []
    (dropped,) = conversion.dropped
    assert dropped.metric == "spread" and dropped.points == 1 and dropped.kind == _convert.DROP_POINT
    assert f"scale {point.scale}" in dropped.reason
    assert sample(conversion, "kept_total").value == 1


def test_exponential_point_without_recorded_value_is_stale() -> None:
    views = [View(instrument_name="latency", aggregation=ExponentialBucketHistogramAggregation())]
    data = record(lambda meter: meter.create_histogram("latency").record(1.0), views=views)
    # The SDK never sets DataPointFlags.NO_RECORDED_VALUE itself; other producers may.
    (resource_metrics,) = data.resource_metrics
    (scope_metrics,) = resource_metrics.scope_metrics
    (metric,) = scope_metrics.metrics
    (point,) = metric.data.data_points
    flagged = replace(metric, data=replace(metric.data, data_points=[replace(point, flags=1)]))
    data = MetricsData([replace(resource_metrics, scope_metrics=[replace(scope_metrics, metrics=[flagged])])])
    native = family(convert(data), "latency").samples[0].native_histogram
    assert is_stale_nan(native.count_value) and is_stale_nan(native.sum_value)


def test_without_native_histograms_in_prometheus_client_exponential_histograms_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_points, "_NativeHistogram", None)
    conversion, _ = _exponential([1.0, 2.0])
    assert not _points.native_histograms_supported()
    assert [f.name for f in conversion.families if f.name.startswith("latency")] == []
    (dropped,) = conversion.dropped
    assert dropped.metric == "latency" and dropped.kind == _convert.DROP_NO_NATIVE_HISTOGRAMS
    assert "0.22 or later" in dropped.reason and "prometheus-rw-bridge[opentelemetry]" in dropped.reason


# --- temporality --------------------------------------------------------------------------------


def test_delta_temporality_is_dropped_whole_and_reported_while_the_rest_converts() -> None:
    temporality = {Counter: DELTA, Histogram: DELTA, UpDownCounter: DELTA, ObservableCounter: DELTA}

    def use(meter: Meter) -> None:
        meter.create_counter("sent").add(2, {"a": "1"})
        meter.create_counter("sent").add(2, {"a": "2"})
        meter.create_histogram("took").record(1.0)
        meter.create_up_down_counter("level").add(1)
        meter.create_gauge("fine").set(3)

    conversion = convert(record(use, temporality=temporality))
    assert [f.name for f in conversion.families if f.name != "target"] == ["fine"]
    reasons = {d.metric: (d.points, d.reason) for d in conversion.dropped}
    assert reasons.keys() == {"sent", "took", "level"}
    assert reasons["sent"][0] == 2
    assert all("DELTA temporality" in reason and "cumulative" in reason for _, reason in reasons.values())
    assert {d.kind for d in conversion.dropped} == {_convert.DROP_DELTA}


# --- resource, scope, labels ---------------------------------------------------------------------


def test_resource_gives_job_instance_and_target_info_with_the_other_attributes() -> None:
    resource = {**dict(SERVICE), "host.name": "node-3", "deployment.environment": "prod"}
    conversion = convert(record(lambda meter: meter.create_counter("c").add(1), resource=resource))
    assert sample(conversion, "c_total").labels["job"] == "shop/checkout"
    target = family(conversion, "target")
    assert (target.type, target.documentation) == ("info", "Target metadata")
    (info,) = target.samples
    assert info.name == "target_info" and info.value == 1.0
    assert info.labels == {**TARGET, "host_name": "node-3", "deployment_environment": "prod"}
    assert info.timestamp == sample(conversion, "c_total").timestamp


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        pytest.param({"service.name": "api"}, {"job": "api"}, id="no-namespace"),
        pytest.param(
            {"service.name": "api", "service.namespace": "ns"},
            {"job": "ns/api"},
            id="no-instance-id-no-instance",
        ),
        pytest.param({"service.instance.id": "i-1"}, {"instance": "i-1"}, id="no-service-name-no-job"),
    ],
)
def test_job_and_instance(resource: dict[str, str], expected: dict[str, str]) -> None:
    conversion = convert(record(lambda meter: meter.create_counter("c").add(1), resource=resource))
    (counter,) = [s for s in family(conversion, "c").samples if s.name == "c_total"]
    assert {k: v for k, v in counter.labels.items() if k in ("job", "instance")} == expected
    # Nothing but the service attributes: no target_info.
    assert [f.name for f in conversion.families] == ["c"]


def test_resource_job_wins_over_an_attribute_called_job() -> None:
    conversion = convert(record(lambda meter: meter.create_counter("c").add(1, {"job": "mine", "x": "1"})))
    assert sample(conversion, "c_total", x="1").labels["job"] == "shop/checkout"


def test_target_info_and_scope_labels_can_be_turned_off() -> None:
    conversion = convert(
        record(lambda meter: meter.create_counter("c").add(1, {"k": "v"})),
        scope_labels=False,
        target_info=False,
    )
    assert [f.name for f in conversion.families] == ["c"]
    assert family(conversion, "c").samples[0].labels == {**TARGET, "k": "v"}


def test_scope_attributes_give_an_otel_scope_info_series() -> None:
    conversion = convert(
        record(lambda meter: meter.create_counter("c").add(1), scope_attributes={"library.mascot": "bear"})
    )
    (info,) = family(conversion, "otel_scope").samples
    assert info.name == "otel_scope_info" and info.labels == {**IDENTITY, "library_mascot": "bear"}


def test_attributes_become_sanitised_labels_and_colliding_ones_join() -> None:
    def use(meter: Meter) -> None:
        meter.create_counter("c").add(
            1, {"http.method": "GET", "http-method": "x", "retry": True, "code": 200}
        )

    labels = samples(convert(record(use)))
    (key,) = [k for k in labels if k[0] == "c_total"]
    assert dict(key[1]) == {**IDENTITY, "http_method": "x;GET", "retry": "true", "code": "200"}


def test_same_name_from_two_scopes_merges_into_one_family() -> None:
    def use(meter: Meter) -> None:
        meter.create_counter("jobs.done").add(1)

    one = record(use, scope=("lib.a", "1"))
    two = record(use, scope=("lib.b", "2"))
    one.resource_metrics[0].scope_metrics.extend(two.resource_metrics[0].scope_metrics)
    conversion = convert(one)
    fam = family(conversion, "jobs_done")
    assert sorted(s.labels["otel_scope_name"] for s in fam.samples if s.name == "jobs_done_total") == [
        "lib.a",
        "lib.b",
    ]


def test_a_name_already_taken_by_another_type_drops_the_later_metric() -> None:
    def use(meter: Meter) -> None:
        meter.create_counter("orders").add(1)
        meter.create_gauge("orders_total").set(9)

    conversion = convert(record(use))
    assert sample(conversion, "orders_total").value == 1
    (dropped,) = conversion.dropped
    assert (
        dropped.metric == "orders_total" and "orders_total" in dropped.reason and "counter" in dropped.reason
    )
    assert dropped.kind == _convert.DROP_NAME_CONFLICT


# --- exemplars ----------------------------------------------------------------------------------


def test_exemplars_carry_trace_and_span_ids_into_the_right_bucket() -> None:
    views = [
        View(
            instrument_name="rpc.duration",
            aggregation=ExplicitBucketHistogramAggregation(BOUNDS),
            attribute_keys={"route"},
        ),
        # Room for both exemplars, so that the conversion has to choose (the default keeps one at random).
        View(
            instrument_name="rpc.calls",
            attribute_keys={"route"},
            exemplar_reservoir_factory=lambda _: lambda **_: SimpleFixedSizeExemplarReservoir(size=4),
        ),
    ]
    spans: dict[float, Any] = {}

    def use(meter: Meter) -> None:
        histogram = meter.create_histogram("rpc.duration", unit="s")
        counter = meter.create_counter("rpc.calls")
        gauge = meter.create_gauge("rpc.inflight")
        for value in (0.05, 3.0):
            with sampled_span() as context:
                spans[value] = context
                histogram.record(value, {"route": "/a", "user": "u1"})
                counter.add(1, {"route": "/a", "user": "u1"})
                gauge.set(value, {"route": "/a"})

    data = record(use, views=views)
    (calls,) = points(data, "rpc.calls")
    assert len(calls.exemplars) == 2
    conversion = convert(data)

    def ids(context: Any) -> dict[str, str]:
        return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}

    bucket = sample(conversion, "rpc_duration_seconds_bucket", route="/a", le="0.1")
    assert bucket.exemplar.value == 0.05
    # The attribute the view filtered out travels on the exemplar.
    assert bucket.exemplar.labels == {**ids(spans[0.05]), "user": "u1"}
    assert sample(conversion, "rpc_duration_seconds_bucket", route="/a", le="10.0").exemplar.value == 3.0
    for le in ("0.01", "1.0", "+Inf"):
        assert sample(conversion, "rpc_duration_seconds_bucket", route="/a", le=le).exemplar is None
    # A counter sample carries one exemplar: the latest of the point's.
    latest = sample(conversion, "rpc_calls_total", route="/a").exemplar
    assert latest.labels == {**ids(spans[3.0]), "user": "u1"} and latest.timestamp > 0
    assert sample(conversion, "rpc_inflight", route="/a").exemplar is None


def test_filtered_attributes_beyond_128_characters_are_left_off_the_exemplar() -> None:
    views = [View(instrument_name="*", attribute_keys=set())]

    def use(meter: Meter) -> None:
        with sampled_span():
            meter.create_counter("c").add(1, {"note": "x" * 100})

    exemplar = sample(convert(record(use, views=views)), "c_total").exemplar
    assert sorted(exemplar.labels) == ["span_id", "trace_id"]


def test_native_histograms_keep_every_exemplar() -> None:
    views = [View(instrument_name="latency", aggregation=ExponentialBucketHistogramAggregation())]

    def use(meter: Meter) -> None:
        histogram = meter.create_histogram("latency")
        for value in (1.0, 2.0, 4.0):
            histogram.record(value)

    conversion = convert(record(use, views=views, exemplar_filter=AlwaysOnExemplarFilter()))
    native = family(conversion, "latency").samples[0].native_histogram
    # No span was current: no trace labels, but every exemplar's value and time.
    assert [(ex.value, ex.labels) for ex in native.nh_exemplars] == [(1.0, {}), (2.0, {}), (4.0, {})]
    assert all(ex.timestamp > 0 for ex in native.nh_exemplars)


def test_sample_timestamps_are_whole_milliseconds_of_the_point_time() -> None:
    data = record(lambda meter: meter.create_counter("c").add(1))
    (point,) = points(data, "c")
    stamp = sample(convert(data), "c_total").timestamp
    assert int(stamp * 1000) == point.time_unix_nano // 1_000_000
    assert not math.isnan(stamp)


def test_a_metric_named_target_info_keeps_its_name_and_the_target_info_series_is_dropped() -> None:
    resource = {**dict(SERVICE), "host.name": "node-3"}
    conversion = convert(record(lambda meter: meter.create_gauge("target_info").set(7), resource=resource))
    assert sample(conversion, "target_info").value == 7
    (dropped,) = conversion.dropped
    assert (dropped.metric, dropped.points, dropped.kind) == ("target_info", 1, _convert.DROP_NAME_CONFLICT)
    assert "gauge" in dropped.reason
