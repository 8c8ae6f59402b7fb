"""OpenTelemetry SDK metrics, converted and written to a real Prometheus, read back by PromQL.

The distributions are recorded with the real SDK; what Prometheus answers is compared with
values computed from the recorded numbers themselves: a series' value, and
``histogram_quantile`` over the stored buckets, classic and native.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import httpx
import pytest
from opentelemetry.metrics import Meter, Observation
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from otel_sdk import native_index, points, record, sampled_span
from servers import Server, wait_until

from prometheus_rw_bridge import REMOTE_WRITE_HEADERS, generate_write_request
from prometheus_rw_bridge._otel.convert import Conversion, convert

pytestmark = pytest.mark.integration

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
QUANTILES = [0.1, 0.5, 0.9, 0.99]


class _Families:
    """A collector yielding a conversion's families, for ``generate_write_request``."""

    def __init__(self, conversion: Conversion) -> None:
        self._families = conversion.families

    def collect(self) -> list[Any]:
        return list(self._families)


def _distribution(seed: int, size: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-2.5, 1.2) for _ in range(size)]


def _push(server: Server, data: MetricsData) -> tuple[Conversion, float]:
    """Write a conversion of ``data``; return it and the points' time (s) to query at."""
    conversion = convert(data)
    assert conversion.dropped == []
    body = generate_write_request(_Families(conversion), job="unused", instance="unused")
    response = httpx.post(server.write_url, content=body, headers=dict(REMOTE_WRITE_HEADERS), timeout=30)
    assert response.status_code in (200, 204), response.text
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
