"""A real VictoriaMetrics stores every series of a realistic registry under its scrape name and value."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge
from scrape import METADATA_PROBE, key, metadata_probe, read_back, realistic_registry, scraped
from servers import Server, wait_until

from prometheus_rw_bridge import REMOTE_WRITE_HEADERS, generate_write_request

pytestmark = pytest.mark.integration

# VictoriaMetrics keeps values as a decimal mantissa and exponent: about 15 significant digits.
REL_TOL = 1e-12


def post(server: Server, body: bytes) -> None:
    response = httpx.post(server.write_url, content=body, headers=dict(REMOTE_WRITE_HEADERS), timeout=30)
    assert response.status_code in (200, 204), response.text
    server.flush()


def stored(server: Server, job: str, at_ms: int, count: int) -> dict[Any, float]:
    """Every series of ``job`` at ``at_ms``, once ``count`` of them are visible, keyed like the scrape."""

    def query() -> list[Any]:
        server.flush()
        items = server.query(f'{{job="{job}"}}', time=at_ms / 1000)
        return items if len(items) >= count else []

    items = wait_until(query, timeout=30, message=f"{count} series of job {job} in VictoriaMetrics")
    return read_back(items, job, "ci-host:9000")


def test_every_series_read_back_equals_the_scrape(
    victoriametrics_server: Server, unique_job: str, now_ms: int
) -> None:
    registry = realistic_registry(own_timestamp=(now_ms - 2_000) / 1000, special_values=False)
    post(
        victoriametrics_server,
        generate_write_request(registry, timestamp_ms=now_ms, job=unique_job, instance="ci-host:9000"),
    )
    expected = scraped(registry)
    got = stored(victoriametrics_server, unique_job, now_ms, len(expected))
    assert got.keys() == expected.keys()
    for series, point in expected.items():
        assert math.isclose(got[series], point.value, rel_tol=REL_TOL), (series, got[series], point.value)
    assert key("app_events_total", {"event_kind": "signup"}) in got
    assert key("request_latency_seconds_bucket", {"route": "/api", "le": "+Inf"}) in got
    assert key("room_temperature_celsius", {"room": "kitchen", "note": 'says "hi"\\n\nnewline'}) in got


def test_infinities_are_kept(victoriametrics_server: Server, unique_job: str, now_ms: int) -> None:
    registry = CollectorRegistry()
    g = Gauge("edge_values", "Infinite values.", ["kind"], registry=registry)
    g.labels("pos").set(math.inf)
    g.labels("neg").set(-math.inf)
    post(
        victoriametrics_server,
        generate_write_request(registry, timestamp_ms=now_ms, job=unique_job, instance="ci-host:9000"),
    )
    got = stored(victoriametrics_server, unique_job, now_ms, 2)
    assert got == {
        key("edge_values", {"kind": "pos"}): math.inf,
        key("edge_values", {"kind": "neg"}): -math.inf,
    }


def test_metadata_is_accepted_but_not_stored(
    victoriametrics_server: Server, unique_job: str, now_ms: int
) -> None:
    # docs/concepts.md says VictoriaMetrics 1.79 (the version the suite runs) keeps no remote-written
    # metadata: this pins that claim, and fails when a newer server changes it.
    server = victoriametrics_server
    post(server, metadata_probe(unique_job, now_ms))
    assert key(METADATA_PROBE, {}) in stored(server, unique_job, now_ms, 2)  # the samples are stored
    assert server.metadata(METADATA_PROBE) in ({}, [])
