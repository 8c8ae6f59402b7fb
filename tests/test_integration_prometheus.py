"""A real Prometheus stores every series of a realistic registry under its scrape name and value."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import Metric
from scrape import (
    METADATA_PROBE,
    key,
    metadata_probe,
    read_back,
    realistic_registry,
    same_value,
    scraped,
    written,
)
from servers import Server, wait_until

from prometheus_rw_bridge import REMOTE_WRITE_HEADERS, generate_write_request

pytestmark = pytest.mark.integration


def post(server: Server, body: bytes) -> httpx.Response:
    response = httpx.post(server.write_url, content=body, headers=dict(REMOTE_WRITE_HEADERS), timeout=30)
    assert response.status_code in (200, 204), response.text
    return response


def stored(server: Server, job: str, at_ms: int) -> dict[Any, float]:
    """Every series of ``job`` as the server has it at ``at_ms``, keyed like the scrape."""
    return read_back(server.query(f'{{job="{job}"}}', time=at_ms / 1000), job, "ci-host:9000")


def test_every_series_read_back_equals_the_scrape(
    prometheus_server: Server, unique_job: str, now_ms: int
) -> None:
    registry = realistic_registry(own_timestamp=(now_ms - 2_000) / 1000)
    body = generate_write_request(registry, timestamp_ms=now_ms, job=unique_job, instance="ci-host:9000")
    post(prometheus_server, body)
    expected = scraped(registry)
    got = stored(prometheus_server, unique_job, now_ms)
    assert got.keys() == expected.keys()
    for series, point in expected.items():
        assert same_value(got[series], point.value), (series, got[series], point.value)
    # A spot check that names really are the scrape's, not merely consistent with it.
    assert key("app_events_total", {"event_kind": "signup"}) in got
    assert key("request_latency_seconds_bucket", {"route": "/api", "le": "+Inf"}) in got
    assert key("rpc_duration_seconds", {"service": "auth", "quantile": "0.99"}) in got
    assert key("queue_wait_seconds_gsum", {}) in got
    assert key("room_temperature_celsius", {"room": "日本"}) in got
    assert math.isnan(got[key("special_values", {"kind": "nan"})])


def test_own_sample_timestamp_is_stored(prometheus_server: Server, unique_job: str, now_ms: int) -> None:
    own_ms = now_ms - 2_000
    registry = realistic_registry(own_timestamp=own_ms / 1000)
    post(prometheus_server, generate_write_request(registry, timestamp_ms=now_ms, job=unique_job))

    def stored_timestamp(name: str) -> float:
        (item,) = prometheus_server.query(f'timestamp({name}{{job="{unique_job}"}})', time=now_ms / 1000)
        return float(item["value"][1])

    assert stored_timestamp("batch_last_success") == own_ms / 1000
    assert stored_timestamp("inflight_requests") == now_ms / 1000


def test_a_second_collection_updates_values(prometheus_server: Server, unique_job: str, now_ms: int) -> None:
    registry = CollectorRegistry()
    g = Gauge("progress_ratio", "Progress.", registry=registry)
    for step, ts in enumerate((now_ms - 30_000, now_ms)):
        g.set(step / 2)
        post(prometheus_server, generate_write_request(registry, timestamp_ms=ts, job=unique_job))
    query = f'progress_ratio{{job="{unique_job}"}}'
    assert [float(r["value"][1]) for r in prometheus_server.query(query, time=now_ms / 1000)] == [0.5]
    assert [float(r["value"][1]) for r in prometheus_server.query(query, time=(now_ms - 1) / 1000)] == [0.0]


def test_bad_input_still_gives_a_request_prometheus_accepts(
    prometheus_server: Server, unique_job: str, now_ms: int, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def collect(self) -> Any:
            raise RuntimeError("backend down")

        def describe(self) -> list[Any]:
            return []

    class Messy:
        def collect(self) -> Any:
            family = Metric("messy.metric", "Hand-made samples.", "gauge")
            family.add_sample("messy.metric", {"": "no name", "ok": "1"}, 1.0)
            family.add_sample("messy.metric", {"ok": "2", "long": "v" * 10_000}, 2.0)
            family.add_sample("messy.metric", {"ok": "3"}, "not a number")
            family.add_sample("messy.metric", {"ok": "4", "a.b": "x", "a-b": "y"}, 4.0)
            yield family

        def describe(self) -> list[Any]:
            return []

    registry = CollectorRegistry()
    registry.register(Broken())
    registry.register(Messy())
    body = generate_write_request(registry, timestamp_ms=now_ms, job=unique_job)
    post(prometheus_server, body)
    got = {
        item["metric"]["ok"]: item["metric"]
        for item in prometheus_server.query(f'messy_metric{{job="{unique_job}"}}', time=now_ms / 1000)
    }
    assert sorted(got) == ["1", "2"]
    assert got["2"]["long"] == "v" * 10_000
    assert "backend down" in caplog.text and "not a number" in caplog.text


def test_exemplars_are_stored(prometheus_native_server: Server, unique_job: str, now_ms: int) -> None:
    registry = realistic_registry(own_timestamp=(now_ms - 2_000) / 1000)
    body = generate_write_request(registry, timestamp_ms=now_ms, job=unique_job)
    sent = [p for k, p in written(body).items() if k[0] == "http_requests_total"]
    assert sent
    post(prometheus_native_server, body)
    query = f'http_requests_total{{job="{unique_job}"}}'

    def exemplars() -> list[Any]:
        return prometheus_native_server.query_exemplars(query, time.time() - 3600, time.time() + 60)

    (group,) = wait_until(exemplars, timeout=30, message="the exemplar to be queryable")
    assert group["seriesLabels"]["code"] == "200" and group["seriesLabels"]["method"] == "POST"
    (ex,) = group["exemplars"]
    assert ex["labels"] == {"trace_id": "4bf92f3577b34da6"}
    assert float(ex["value"]) == 3.0


def test_metadata_is_accepted_but_not_stored(prometheus_server: Server, unique_job: str, now_ms: int) -> None:
    # docs/concepts.md says Prometheus 2.42 (the version the suite runs) keeps no remote-written
    # metadata: this pins that claim, and fails when a newer server changes it.
    server = prometheus_server
    post(server, metadata_probe(unique_job, now_ms))
    assert key(METADATA_PROBE, {}) in stored(server, unique_job, now_ms)  # the samples are stored
    assert server.metadata(METADATA_PROBE) in ({}, [])
