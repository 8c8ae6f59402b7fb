"""OpenTelemetry SDK metrics through RemoteWriteMetricExporter into a real Prometheus, read back by PromQL.

The distributions are recorded with the real SDK and exported by the exporter (from the SDK's
``MetricsData``, or through a ``PeriodicExportingMetricReader``); what Prometheus answers is
compared with values computed from the recorded numbers themselves: a series' value, and
``histogram_quantile`` over the stored buckets, classic and native.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from otel_sdk import native_index, points, record, sampled_span
from servers import Server, wait_until

from prometheus_rw_bridge._otel.convert import Conversion, convert
from prometheus_rw_bridge.opentelemetry import RemoteWriteMetricExporter

pytestmark = pytest.mark.integration

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
QUANTILES = [0.1, 0.5, 0.9, 0.99]


def _distribution(seed: int, size: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-2.5, 1.2) for _ in range(size)]


def _push(server: Server, data: MetricsData) -> tuple[Conversion, float]:
    """Export ``data`` with the exporter; return its conversion and the points' time (s) to query at."""
    conversion = convert(data)
    assert conversion.dropped == []
    exporter = RemoteWriteMetricExporter(server.write_url, self_metrics=False, stale_on_close=False)
    try:
        assert exporter.export(data, timeout_millis=30_000) is MetricExportResult.SUCCESS, exporter.stats
    finally:
        exporter.shutdown(timeout_millis=10_000)
    (first, *_) = [point for family in conversion.families for point in family.samples]
    return conversion, float(first.timestamp)


def _true_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _classic_quantile(q: float, bounds: list[float], values: list[float]) -> tuple[float, float, float]:
    """PromQL's histogram_quantile over cumulative buckets of ``values``: (estimate, bucket lower, upper)."""
    cumulative = [sum(v <= bound for v in values) for bound in bounds] + [len(values)]
    rank = q * len(values)
    index = next(i for i, count in enumerate(cumulative) if count >= rank)
    if index == len(bounds):
        return bounds[-1], bounds[-1], math.inf
    lower = 0.0 if index == 0 else bounds[index - 1]
    below = 0 if index == 0 else cumulative[index - 1]
    upper = bounds[index]
    return lower + (upper - lower) * (rank - below) / (cumulative[index] - below), lower, upper


def test_every_instrument_reads_back_and_histogram_quantile_matches(
    prometheus_server: Server, unique_job: str
) -> None:
    durations = _distribution(seed=15, size=400)
    views = [
        View(instrument_name="http.server.duration", aggregation=ExplicitBucketHistogramAggregation(BOUNDS))
    ]

    def use(meter: Meter) -> None:
        requests = meter.create_counter("http.server.requests", unit="{request}")
        requests.add(7, {"http.response.status_code": 200})
        requests.add(2, {"http.response.status_code": 500})
        meter.create_up_down_counter("http.server.active_requests").add(-1)
        meter.create_gauge("room.temperature", unit="Cel").set(21.5)
        meter.create_observable_gauge("system.memory.utilization", [lambda _: [Observation(0.75)]], unit="1")
        meter.create_observable_counter("network.io", [lambda _: [Observation(8192)]], unit="By")
        meter.create_observable_up_down_counter("db.pool.connections", [lambda _: [Observation(4)]])
        duration = meter.create_histogram("http.server.duration", unit="s", description="Request time.")
        for value in durations:
            duration.record(value, {"http.route": "/checkout"})

    resource = {"service.name": unique_job, "service.instance.id": "otel-itest", "host.name": "node-1"}
    conversion, at = _push(prometheus_server, record(use, resource=resource, views=views))

    stored = {
        (item["metric"].pop("__name__"), frozenset(item["metric"].items())): float(item["value"][1])
        for item in prometheus_server.query(f'{{job="{unique_job}"}}', time=at)
    }
    sent = {
        (s.name, frozenset(s.labels.items())): float(s.value)
        for family in conversion.families
        for s in family.samples
    }
    assert stored.keys() == sent.keys()
    for key, value in sent.items():
        assert stored[key] == pytest.approx(value, rel=1e-12), key
    by_name = {
        name: value
        for (name, labels), value in stored.items()
        if ("http_response_status_code", "500") not in labels
    }
    assert by_name["http_server_requests_total"] == 7.0
    assert by_name["http_server_active_requests"] == -1.0
    assert by_name["room_temperature_celsius"] == 21.5
    assert by_name["system_memory_utilization_ratio"] == 0.75
    assert by_name["network_io_bytes_total"] == 8192.0
    assert by_name["db_pool_connections"] == 4.0
    assert by_name["http_server_duration_seconds_count"] == len(durations)
    assert by_name["target_info"] == 1.0

    for q in QUANTILES:
        (item,) = prometheus_server.query(
            f'histogram_quantile({q}, http_server_duration_seconds_bucket{{job="{unique_job}"}})', time=at
        )
        got = float(item["value"][1])
        expected, lower, upper = _classic_quantile(q, BOUNDS, durations)
        assert got == pytest.approx(expected, rel=1e-9), q
        assert lower < _true_quantile(durations, q) <= upper, "the true quantile is in the bucket PromQL used"


