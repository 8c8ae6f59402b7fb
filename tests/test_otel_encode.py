"""Converted OpenTelemetry data through the real 1.0 and 2.0 encoders, decoded and checked.

The conversion's families are all the encoders see: these tests prove that what comes out
on the wire is what the Prometheus compatibility specification asks for, with each point's
own timestamp, metadata, exemplars, 2.0 start timestamps and native histograms.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.metrics import Meter, Observation
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from otel_sdk import native_bucket_counts, native_index, points, record, sampled_span

from prometheus_rw_bridge import DecodedRequest, decode_write_request
from prometheus_rw_bridge._otel.convert import convert
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2

BOUNDS = [0.01, 0.1, 1.0, 10.0]
DURATIONS = [0.004, 0.03, 0.03, 0.2, 0.9, 2.5, 12.0]
LATENCIES = [0.7, 1.5, 3.0, 3.2, 40.0, 41.0, 900.0]
COLLECTION_MS = 1_000  # far from every point's time: any sample stamped with it is wrong
IDENTITY = {
    "job": "shop/checkout",
    "instance": "pod-7",
    "otel_scope_name": "shop.checkout",
    "otel_scope_version": "2.1.0",
}
VIEWS = [
    View(instrument_name="rpc.duration", aggregation=ExplicitBucketHistogramAggregation(BOUNDS)),
    View(instrument_name="rpc.latency", aggregation=ExponentialBucketHistogramAggregation(max_scale=5)),
]


@pytest.fixture(scope="module")
def recorded() -> tuple[MetricsData, dict[str, Any]]:
    spans: dict[str, Any] = {}

    def use(meter: Meter) -> None:
        requests = meter.create_counter(
            "http.server.requests", unit="{request}", description="Requests served."
        )
        with sampled_span() as context:
            spans["request"] = context
            requests.add(5, {"http.request.method": "GET"})
        duration = meter.create_histogram("rpc.duration", unit="s", description="RPC time.")
        for value in DURATIONS:
            duration.record(value)
        latency = meter.create_histogram("rpc.latency", unit="ms", description="RPC latency.")
        for value in LATENCIES:
            latency.record(value)
        meter.create_observable_gauge("system.cpu.utilization", [lambda _: [Observation(0.42)]], unit="1")
        meter.create_up_down_counter("queue.depth").add(-3)

    return record(use, views=VIEWS), spans


def _decode(data: MetricsData, protocol: str) -> DecodedRequest:
    families = convert(data).families
    encoder = Encoder(job="", instance="") if protocol == "1.0" else EncoderV2(job="", instance="")
    body = encoder.encode(families, COLLECTION_MS).body()
    return decode_write_request(body, compressed=False, protocol=protocol)


def _series(request: DecodedRequest) -> dict[tuple[str, frozenset[tuple[str, str]]], Any]:
    found = {}
    for series in request.series:
        labels = {k: v for k, v in series.labels.items() if k != "__name__"}
        found[(series.name, frozenset(labels.items()))] = series
    assert len(found) == len(request.series), "a series sent twice"
    return found


def _get(request: DecodedRequest, name: str, **labels: str) -> Any:
    return _series(request)[(name, frozenset({**IDENTITY, **labels}.items()))]


def _point_ms(data: MetricsData, name: str, field: str = "time_unix_nano") -> int:
    (point, *_) = points(data, name)
    return int(getattr(point, field)) // 1_000_000


@pytest.mark.parametrize("protocol", ["1.0", "2.0"])
def test_every_sample_keeps_its_point_time_and_value(
    recorded: tuple[MetricsData, dict[str, Any]], protocol: str
) -> None:
    data, _ = recorded
    request = _decode(data, protocol)
    now_ms = _point_ms(data, "http.server.requests")
    stamps = {s.timestamp_ms for series in request.series for s in series.samples}
    stamps |= {h.timestamp for series in request.series for h in series.histograms}
    assert stamps == {now_ms}, "one collection of the SDK: one time, never the encoder's"
    assert _get(request, "http_server_requests_total", http_request_method="GET").samples[0].value == 5.0
    assert _get(request, "system_cpu_utilization_ratio").samples[0].value == 0.42
    assert _get(request, "queue_depth").samples[0].value == -3.0
    for bound in BOUNDS:
        bucket = _get(request, "rpc_duration_seconds_bucket", le=str(bound))
        assert bucket.samples[0].value == sum(v <= bound for v in DURATIONS)
    assert _get(request, "rpc_duration_seconds_bucket", le="+Inf").samples[0].value == len(DURATIONS)
    assert _get(request, "rpc_duration_seconds_count").samples[0].value == len(DURATIONS)
    assert _get(request, "rpc_duration_seconds_sum").samples[0].value == pytest.approx(sum(DURATIONS))
    (info,) = [s for s in request.series if s.name == "target_info"]
    assert info.labels["job"] == "shop/checkout" and info.labels["telemetry_sdk_language"] == "python"


def test_1_0_sends_created_series_and_metadata(recorded: tuple[MetricsData, dict[str, Any]]) -> None:
    data, _ = recorded
    request = _decode(data, "1.0")
    start_s = _point_ms(data, "http.server.requests", "start_time_unix_nano") / 1000
    created = _get(request, "http_server_requests_created", http_request_method="GET")
    assert created.samples[0].value == start_s
    metadata = {md.metric_family_name: (md.type, md.help, md.unit) for md in request.metadata}
    assert metadata["http_server_requests_total"] == ("counter", "Requests served.", "")
    assert metadata["rpc_duration_seconds"] == ("histogram", "RPC time.", "seconds")
    assert metadata["rpc_latency_milliseconds"] == ("histogram", "RPC latency.", "milliseconds")
    assert metadata["system_cpu_utilization_ratio"] == ("gauge", "", "ratio")
    assert metadata["queue_depth"] == ("gauge", "", "")
    assert metadata["target_info"] == ("gauge", "Target metadata", "")


def test_2_0_turns_created_into_start_timestamps_and_carries_metadata_per_series(
    recorded: tuple[MetricsData, dict[str, Any]],
) -> None:
    data, _ = recorded
    request = _decode(data, "2.0")
    assert not [s for s in request.series if s.name.endswith("_created")]
    requests_start = _point_ms(data, "http.server.requests", "start_time_unix_nano")
    counter = _get(request, "http_server_requests_total", http_request_method="GET")
    assert counter.samples[0].start_timestamp_ms == requests_start
    assert counter.metadata is not None
    assert (counter.metadata.type, counter.metadata.help) == ("counter", "Requests served.")
    duration_start = _point_ms(data, "rpc.duration", "start_time_unix_nano")
    for le in ("0.01", "+Inf"):
        assert (
            _get(request, "rpc_duration_seconds_bucket", le=le).samples[0].start_timestamp_ms
            == duration_start
        )
    bucket = _get(request, "rpc_duration_seconds_bucket", le="0.01")
    assert bucket.metadata is not None and (bucket.metadata.type, bucket.metadata.unit) == (
        "histogram",
        "seconds",
    )
    gauge = _get(request, "queue_depth")
    assert gauge.samples[0].start_timestamp_ms == 0


@pytest.mark.parametrize("protocol", ["1.0", "2.0"])
def test_exponential_histogram_arrives_as_a_native_histogram(
    recorded: tuple[MetricsData, dict[str, Any]], protocol: str
) -> None:
    data, _ = recorded
    series = _get(_decode(data, protocol), "rpc_latency_milliseconds")
    assert series.samples == []
    (hist,) = series.histograms
    assert hist.count_int == len(LATENCIES) and hist.sum == pytest.approx(sum(LATENCIES))
    (point,) = points(data, "rpc.latency")
    assert hist.schema == point.scale <= 5
    expected: dict[int, int] = {}
    for value in LATENCIES:
        index = native_index(value, hist.schema)
        expected[index] = expected.get(index, 0) + 1
    spans = [(span.offset, span.length) for span in hist.positive_spans]
    assert native_bucket_counts(_Native(spans, list(hist.positive_deltas))) == expected
    assert hist.zero_threshold == 1e-128 and hist.zero_count_int == 0


class _Native:
    """Just the positive buckets of a decoded histogram, for native_bucket_counts."""

    def __init__(self, spans: list[tuple[int, int]], deltas: list[int]) -> None:
        self.pos_spans, self.pos_deltas = spans, deltas


@pytest.mark.parametrize("protocol", ["1.0", "2.0"])
def test_exemplar_arrives_with_trace_and_span_ids(
    recorded: tuple[MetricsData, dict[str, Any]], protocol: str
) -> None:
    data, spans = recorded
    counter = _get(_decode(data, protocol), "http_server_requests_total", http_request_method="GET")
    (exemplar,) = counter.exemplars
    context = spans["request"]
    assert exemplar.labels == {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }
    assert exemplar.value == 5.0
    (point,) = points(data, "http.server.requests")
    assert exemplar.timestamp_ms == point.exemplars[0].time_unix_nano // 1_000_000
