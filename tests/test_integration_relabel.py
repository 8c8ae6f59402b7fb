"""write_relabel_configs against a real Prometheus: what it stores is what the rules say.

The bridge (flushed, then closed without stale markers, so the series stay queryable) and
``push_to_remote_write`` send a registry to the session Prometheus, each test under a ``job``
of its own; sharding starts a second Prometheus.  Prometheus 2.42 keeps no remote-written
metadata, so renamed metadata is checked at the in-process receiver (``test_groups.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge
from relabel_cases import shard_rules, web_registry
from servers import Server

from prometheus_rw_bridge import BridgeStats, enable_remote_write, push_to_remote_write

pytestmark = pytest.mark.integration

PATHS = [pytest.param("bridge", id="bridge"), pytest.param("push", id="push")]

Series = frozenset[tuple[str, str]]


def send(path: str, registry: CollectorRegistry, job: str, **options: Any) -> BridgeStats | None:
    """Send ``registry`` once as ``job``: a bridge flushed then closed, or ``push_to_remote_write``."""
    options = {"job": job, "instance": "ci-host:9000", "environ": {}, **options}
    if path == "push":
        push_to_remote_write(registry=registry, **options)
        return None
    bridge = enable_remote_write(
        registry=registry, interval=3600, self_metrics=False, stale_on_close=False, **options
    )
    try:
        assert bridge.flush(timeout=30)
    finally:
        bridge.close(timeout=10)
    return bridge.stats


def stored(server: Server, job: str) -> dict[Series, float]:
    """Every series of ``job`` the server has now, without job and instance."""
    return {
        frozenset((k, v) for k, v in labels if k not in ("job", "instance")): value
        for labels, value in server.query_vector(f'{{job="{job}"}}').items()
    }


def series(name: str, **labels: str) -> Series:
    return frozenset({"__name__": name, **labels}.items())


@pytest.mark.parametrize("path", PATHS)
def test_drop_a_label_keep_some_metrics_and_rename_one(
    prometheus_server: Server, unique_job: str, path: str
) -> None:
    rules = [
        {"regex": "request_id", "action": "labeldrop"},
        {"source_labels": ["__name__"], "regex": "http_requests_total|legacy_orders_total", "action": "keep"},
        {
            "source_labels": ["__name__"],
            "regex": "legacy_(.*)",
            "target_label": "__name__",
            "replacement": "app_${1}",
        },
    ]
    send(
        path,
        web_registry(),
        unique_job,
        url=prometheus_server.write_url,
        write_relabel_configs=rules,
    )

    expected = {series("http_requests_total", path=f"/p{i}"): float(i + 1) for i in range(12)}
    expected[series("app_orders_total", shop="north")] = 7.0
    assert stored(prometheus_server, unique_job) == expected


@pytest.mark.parametrize("path", PATHS)
def test_hashmod_shards_series_between_two_prometheus_servers(
    prometheus_server: Server, server_factory: Callable[..., Server], unique_job: str, path: str
) -> None:
    other = server_factory("prometheus")
    registry = web_registry()
    endpoints = [
        {"url": prometheus_server.write_url, "write_relabel_configs": shard_rules(0)},
        {"url": other.write_url, "write_relabel_configs": shard_rules(1)},
    ]
    send(path, registry, unique_job, endpoints=endpoints)
    first, second = stored(prometheus_server, unique_job), stored(other, unique_job)

    everything = f"{unique_job}_all"
    send(path, registry, everything, url=prometheus_server.write_url)
    assert first and second  # each server its share...
    assert first.keys() & second.keys() == set()  # ...nothing twice...
    assert {**first, **second} == stored(prometheus_server, everything)  # ...nothing lost


def test_series_that_collide_after_relabelling_the_first_is_stored(
    prometheus_server: Server, unique_job: str
) -> None:
    registry = CollectorRegistry()
    depth = Gauge("queue_depth", "Depth.", ["queue", "worker"], registry=registry)
    depth.labels("mail", "w1").set(5)
    depth.labels("mail", "w2").set(9)  # the same series as w1's without the worker label
    depth.labels("video", "w1").set(2)
    rules = [{"regex": "worker", "action": "labeldrop"}]

    stats = send("bridge", registry, unique_job, url=prometheus_server.write_url, write_relabel_configs=rules)

    assert stored(prometheus_server, unique_job) == {
        series("queue_depth", queue="mail"): 5.0,
        series("queue_depth", queue="video"): 2.0,
    }
    assert stats is not None
    assert stats.samples_failed == 0  # Prometheus refused nothing: the repeat was never sent
    assert stats.dropped_by_reason == {"duplicate": stats.collections}


@pytest.mark.parametrize("path", PATHS)
def test_rules_from_a_yaml_file_and_per_endpoint_json_files_in_the_environment(
    prometheus_server: Server, tmp_path: Path, unique_job: str, path: str
) -> None:
    shared = tmp_path / "relabel.yml"
    shared.write_text(
        "- target_label: copy\n  replacement: shared\n- regex: request_id\n  action: labeldrop\n"
    )
    own = tmp_path / "primary.json"
    own.write_text(json.dumps([{"target_label": "copy", "replacement": "primary"}]))
    environ = {
        "PROMETHEUS_REMOTE_WRITE_ENDPOINTS": "primary,backup",
        "PROMETHEUS_REMOTE_WRITE_PRIMARY_URL": prometheus_server.write_url,
        "PROMETHEUS_REMOTE_WRITE_PRIMARY_RELABEL_CONFIG_FILE": str(own),
        "PROMETHEUS_REMOTE_WRITE_BACKUP_URL": prometheus_server.write_url,
        "PROMETHEUS_REMOTE_WRITE_RELABEL_CONFIG_FILE": str(shared),
    }
    send(path, web_registry(), unique_job, environ=environ)

    got = stored(prometheus_server, unique_job)
    assert got[series("http_requests_total", path="/p2", request_id="r2", copy="primary")] == 3.0
    assert got[series("http_requests_total", path="/p2", copy="shared")] == 3.0
    assert {dict(labels)["copy"] for labels in got} == {"primary", "shared"}