def test_exponential_histogram_is_a_native_histogram_in_prometheus(
    prometheus_native_server: Server, unique_job: str
) -> None:
    latencies = _distribution(seed=16, size=1000)
    views = [View(instrument_name="rpc.latency", aggregation=ExponentialBucketHistogramAggregation())]
    spans: list[Any] = []

    def use(meter: Meter) -> None:
        latency = meter.create_histogram("rpc.latency", unit="s")
        for value in latencies:
            latency.record(value)
        with sampled_span() as context:
            spans.append(context)
            meter.create_counter("rpc.calls").add(3)

    data = record(use, resource={"service.name": unique_job}, views=views)
    (point,) = points(data, "rpc.latency")
    schema = min(point.scale, 8)
    _, at = _push(prometheus_native_server, data)
    series = f'rpc_latency_seconds{{job="{unique_job}"}}'

    def scalar(promql: str) -> float:
        (item,) = prometheus_native_server.query(promql, time=at)
        return float(item["value"][1])

    assert scalar(f"histogram_count({series})") == len(latencies)
    assert scalar(f"histogram_sum({series})") == pytest.approx(sum(latencies), rel=1e-9)
    for q in QUANTILES:
        got = scalar(f"histogram_quantile({q}, {series})")
        index = native_index(_true_quantile(latencies, q), schema)
        lower, upper = 2 ** ((index - 1) / 2**schema), 2 ** (index / 2**schema)
        assert lower * (1 - 1e-9) <= got <= upper * (1 + 1e-9), (q, lower, got, upper)

    query = f'rpc_calls_total{{job="{unique_job}"}}'

    def exemplars() -> list[Any]:
        return prometheus_native_server.query_exemplars(query, at - 60, time.time() + 60)

    (group,) = wait_until(exemplars, timeout=30, message="the exemplar to be queryable")
    (exemplar,) = group["exemplars"]
    assert exemplar["labels"] == {
        "trace_id": format(spans[0].trace_id, "032x"),
        "span_id": format(spans[0].span_id, "016x"),
    }
    assert float(exemplar["value"]) == 3.0


def test_a_periodic_reader_s_exports_read_back_and_shutdown_ends_the_series(
    prometheus_server: Server, unique_job: str
) -> None:
    durations = _distribution(seed=17, size=200)
    connections = {"primary": 4.0, "replica": 2.0}

    def pool(options: CallbackOptions) -> list[Observation]:
        return [Observation(count, {"db.pool": name}) for name, count in connections.items()]

    exporter = RemoteWriteMetricExporter(prometheus_server.write_url, self_metrics=False)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": unique_job}),
        views=[View(instrument_name="rpc.duration", aggregation=ExplicitBucketHistogramAggregation(BOUNDS))],
        shutdown_on_exit=False,
    )
    meter = provider.get_meter("shop.checkout", "2.1.0")
    orders = meter.create_counter("shop.orders")
    in_flight = meter.create_up_down_counter("http.server.active_requests")
    duration = meter.create_histogram("rpc.duration", unit="s")
    meter.create_observable_gauge("db.pool.connections", [pool])
    meter.create_observable_counter("network.io", [lambda _: [Observation(4096)]], unit="By")
    orders.add(5)
    in_flight.add(3)
    for value in durations[:100]:
        duration.record(value)
    provider.force_flush(timeout_millis=30_000)
    orders.add(2)
    in_flight.add(-1)
    for value in durations[100:]:
        duration.record(value)
    del connections["replica"]  # an observation that ends: a stale marker in the next export
    provider.force_flush(timeout_millis=30_000)
    assert exporter.stats.samples_dropped == 0 and exporter.stats.successes == 2
    now = time.time()

    def scalar(promql: str) -> float:
        (item,) = prometheus_server.query(promql, time=now)
        return float(item["value"][1])

    job = f'job="{unique_job}"'
    assert scalar(f"shop_orders_total{{{job}}}") == 7.0
    assert scalar(f"http_server_active_requests{{{job}}}") == 2.0
    assert scalar(f"network_io_bytes_total{{{job}}}") == 4096.0
    assert scalar(f"rpc_duration_seconds_count{{{job}}}") == len(durations)
    assert scalar(f"rpc_duration_seconds_sum{{{job}}}") == pytest.approx(sum(durations), rel=1e-9)
    pools = prometheus_server.query(f"db_pool_connections{{{job}}}", time=now)
    assert [(item["metric"]["db_pool"], float(item["value"][1])) for item in pools] == [("primary", 4.0)]
    for q in QUANTILES:
        got = scalar(f"histogram_quantile({q}, rpc_duration_seconds_bucket{{{job}}})")
        expected, lower, upper = _classic_quantile(q, BOUNDS, durations)
        assert got == pytest.approx(expected, rel=1e-9), q
        assert lower < _true_quantile(durations, q) <= upper

    provider.shutdown(timeout_millis=30_000)  # stale markers for every series sent
    assert prometheus_server.query(f"{{{job}}}", time=time.time()) == []
    assert prometheus_server.query(f"shop_orders_total{{{job}}}", time=now) != []  # what was sent stays


def test_native_histograms_refused_by_prometheus_are_not_retried(
    prometheus_server: Server, unique_job: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Without --enable-feature=native-histograms Prometheus 2.x refuses the whole request with a 500.
    exporter = RemoteWriteMetricExporter(
        prometheus_server.write_url,
        self_metrics=False,
        preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation()},
    )
    provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)],
        resource=Resource.create({"service.name": unique_job}),
        shutdown_on_exit=False,
    )
    meter = provider.get_meter("shop.checkout")
    meter.create_histogram("rpc.latency", unit="s").record(0.5)
    meter.create_counter("rpc.calls").add(1)
    provider.force_flush(timeout_millis=30_000)
    stats = exporter.stats
    assert (stats.attempts, set(stats.dropped_by_reason)) == (1, {"http_500"})
    assert "native histograms are disabled" in (stats.last_error or "")
    assert "--enable-feature=native-histograms" in caplog.text
    assert prometheus_server.query(f'rpc_calls_total{{job="{unique_job}"}}') == []  # the whole request
    provider.shutdown(timeout_millis=10_000)
