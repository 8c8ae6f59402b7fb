"""write_relabel_configs end to end: endpoints grouped by their rules, through the bridge and one-shot pushes.

Every test sends a real registry over HTTP to in-process receivers (``prometheus_rw_bridge.testing.Receiver``)
and reads back what each endpoint was sent.  Real Prometheus is in ``test_integration_relabel.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from relabel_cases import DROP_REQUEST_ID, RENAME_LEGACY, shard_rules, web_registry

from prometheus_rw_bridge import (
    BridgeStats,
    ConfigurationError,
    enable_remote_write,
    is_stale_nan,
    push_to_remote_write,
)
from prometheus_rw_bridge._config.settings import resolve_settings
from prometheus_rw_bridge._delivery.groups import group_by_rules
from prometheus_rw_bridge.testing import Receiver, Reply

Key = tuple[str, frozenset[tuple[str, str]]]

PATHS = [pytest.param("bridge", id="bridge"), pytest.param("push", id="push")]
PROTOCOLS = [pytest.param("1.0", id="1.0"), pytest.param("2.0", id="2.0")]


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    with Receiver(default=Reply()) as receiver:
        yield receiver


def key(name: str, **labels: str) -> Key:
    return name, frozenset(labels.items())


def received(receiver: Receiver) -> dict[Key, float]:
    """The last value of each series ``receiver`` was sent (stale markers aside), without job and instance."""
    values: dict[Key, float] = {}
    for series in all_series(receiver):
        for sample in series.samples:
            if not is_stale_nan(sample.value):
                values[series_key(series.labels)] = sample.value
    return values


def stale(receiver: Receiver) -> set[Key]:
    """The series ``receiver`` was sent a stale marker for."""
    return {
        series_key(series.labels)
        for series in all_series(receiver)
        if any(is_stale_nan(sample.value) for sample in series.samples)
    }


def all_series(receiver: Receiver) -> list[Any]:
    out = []
    for request in receiver.requests:
        assert request.decoded is not None, request.violations
        out += request.decoded.series
    return out


def series_key(labels: dict[str, str]) -> Key:
    rest = {k: v for k, v in labels.items() if k not in ("__name__", "job", "instance")}
    return key(labels["__name__"], **rest)


def metadata_names(receiver: Receiver) -> set[str]:
    return {m.metric_family_name for r in receiver.requests if r.decoded for m in r.decoded.metadata}


def send(path: str, registry: CollectorRegistry, **options: Any) -> BridgeStats | None:
    """Send ``registry`` once, through a bridge (flushed, then closed) or ``push_to_remote_write``."""
    options = {"job": "j", "instance": "i", "environ": {}, **options}
    if path == "push":
        push_to_remote_write(registry=registry, **options)
        return None
    options.setdefault("self_metrics", False)
    bridge = enable_remote_write(registry=registry, interval=3600, stale_on_close=False, **options)
    try:
        assert bridge.flush(timeout=10)
    finally:
        bridge.close(timeout=5)
    return bridge.stats


def test_endpoints_with_equal_rules_share_a_group() -> None:
    def groups(**options: Any) -> list[list[int]]:
        settings = resolve_settings(environ={}, **options)
        return [indices for _, indices in group_by_rules(settings.endpoints)]

    urls = ["http://a.invalid/w", "http://b.invalid/w", "http://c.invalid/w"]
    assert groups(url=urls) == [[0, 1, 2]]
    assert groups(url=urls, write_relabel_configs=DROP_REQUEST_ID) == [
        [0, 1, 2]
    ]  # compiled per endpoint, equal
    endpoints = [
        {"url": urls[0], "write_relabel_configs": DROP_REQUEST_ID},
        {"url": urls[1], "write_relabel_configs": []},  # no rules
        {"url": urls[2], "write_relabel_configs": [dict(DROP_REQUEST_ID[0])]},
    ]
    assert groups(endpoints=endpoints) == [[0, 2], [1]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("path", PATHS)
def test_drop_a_noisy_label(fault_receiver: Receiver, path: str, protocol: str) -> None:
    send(
        path, web_registry(), url=fault_receiver.url, protocol=protocol, write_relabel_configs=DROP_REQUEST_ID
    )

    got = received(fault_receiver)
    assert got[key("http_requests_total", path="/p3")] == 4.0
    assert not any("request_id" in dict(labels) for _, labels in got)
    assert key("legacy_orders_total", shop="north") in got


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("path", PATHS)
def test_keep_only_some_metrics(fault_receiver: Receiver, path: str, protocol: str) -> None:
    keep = [{"source_labels": ["__name__"], "regex": "http_requests_total", "action": "keep"}]
    send(path, web_registry(), url=fault_receiver.url, protocol=protocol, write_relabel_configs=keep)

    assert {name for name, _ in received(fault_receiver)} == {"http_requests_total"}
    if protocol == "1.0":  # and the metadata of the metrics kept, no other
        assert metadata_names(fault_receiver) == {"http_requests_total"}


@pytest.mark.parametrize("path", PATHS)
def test_rename_a_metric_and_its_metadata(fault_receiver: Receiver, path: str) -> None:
    send(path, web_registry(), url=fault_receiver.url, write_relabel_configs=RENAME_LEGACY)

    got = received(fault_receiver)
    assert got[key("app_orders_total", shop="north")] == 7.0
    assert not any(name.startswith("legacy_") for name, _ in got)
    names = metadata_names(fault_receiver)
    assert {"app_orders_total", "app_orders_created"} <= names
    assert not any(name.startswith("legacy_") for name in names)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("path", PATHS)
def test_hashmod_shards_series_between_two_endpoints(
    fault_receiver: Receiver, second_receiver: Receiver, path: str, protocol: str
) -> None:
    endpoints = [
        {"url": fault_receiver.url, "write_relabel_configs": shard_rules(0)},
        {"url": second_receiver.url, "write_relabel_configs": shard_rules(1)},
    ]
    registry = web_registry()
    send(path, registry, endpoints=endpoints, protocol=protocol)
    with Receiver(default=Reply()) as plain:
        send(path, registry, url=plain.url, protocol=protocol)
        expected = received(plain)

    first, second = received(fault_receiver), received(second_receiver)
    assert first and second  # each endpoint gets its share...
    assert first.keys() & second.keys() == set()  # ...nothing twice...
    assert {**first, **second} == expected  # ...and nothing lost, values and all
    assert not any("__tmp_shard" in dict(labels) for _, labels in first.keys() | second.keys())


def test_series_that_collide_after_relabelling_first_wins_and_the_rest_are_counted(
    fault_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    hits = Counter("hits", "Hits.", ["route", "pod"], registry=registry)
    hits.labels("/a", "pod-1").inc(1)
    hits.labels("/a", "pod-2").inc(2)  # the same series as pod-1's once pod is dropped
    hits.labels("/b", "pod-1").inc(3)
    rules = [{"regex": "pod", "action": "labeldrop"}]
    caplog.set_level(logging.WARNING, logger="prometheus_rw_bridge")

    bridge = enable_remote_write(
        fault_receiver.url, registry=registry, interval=3600, environ={}, write_relabel_configs=rules
    )
    try:
        for _ in range(3):
            assert bridge.flush(timeout=10)
    finally:
        bridge.close(timeout=5)

    got = received(fault_receiver)
    assert got[key("hits_total", route="/a")] == 1.0  # the first series yielded wins
    assert got[key("hits_total", route="/b")] == 3.0
    stats = bridge.stats
    per_collection = 2  # hits_total and hits_created of pod-2
    assert stats.dropped_by_reason == {"duplicate": per_collection * stats.collections}
    # The self-metrics of the last push count every collection before it.
    remote = {"remote_name": f"127.0.0.1:{fault_receiver.port}", "url": fault_receiver.url}
    dropped = key("prometheus_remote_storage_samples_dropped_total", reason="duplicate", **remote)
    assert got[dropped] == per_collection * (stats.collections - 1)
    warnings = [r for r in caplog.records if "hits" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "counted as 'duplicate'" in warnings[0].getMessage()


@pytest.mark.parametrize("path", PATHS)
def test_series_that_collide_after_relabelling_in_one_push(fault_receiver: Receiver, path: str) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("queue_depth", "Depth.", ["queue", "worker"], registry=registry)
    gauge.labels("mail", "w1").set(5)
    gauge.labels("mail", "w2").set(9)
    send(
        path,
        registry,
        url=fault_receiver.url,
        write_relabel_configs=[{"regex": "worker", "action": "labeldrop"}],
    )

    assert received(fault_receiver) == {key("queue_depth", queue="mail"): 5.0}


@pytest.mark.parametrize("suffix", [".yml", ".json"])
@pytest.mark.parametrize("path", PATHS)
def test_rules_from_a_file_named_in_the_environment(
    fault_receiver: Receiver, tmp_path: Path, path: str, suffix: str
) -> None:
    rules_file = tmp_path / f"relabel{suffix}"
    if suffix == ".json":
        rules_file.write_text(json.dumps({"write_relabel_configs": DROP_REQUEST_ID + RENAME_LEGACY}))
    else:
        rules_file.write_text(
            "- regex: request_id\n"
            "  action: labeldrop\n"
            "- source_labels: [__name__]\n"
            "  regex: legacy_(.*)\n"
            "  target_label: __name__\n"
            "  replacement: app_${1}\n"
        )
    environ = {
        "PROMETHEUS_REMOTE_WRITE_URL": fault_receiver.url,
        "PROMETHEUS_REMOTE_WRITE_RELABEL_CONFIG_FILE": str(rules_file),
    }
    send(path, web_registry(), environ=environ)

    got = received(fault_receiver)
    assert key("http_requests_total", path="/p0") in got
    assert key("app_orders_total", shop="north") in got
    assert not any(name.startswith("legacy_") for name, _ in got)


@pytest.mark.parametrize("path", PATHS)
def test_per_endpoint_rules_from_their_own_variables(
    fault_receiver: Receiver, second_receiver: Receiver, tmp_path: Path, path: str
) -> None:
    shared, own = tmp_path / "shared.json", tmp_path / "primary.json"
    shared.write_text(json.dumps(DROP_REQUEST_ID))
    own.write_text(json.dumps(RENAME_LEGACY))
    environ = {
        "PROMETHEUS_REMOTE_WRITE_ENDPOINTS": "primary,backup",
        "PROMETHEUS_REMOTE_WRITE_PRIMARY_URL": fault_receiver.url,
        "PROMETHEUS_REMOTE_WRITE_PRIMARY_RELABEL_CONFIG_FILE": str(own),
        "PROMETHEUS_REMOTE_WRITE_BACKUP_URL": second_receiver.url,
        "PROMETHEUS_REMOTE_WRITE_RELABEL_CONFIG_FILE": str(shared),  # what backup, setting none, uses
    }
    send(path, web_registry(), environ=environ)

    primary, backup = received(fault_receiver), received(second_receiver)
    assert key("app_orders_total", shop="north") in primary  # its own rules replace the shared ones
    assert key("http_requests_total", path="/p0", request_id="r0") in primary
    assert key("legacy_orders_total", shop="north") in backup
    assert key("http_requests_total", path="/p0") in backup


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"write_relabel_configs": [{"regex": "x", "action": "labeldrop"}, {"regex": "abc("}]},
            r"write_relabel_configs\[1\]\.regex='abc\('",
            id="regex",
        ),
        pytest.param(
            {"write_relabel_configs": [{"action": "dorp"}]},
            r"write_relabel_configs\[0\]\.action='dorp'",
            id="action",
        ),
        pytest.param(
            {
                "endpoints": [
                    {
                        "url": "http://a.invalid/w",
                        "write_relabel_configs": [{"action": "hashmod", "target_label": "s"}],
                    }
                ]
            },
            r"endpoints\[0\]\.write_relabel_configs\[0\]\.modulus=0",
            id="per-endpoint",
        ),
    ],
)
@pytest.mark.parametrize("function", [enable_remote_write, push_to_remote_write])
def test_a_bad_rule_fails_at_once_naming_its_index_and_field(
    function: Any, options: dict[str, Any], message: str
) -> None:
    if "endpoints" not in options:
        options = {"url": "http://a.invalid/w", **options}
    with pytest.raises(ConfigurationError, match=message):
        function(environ={}, registry=CollectorRegistry(), **options)


def test_a_bad_rule_in_an_endpoints_file_names_the_variable_file_and_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("- regex: request_id\n  action: labeldrop\n- regex: '[a-'\n")
    environ = {
        "PROMETHEUS_REMOTE_WRITE_ENDPOINTS": "primary",
        "PROMETHEUS_REMOTE_WRITE_PRIMARY_URL": "http://a.invalid/w",
        "PROMETHEUS_REMOTE_WRITE_PRIMARY_RELABEL_CONFIG_FILE": str(rules),
    }
    with pytest.raises(ConfigurationError) as raised:
        enable_remote_write(environ=environ, registry=CollectorRegistry())
    text = str(raised.value)
    assert "PROMETHEUS_REMOTE_WRITE_PRIMARY_RELABEL_CONFIG_FILE" in text
    assert "rules.yml" in text
    assert "write_relabel_configs[1].regex" in text


def test_stale_markers_follow_each_endpoints_rules(
    fault_receiver: Receiver, second_receiver: Receiver
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("jobs_running", "Jobs.", ["queue"], registry=registry)
    gauge.labels("mail").set(1)
    gauge.labels("video").set(2)
    keep_mail = [{"source_labels": ["queue"], "regex": "mail", "action": "keep"}]
    endpoints = [
        {"url": fault_receiver.url, "write_relabel_configs": keep_mail},
        {"url": second_receiver.url},
    ]
    bridge = enable_remote_write(
        endpoints=endpoints,
        registry=registry,
        interval=3600,
        environ={},
        job="j",
        instance="i",
        self_metrics=False,
    )
    try:
        assert bridge.flush(timeout=10)
        gauge.remove("video")
        assert bridge.flush(timeout=10)
        assert stale(fault_receiver) == set()  # never sent video, so no marker for it
        assert stale(second_receiver) == {key("jobs_running", queue="video")}
    finally:
        bridge.close(timeout=5)  # stale markers for everything each endpoint was sent
    assert stale(fault_receiver) == {key("jobs_running", queue="mail")}
    assert stale(second_receiver) == {key("jobs_running", queue="mail"), key("jobs_running", queue="video")}


def test_auto_settles_per_endpoint_and_each_group_keeps_one_protocols_state(
    fault_receiver: Receiver, second_receiver: Receiver
) -> None:
    second_receiver.script(Reply(415, "remote write 2.0 is not supported"))
    endpoints = [
        {"url": fault_receiver.url, "write_relabel_configs": RENAME_LEGACY},  # answers 2.0
        {"url": second_receiver.url, "write_relabel_configs": DROP_REQUEST_ID},  # falls back to 1.0
    ]
    bridge = enable_remote_write(
        endpoints=endpoints,
        registry=web_registry(),
        interval=3600,
        environ={},
        protocol="auto",
        self_metrics=False,
        stale_on_close=False,
    )
    try:
        for _ in range(2):
            assert bridge.flush(timeout=10)
        renaming, dropping = (maker.encoders for maker in bridge._makers)
        assert renaming["1.0"].series_kept == 0 and renaming["2.0"] is not None
        assert renaming["2.0"].series_kept > 0
        assert dropping["1.0"].series_kept > 0 and dropping["2.0"] is not None
        assert dropping["2.0"].series_kept == 0
    finally:
        bridge.close(timeout=5)
    assert {r.protocol for r in fault_receiver.requests} == {"2.0"}
    assert second_receiver.requests[-1].protocol == "1.0"
    assert key("app_orders_total", shop="north") in received(fault_receiver)
    assert key("http_requests_total", path="/p0", request_id="r0") in received(fault_receiver)
    assert key("legacy_orders_total", shop="north") in received(second_receiver)
    assert key("http_requests_total", path="/p0") in received(second_receiver)


def test_self_metrics_are_relabelled_like_every_series(
    fault_receiver: Receiver, second_receiver: Receiver
) -> None:
    rules = [
        {
            "source_labels": ["__name__"],
            "regex": "prometheus_remote_storage_(.*)",
            "target_label": "__name__",
            "replacement": "bridge_${1}",
        },
        {"target_label": "cluster", "replacement": "eu-west-1"},
    ]
    endpoints = [{"url": fault_receiver.url, "write_relabel_configs": rules}, {"url": second_receiver.url}]
    send("bridge", web_registry(), endpoints=endpoints, self_metrics=True)

    relabelled, plain = received(fault_receiver), received(second_receiver)
    sent = [labels for name, labels in relabelled if name == "bridge_samples_total"]
    assert len(sent) == 2  # one series per endpoint, as Prometheus's own sender has
    assert all(("cluster", "eu-west-1") in labels for labels in sent)
    assert not any(name.startswith("prometheus_remote_storage_") for name, _ in relabelled)
    assert any(name == "prometheus_remote_storage_samples_total" for name, _ in plain)


def test_debug_logs_each_groups_push_with_its_endpoints(
    fault_receiver: Receiver, second_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="prometheus_rw_bridge")
    endpoints = [
        {"url": fault_receiver.url, "write_relabel_configs": RENAME_LEGACY},
        {"url": second_receiver.url},
    ]
    send("bridge", web_registry(), endpoints=endpoints, debug=True)

    pushes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Remote-write push #")]
    to_first = [m for m in pushes if f" to {fault_receiver.url}," in m]
    to_second = [m for m in pushes if f" to {second_receiver.url}," in m]
    assert to_first and to_second
    assert all("app_orders_total" in m and "legacy_orders_total" not in m for m in to_first)
    assert all("legacy_orders_total" in m for m in to_second)
