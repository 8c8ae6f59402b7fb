"""``enable_remote_write()`` over real HTTP: the fault-injecting receiver and real servers.

Scenarios from the pusher issue: (a) receiver down for several intervals then up, (b) first
answer 500, (c) answer 400, (d) 429 with ``Retry-After: 2``, (f) ``close()`` against a
receiver that never answers, (h) thousands of series with random delays; and the same
registry pushed to real Prometheus and VictoriaMetrics, read back through their query APIs.
"""

from __future__ import annotations

import logging
import math
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric
from servers import Server, wait_until

import prometheus_rw_bridge as prw
from prometheus_rw_bridge import RemoteWriteBridge, enable_remote_write, push_to_remote_write
from prometheus_rw_bridge.testing import Receiver, Reply


@pytest.fixture
def bridges() -> Iterator[list[RemoteWriteBridge]]:
    made: list[RemoteWriteBridge] = []
    yield made
    for bridge in made:
        bridge.close(timeout=2)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as fault_receiver:
        yield fault_receiver


def start(
    bridges: list[RemoteWriteBridge], url: str, registry: CollectorRegistry, **options: Any
) -> RemoteWriteBridge:
    options.setdefault("interval", 3600)  # tests drive collections with flush()
    options.setdefault("job", "pusher-test")
    options.setdefault("instance", "here")
    options.setdefault("self_metrics", False)
    bridge = enable_remote_write(url, registry=registry, **options)
    bridges.append(bridge)
    return bridge


def points(receiver: Receiver, name: str) -> list[tuple[int, float]]:
    """Every (timestamp, value) received for series ``name``, in arrival order."""
    out: list[tuple[int, float]] = []
    for request in receiver.requests:
        if request.decoded is None or request.status is None or request.status >= 300:
            continue
        for series in request.decoded.series:
            if series.name == name:
                out.extend((s.timestamp_ms, s.value) for s in series.samples)
    return out


def test_enable_returns_at_once_and_pushes(receiver: Receiver, bridges: list[RemoteWriteBridge]) -> None:
    registry = CollectorRegistry()
    Gauge("ready", "Ready.", registry=registry).set(1)
    bridge = start(bridges, receiver.url, registry)
    assert bridge.enabled
    assert bridge.flush(timeout=10)
    request = receiver.requests[-1]
    assert request.header("Content-Encoding") == "snappy"
    assert request.header("Content-Type") == "application/x-protobuf"
    assert request.header("X-Prometheus-Remote-Write-Version") == "0.1.0"
    assert (request.header("User-Agent") or "").startswith("prometheus-rw-bridge/")
    assert points(receiver, "ready")[-1][1] == 1.0


def test_same_registry_and_url_gives_the_same_bridge(
    receiver: Receiver, bridges: list[RemoteWriteBridge]
) -> None:
    registry = CollectorRegistry()
    first = start(bridges, receiver.url, registry)
    again = start(bridges, receiver.url, registry)
    assert again is first
    other = start(bridges, receiver.url, CollectorRegistry())
    assert other is not first


def test_a_second_call_with_other_options_says_they_are_ignored(
    receiver: Receiver, bridges: list[RemoteWriteBridge], caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    first = start(bridges, receiver.url, registry, max_shards=2)
    with caplog.at_level(logging.WARNING, logger="prometheus_rw_bridge"):
        assert start(bridges, receiver.url, registry, max_shards=2) is first  # the same options
        assert not caplog.records
        assert start(bridges, receiver.url, registry, max_shards=4) is first
        assert start(bridges, receiver.url, registry, max_shards=8) is first
    (warning,) = caplog.records  # once per bridge
    assert "already running" in warning.getMessage() and "ignored" in warning.getMessage()
    assert receiver.url in warning.getMessage()


def test_receiver_down_then_up_loses_nothing(receiver: Receiver, bridges: list[RemoteWriteBridge]) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("level", "Level.", registry=registry)
    bridge = start(bridges, receiver.url, registry)
    assert bridge.flush(timeout=10)
    receiver.stop()  # connections refused from now on
    for i in range(5):
        gauge.set(i)
        assert bridge.flush(timeout=0) is False
    assert bridge.stats.samples_pending > 0
    receiver.start()  # same port
    gauge.set(99)
    assert bridge.flush(timeout=30)
    got = points(receiver, "level")
    stamps = [ts for ts, _ in got]
    assert stamps == sorted(set(stamps)), "each timestamp once, in order"
    assert [v for _, v in got][-6:] == [0.0, 1.0, 2.0, 3.0, 4.0, 99.0]
    assert bridge.stats.samples_dropped == 0


def test_first_answer_500_is_delivered_later(receiver: Receiver, bridges: list[RemoteWriteBridge]) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(5)
    receiver.script(Reply(500, "try later"))
    bridge = start(bridges, receiver.url, registry)
    assert bridge.flush(timeout=10)
    first, second = receiver.requests[:2]
    assert first.status == 500 and second.status == 204
    assert first.body == second.body
    assert second.header("Retry-Attempt") == "1"
    assert bridge.stats.errors == 1


def test_answer_400_is_never_resent(
    receiver: Receiver, bridges: list[RemoteWriteBridge], caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(5)
    receiver.script(Reply(400, "out of order sample"))
    bridge = start(bridges, receiver.url, registry)
    with caplog.at_level(logging.ERROR):
        bridge.flush(timeout=10)
        bridge.flush(timeout=10)
    requests = receiver.requests
    assert requests[0].status == 400
    assert requests[0].body not in [r.body for r in requests[1:]]  # never resent
    assert len(requests) == bridge.stats.collections  # one request per collection, no retries
    assert "out of order sample" in caplog.text
    assert bridge.stats.dropped_by_reason.get("http_400", 0) > 0


def test_429_retry_after_is_honoured(receiver: Receiver, bridges: list[RemoteWriteBridge]) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(5)
    receiver.script(Reply(429, "slow down", {"Retry-After": "2"}))
    bridge = start(bridges, receiver.url, registry)
    assert bridge.flush(timeout=20)
    first, second = receiver.requests[:2]
    assert second.arrived - first.arrived >= 2.0


def test_close_returns_within_its_deadline_when_the_receiver_hangs(bridges: list[RemoteWriteBridge]) -> None:
    with Receiver(default=Reply(hang=True)) as hanging:
        registry = CollectorRegistry()
        Gauge("g", "G.", registry=registry).set(1)
        bridge = enable_remote_write(
            hanging.url,
            registry=registry,
            interval=3600,
            timeout=30,
            self_metrics=False,
            job="j",
            instance="i",
        )
        hanging.wait_for_requests(1)
        bridge.close(timeout=1.0)  # the request in flight has 30 s; only the close deadline ends this
        in_flight = bridge.endpoint_stats()[0]
        hanging.release()
    # close() returned while the first request was still unanswered: not failed, not delivered.
    assert (in_flight.attempts, in_flight.errors, in_flight.successes) == (1, 0, 0)
    assert bridge.stats.dropped_by_reason.get("shutdown", 0) > 0


class Work:
    """A receiver's ``on_request``: hold each request until ``gather`` are held at once, then work
    ``seconds`` on it before it is answered; count the requests held at once.

    One lane's requests never overlap in the count: its next one is sent only once this one is
    answered.  So ``most_in_flight`` shows how many lanes the sender really keeps busy, whatever
    the receiver's own decoding costs (on two busy cores a late request could otherwise arrive
    after the first one was answered).  A request that cannot gather company (the tail of a
    push) goes on once none has arrived for ``idle`` seconds.
    """

    def __init__(self, seconds: float, *, gather: int = 1, idle: float = 2.0) -> None:
        self.seconds, self.gather, self.idle = seconds, gather, idle
        self.changed = threading.Condition()
        self.in_flight = self.most_in_flight = 0
        self.generation = 0  # bumped each time ``gather`` requests are held: they all go on
        self.last_arrival = time.monotonic()

    def __call__(self, request: Any) -> None:
        with self.changed:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.last_arrival = time.monotonic()
            generation = self.generation
            if self.in_flight >= self.gather:
                self.generation += 1
            self.changed.notify_all()
            while generation == self.generation:
                left = self.last_arrival + self.idle - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
        threading.Event().wait(self.seconds)  # a receiver that takes its time (no event ends it)
        with self.changed:
            self.in_flight -= 1


def test_timestamps_strictly_increase_per_series_under_random_delays(
    bridges: list[RemoteWriteBridge],
) -> None:
    """Several requests of a collection in flight at once, retries among them: order still holds."""
    rng = random.Random(7)
    replies = [Reply(delay=rng.choice([0.0, 0.0, 0.01, 0.03, 0.1])) for _ in range(200)]
    replies[3] = Reply(503)
    replies[9] = Reply(500)
    work = Work(0.05, gather=2, idle=0.5)
    with Receiver(replies, on_request=work) as receiver:
        registry = CollectorRegistry()
        counter = Counter("ops", "Ops.", ["shard"], registry=registry)
        bridge = start(bridges, receiver.url, registry, max_samples_per_send=500, max_shards=8)
        for round_ in range(6):
            for shard in range(1500):
                counter.labels(str(shard)).inc(rng.random())
            assert bridge.flush(timeout=0 if round_ % 2 else 30) in (True, False)
        assert bridge.flush(timeout=60)
        last: dict[tuple[tuple[str, str], ...], int] = {}
        seen = 0
        for request in receiver.requests:
            if request.status != 204 or request.decoded is None:
                continue
            for series in request.decoded.series:
                key = tuple(sorted(series.labels.items()))
                for sample in series.samples:
                    assert sample.timestamp_ms > last.get(key, -1), f"{key} went back in time"
                    last[key] = sample.timestamp_ms
                    seen += 1
        assert len([k for k in last if dict(k)["__name__"] == "ops_total"]) == 1500
        assert seen >= 1500 * 2 * 7
        assert work.most_in_flight > 1  # the requests of a collection did go out side by side
        assert bridge.stats.samples_dropped == 0


@pytest.mark.parametrize("shards", [1, 8])
def test_a_50k_sample_push_to_a_receiver_answering_in_200ms_keeps_max_shards_requests_in_flight(
    bridges: list[RemoteWriteBridge], shards: int
) -> None:
    """One lane waits 25 x 200 ms (5 s) for 25 requests; eight lanes wait 4 x 200 ms.

    Proven by what the receiver sees (requests held at once), not by a clock; the elapsed time
    is printed for information (with eight shards it includes the ``idle`` wait of the push's
    last request, which has no company).
    """
    work = Work(0.2, gather=shards)
    with Receiver(on_request=work) as receiver:
        registry = CollectorRegistry()
        gauge = Gauge("wide", "W.", ["n"], registry=registry)
        for n in range(50_000):
            gauge.labels(str(n)).set(n)
        bridge = start(
            bridges, receiver.url, registry, max_shards=shards, timeout=60, max_samples_per_send=2000
        )
        receiver.wait_for_requests(25, timeout=120)  # the start-up collection: 25 requests
        started = time.monotonic()
        assert bridge.flush(timeout=120)
        print(f"\none 50 k-sample push, {shards} shard(s): {time.monotonic() - started:.2f} s")
        wide = [r for r in receiver.requests if r.decoded and r.decoded.series[0].name == "wide"]
        assert len(wide) == 2 * 25  # two collections, 2,000 samples a request, none resent
        assert sum(len(r.decoded.series) for r in wide if r.decoded) == 2 * 50_000
        assert work.most_in_flight == shards
        assert bridge.stats.samples_dropped == 0


@pytest.mark.parametrize(
    ("protocol", "limit"),
    [
        pytest.param("1.0", 8 * 1024, id="1.0"),
        # A 2.0 request carries the symbol table its series refer to (here up to 39 KB compressed).
        pytest.param("2.0", 48 * 1024, id="2.0"),
    ],
)
def test_no_body_on_the_wire_is_larger_than_max_bytes_per_send(
    receiver: Receiver, bridges: list[RemoteWriteBridge], protocol: str, limit: int
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("labelled", "L.", ["path", "n"], registry=registry)
    for n in range(3000):
        gauge.labels(f"/api/v1/customers/{n * 7919}/orders", str(n)).set(n)
    bridge = start(bridges, receiver.url, registry, max_bytes_per_send=limit, protocol=protocol)
    assert bridge.flush(timeout=30)
    assert max(len(r.body) for r in receiver.requests) <= limit
    assert len(receiver.requests) > 2 * 1  # cut finer than max_samples_per_send (10,000) alone would
    assert bridge.stats.samples_dropped == 0 and bridge.stats.samples_sent == 2 * 3000
    assert all(r.accepted for r in receiver.requests)


def test_tenant_goes_in_the_tenant_header(receiver: Receiver, bridges: list[RemoteWriteBridge]) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    bridge = start(bridges, receiver.url, registry, tenant="team-a", tenant_header="THANOS-TENANT")
    assert bridge.flush(timeout=10)
    request = receiver.requests[-1]
    assert request.header("THANOS-TENANT") == "team-a"
    assert request.header("X-Scope-OrgID") is None


def test_tenant_header_defaults_to_x_scope_orgid_and_comes_from_the_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    push_to_remote_write(receiver.url, registry=registry, tenant="team-a")
    assert receiver.requests[-1].header("X-Scope-OrgID") == "team-a"
    monkeypatch.setenv("PROMETHEUS_REMOTE_WRITE_TENANT_HEADER", "THANOS-TENANT")
    push_to_remote_write(receiver.url, registry=registry, tenant="team-b")
    assert receiver.requests[-1].header("THANOS-TENANT") == "team-b"


def test_a_failed_cron_push_is_kept_and_delivered_first_by_the_next(
    receiver: Receiver, tmp_path: Any
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("cron_value", "C.", registry=registry)
    receiver.stop()  # the receiver is down for the first run
    gauge.set(1)
    with pytest.raises(prw.TransportError):
        push_to_remote_write(receiver.url, registry=registry, spool_dir=str(tmp_path), timeout=1)
    receiver.start()
    gauge.set(2)
    push_to_remote_write(receiver.url, registry=registry, spool_dir=str(tmp_path), timeout=10)
    assert [v for _, v in points(receiver, "cron_value")] == [1.0, 2.0]  # the kept push first, once
    stamps = [ts for ts, _ in points(receiver, "cron_value")]
    assert stamps == sorted(stamps)
    push_to_remote_write(receiver.url, registry=registry, spool_dir=str(tmp_path), timeout=10)
    assert [v for _, v in points(receiver, "cron_value")] == [1.0, 2.0, 2.0]  # nothing sent twice


def test_each_endpoint_gets_a_spool_directory_of_its_own(
    tmp_path: Any, bridges: list[RemoteWriteBridge]
) -> None:
    with Receiver() as first, Receiver() as second:
        registry = CollectorRegistry()
        Gauge("both_spooled", "B.", registry=registry).set(1)
        bridge = start(bridges, [first.url, second.url], registry, spool_dir=str(tmp_path))
        assert bridge.flush(timeout=30)
        assert points(first, "both_spooled") and points(second, "both_spooled")
        directories = sorted(p.name for p in tmp_path.iterdir())
        assert len(directories) == 2 and all(name.startswith("127.0.0.1_") for name in directories)


def test_a_cron_push_to_a_1_0_receiver_with_auto_and_a_spool_hands_over_the_1_0_copies(
    receiver: Receiver, tmp_path: Any
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("cron_auto", "C.", registry=registry)
    receiver.stop()
    gauge.set(1)
    with pytest.raises(prw.TransportError):
        push_to_remote_write(
            receiver.url, registry=registry, spool_dir=str(tmp_path), protocol="auto", timeout=1
        )
    receiver.start()
    receiver.script(Reply(415, "1.0 only"))
    gauge.set(2)
    push_to_remote_write(
        receiver.url, registry=registry, spool_dir=str(tmp_path), protocol="auto", timeout=10
    )
    assert [v for _, v in points(receiver, "cron_auto")] == [1.0, 2.0]
    # The kept push probes 2.0 and falls back; this push's 1.0 copies then go at once.
    assert [(r.protocol, r.status) for r in receiver.requests] == [("2.0", 415), ("1.0", 204), ("1.0", 204)]


def test_a_cron_push_while_another_holds_the_spool_raises_spool_locked(
    receiver: Receiver, tmp_path: Any
) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    bridge = enable_remote_write(receiver.url, registry=registry, interval=3600, spool_dir=str(tmp_path))
    try:
        with pytest.raises(prw.SpoolLockedError, match=str(tmp_path)):
            push_to_remote_write(receiver.url, registry=registry, spool_dir=str(tmp_path))
    finally:
        bridge.close(timeout=5)


def test_self_metrics_are_pushed_with_prometheus_names(
    receiver: Receiver, bridges: list[RemoteWriteBridge]
) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    bridge = start(
        bridges, "http://user:hunter2@" + receiver.url.split("://", 1)[1], registry, self_metrics=True
    )
    assert bridge.flush(timeout=10)
    assert bridge.flush(timeout=10)
    names = {s.name for r in receiver.requests if r.decoded for s in r.decoded.series}
    for expected in (
        "prometheus_remote_storage_samples_total",
        "prometheus_remote_storage_samples_failed_total",
        "prometheus_remote_storage_samples_retried_total",
        "prometheus_remote_storage_bytes_total",
        "prometheus_remote_storage_sent_batch_duration_seconds_bucket",
        "prometheus_remote_storage_samples_pending",
        "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
    ):
        assert expected in names
    urls = {
        s.labels.get("url")
        for r in receiver.requests
        if r.decoded
        for s in r.decoded.series
        if "url" in s.labels
    }
    assert urls == {receiver.url}  # credentials stripped
    assert all("hunter2" not in str(r.decoded) for r in receiver.requests)
    assert "hunter2" not in repr(bridge) and "hunter2" not in str(bridge.stats)


def test_debug_mode_logs_each_push_as_text(
    receiver: Receiver, bridges: list[RemoteWriteBridge], caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    Gauge("debugged", "D.", registry=registry).set(3)
    bridge = start(bridges, receiver.url, registry, debug=True)
    with caplog.at_level(logging.INFO, logger="prometheus_rw_bridge"):
        assert bridge.flush(timeout=10)
    assert 'debugged{instance="here",job="pusher-test"} 3.0' in caplog.text
    assert "push #" in caplog.text


def test_no_url_is_a_quiet_no_op(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("PROMETHEUS_REMOTE_WRITE_URL", raising=False)
    monkeypatch.delenv("PROMETHEUS_REMOTE_WRITE_ENDPOINTS", raising=False)
    with caplog.at_level(logging.INFO):
        bridge = enable_remote_write(registry=CollectorRegistry())
    assert not bridge.enabled
    assert bridge.flush(timeout=1) is False
    bridge.close()
    assert bridge.stats.attempts == 0


def test_push_to_remote_write_raises_with_the_receivers_message(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    receiver.script(Reply(400, "label name is invalid"))
    with pytest.raises(prw.NonRetryableReceiverError) as info:
        push_to_remote_write(receiver.url, registry=registry, job="cron", instance="x", timeout=5)
    assert info.value.status_code == 400
    assert "label name is invalid" in str(info.value)
    assert "400" in str(info.value)


def test_push_to_remote_write_retries_within_its_timeout(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    receiver.script(Reply(503), Reply(503))
    push_to_remote_write(receiver.url, registry=registry, job="cron", instance="x", timeout=10)
    assert [r.status for r in receiver.requests] == [503, 503, 204]


def test_push_to_remote_write_gives_up_at_its_timeout() -> None:
    with Receiver(default=Reply(503, "overloaded")) as receiver:
        registry = CollectorRegistry()
        Gauge("g", "G.", registry=registry).set(1)
        with pytest.raises(prw.RetryableReceiverError) as info:
            push_to_remote_write(receiver.url, registry=registry, timeout=1.0)
        assert "503" in str(info.value) and "overloaded" in str(info.value)
        attempts = [r.header("Retry-Attempt") for r in receiver.requests]
        assert len(attempts) > 1 and attempts == [None, *map(str, range(1, len(attempts)))]


def _app_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("orders", "Orders.", ["shop"], registry=registry).labels("north").inc(4)
    Gauge("temperature_celsius", "T.", registry=registry).set(21.5)
    hist = Histogram("latency_seconds", "L.", registry=registry, buckets=(0.1, 1.0))
    hist.observe(0.05)
    hist.observe(0.5)
    return registry


@pytest.mark.integration
@pytest.mark.parametrize("server_name", ["prometheus_server", "victoriametrics_server"])
def test_pushes_arrive_in_real_servers(
    server_name: str, request: pytest.FixtureRequest, bridges: list[RemoteWriteBridge], unique_job: str
) -> None:
    server: Server = request.getfixturevalue(server_name)
    registry = _app_registry()
    bridge = start(bridges, server.write_url, registry, job=unique_job)
    assert bridge.flush(timeout=30)
    server.flush()

    def everything_queryable() -> dict[frozenset[tuple[str, str]], float] | None:
        got = server.query_vector(f'{{job="{unique_job}"}}')
        return got if len(got) >= 8 else None  # VictoriaMetrics indexes new series shortly after

    got = wait_until(everything_queryable, timeout=30, message="the pushed series")
    by_name = {dict(labels)["__name__"]: value for labels, value in got.items() if "le" not in dict(labels)}
    assert by_name["orders_total"] == 4.0
    assert by_name["temperature_celsius"] == 21.5
    assert by_name["latency_seconds_count"] == 2.0
    assert math.isclose(by_name["latency_seconds_sum"], 0.55)


@pytest.mark.integration
def test_outage_leaves_no_gap_in_prometheus(server_factory: Any, bridges: list[RemoteWriteBridge]) -> None:
    """A Prometheus down for several collections gets every sample once it is back."""
    server = server_factory("prometheus")
    registry = CollectorRegistry()
    gauge = Gauge("outage_probe", "P.", registry=registry)
    bridge = start(bridges, server.write_url, registry, job="outage")
    gauge.set(0)
    assert bridge.flush(timeout=30)
    server.stop()  # the port now refuses connections
    for i in range(1, 5):
        gauge.set(i)
        bridge.flush(timeout=0)
    server.restart()  # same port, same data directory
    assert bridge.flush(timeout=60)
    result = server.query('outage_probe{job="outage"}[10m]')
    values = [float(v) for _, v in result[0]["values"]]
    # One value per collection (the bridge's first collection at start included), none missing.
    assert len(values) == bridge.stats.collections
    assert values[-5:] == [1.0, 2.0, 3.0, 4.0, 4.0] and set(values[:-5]) == {0.0}


def test_interpreter_exit_is_bounded_by_the_close_deadline() -> None:
    """A receiver that accepts and never answers delays exit by at most ``close()``'s deadline."""
    with Receiver(default=Reply(hang=True)) as hanging:
        code = f"""
from prometheus_client import Gauge
import prometheus_rw_bridge as prw
Gauge("g", "G.").set(1)
bridge = prw.enable_remote_write({hanging.url!r}, interval=3600, timeout=3600)
print("started", flush=True)
"""
        # The request in flight may take an hour: only close()'s deadline (5 s) can end the
        # process before subprocess.run gives up on it.
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        hanging.release()
    assert proc.returncode == 0, proc.stderr
    assert "started" in proc.stdout


def test_without_protobuf_the_encoder_still_pushes(receiver: Receiver) -> None:
    """The encoder writes protobuf by hand, so a missing protobuf runtime costs only decoding."""
    code = f"""
import sys
sys.modules["google.protobuf"] = None
sys.modules["google"] = None
from prometheus_client import CollectorRegistry, Gauge
import prometheus_rw_bridge as prw
registry = CollectorRegistry()
Gauge("no_protobuf", "x", registry=registry).set(42)
bridge = prw.enable_remote_write({receiver.url!r}, registry=registry, interval=3600, job="j", instance="i")
assert bridge.enabled
assert bridge.flush(timeout=10)
bridge.close()
try:
    prw.decode_write_request(prw.generate_write_request(registry))
except prw.MissingDependencyError as exc:
    print("DECODE:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "DECODE: protobuf is required" in proc.stdout
    assert (points(receiver, "no_protobuf") or [(0, 0.0)])[0][1] == 42.0


@pytest.mark.integration
def test_auto_protocol_falls_back_and_stores_in_prometheus_2_42(
    prometheus_server: Server, bridges: list[RemoteWriteBridge], unique_job: str
) -> None:
    """Prometheus 2.42 answers 204 to a 2.0 body and stores nothing: auto must resend as 1.0."""
    registry = _app_registry()
    bridge = start(bridges, prometheus_server.write_url, registry, job=unique_job, protocol="auto")
    assert bridge.flush(timeout=30)
    got = wait_until(
        lambda: prometheus_server.query_vector(f'orders_total{{job="{unique_job}"}}'),
        timeout=30,
        message="orders_total stored after the fallback",
    )
    assert list(got.values()) == [4.0]
    assert bridge.endpoint_stats()[0].protocol == "1.0"


def test_auto_protocol_stays_on_2_0_with_a_2_0_receiver(
    receiver: Receiver, bridges: list[RemoteWriteBridge]
) -> None:
    registry = _app_registry()
    bridge = start(bridges, receiver.url, registry, protocol="auto")
    assert bridge.flush(timeout=10)
    assert bridge.flush(timeout=10)
    protocols = [r.protocol for r in receiver.requests]
    assert set(protocols) == {"2.0"}
    assert receiver.requests[-1].header("X-Prometheus-Remote-Write-Version") == "2.0.0"
    decoded = receiver.requests[-1].decoded
    assert decoded is not None
    orders = [s for s in decoded.series if s.name == "orders_total"]
    assert orders and orders[0].samples[0].start_timestamp_ms > 0  # from orders_created
    assert not [s for s in decoded.series if s.name == "orders_created"]


def test_auto_protocol_resends_as_1_0_after_415(receiver: Receiver, bridges: list[RemoteWriteBridge]) -> None:
    registry = _app_registry()
    receiver.script(Reply(415, "unsupported content type"))
    bridge = start(bridges, receiver.url, registry, protocol="auto")
    assert bridge.flush(timeout=10)
    first, second = receiver.requests[:2]
    assert (first.protocol, first.status) == ("2.0", 415)
    assert (second.protocol, second.status) == ("1.0", 204)
    assert second.decoded is not None
    assert {s.name for s in second.decoded.series} >= {"orders_total", "temperature_celsius"}
    assert bridge.stats.samples_dropped == 0


def test_push_to_remote_write_takes_url_and_timeout_from_the_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_REMOTE_WRITE_URL", receiver.url)
    monkeypatch.setenv("PROMETHEUS_REMOTE_WRITE_TIMEOUT", "1.5")
    monkeypatch.setenv("PROMETHEUS_REMOTE_WRITE_JOB", "from-env")
    registry = CollectorRegistry()
    Gauge("env_pushed", "E.", registry=registry).set(3)
    receiver.script(Reply(hang=True))
    with pytest.raises(prw.TransportError) as info:
        push_to_remote_write(registry=registry)  # the hanging receiver uses up the 1.5 s
    match = re.search(r"no response within ([0-9.]+)s", str(info.value))
    assert match is not None and 1.0 < float(match.group(1)) <= 1.5, info.value  # not the default 30 s
    receiver.release()
    push_to_remote_write(registry=registry)
    decoded = receiver.requests[-1].decoded
    assert decoded is not None
    assert [s.labels["job"] for s in decoded.series if s.name == "env_pushed"] == ["from-env"]


def test_push_to_remote_write_pushes_several_endpoints_in_parallel() -> None:
    with Receiver(default=Reply(hang=True)) as hanging, Receiver() as healthy:
        registry = CollectorRegistry()
        Gauge("fan_out", "F.", registry=registry).set(1)
        with pytest.raises(prw.TransportError):
            push_to_remote_write([hanging.url, healthy.url], registry=registry, timeout=1.0)
        hanging.release()
        assert points(healthy, "fan_out") and points(healthy, "fan_out")[0][1] == 1.0


def test_push_to_remote_write_auto_falls_back_after_415(receiver: Receiver) -> None:
    registry = _app_registry()
    receiver.script(Reply(415, "unsupported"))
    push_to_remote_write(receiver.url, registry=registry, protocol="auto", job="j", instance="i")
    assert [(r.protocol, r.status) for r in receiver.requests] == [("2.0", 415), ("1.0", 204)]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_can_enable_again_without_duplicate_series(receiver: Receiver) -> None:
    import os

    registry = CollectorRegistry()
    Gauge("forked", "F.", registry=registry).set(1)
    parent = enable_remote_write(receiver.url, registry=registry, interval=3600, job="j", instance="i")
    try:
        assert parent.flush(timeout=10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child = enable_remote_write(
                    receiver.url, registry=registry, interval=3600, job="j", instance="c"
                )
                code = 0 if child is not parent and child.flush(timeout=10) else 2
                child.close(timeout=5)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        for request in receiver.requests:
            if request.decoded is None:
                continue
            keys = [tuple(sorted(s.labels.items())) for s in request.decoded.series]
            assert len(keys) == len(set(keys)), "a series sent twice in one request"
        child_series = {
            s.name
            for r in receiver.requests
            if r.decoded
            for s in r.decoded.series
            if s.labels.get("instance") == "c"
        }
        assert "forked" in child_series
        assert "prometheus_remote_storage_samples_total" in child_series
    finally:
        parent.close(timeout=2)


class EmptyNamed:
    """A custom collector yielding, next to a good sample, one whose name is ""."""

    def __init__(self, family: str) -> None:
        self.family = family

    def collect(self) -> Iterator[Any]:
        family = Metric(self.family, "A custom family.", "gauge")
        family.add_sample(self.family, {"k": "kept"}, 1.0)
        family.add_sample("", {"k": "lost"}, 2.0)
        yield family


@pytest.mark.parametrize("protocol", ["1.0", "2.0"])
def test_a_sample_with_an_empty_name_is_dropped_counted_and_warned_once(
    bridges: list[RemoteWriteBridge], protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    registry.register(EmptyNamed("custom_empty"))
    with Receiver() as receiver:
        bridge = start(bridges, receiver.write_url, registry, protocol=protocol, self_metrics=True)
        assert bridge.flush(timeout=30)  # the dropped series is not "undelivered"
        assert bridge.flush(timeout=30)
        # Counted at each collection: the second flush pushed what the first one counted.
        dropped = receiver.get("prometheus_remote_storage_samples_dropped_total", reason="empty_metric_name")
        assert dropped is not None and dropped.value >= 1
        bridge.close(timeout=10)
        assert receiver.violations == []  # no empty __name__ (nor any other rule broken)
        assert all(series.name for series in receiver.series())
        assert receiver.get("custom_empty", k="kept") is not None
    stats = bridge.stats
    assert stats.dropped_by_reason == {"empty_metric_name": stats.collections}
    assert stats.samples_dropped == stats.collections >= 3
    assert caplog.text.count("yields a sample with an empty name") == 1


def test_one_shot_pushes_drop_an_empty_name_and_warn_once_per_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    registry.register(EmptyNamed("one_shot_empty"))
    caplog.set_level(logging.DEBUG, logger="prometheus_rw_bridge._api")
    with Receiver() as receiver:
        for _ in range(2):
            push_to_remote_write(receiver.write_url, registry=registry, job="j", instance="i")
        assert receiver.violations == []
        assert receiver.get("one_shot_empty", k="kept") is not None
    assert caplog.text.count("yields a sample with an empty name") == 1
    assert caplog.text.count("unsendable, by reason: {'empty_metric_name': 1}") == 2


def test_a_hanging_endpoint_never_delays_another(bridges: list[RemoteWriteBridge]) -> None:
    with Receiver(default=Reply(hang=True)) as hanging, Receiver() as healthy:
        registry = CollectorRegistry()
        gauge = Gauge("both", "B.", registry=registry)
        bridge = start(bridges, [hanging.url, healthy.url], registry, timeout=60)
        # flush(timeout=0) skips its collection while another holds the collect lock, so let
        # the start-up collection finish (it has once the healthy endpoint received it).
        healthy.wait_for_requests(1)
        for value in range(3):
            gauge.set(value)
            bridge.flush(timeout=0)
        healthy.wait_for_requests(4)  # the start-up collection and the three flushes
        values = [v for _, v in points(healthy, "both")]
        assert len(values) == 4 and values == sorted(values) and values[-1] == 2.0
        # The hanging endpoint's sender runs on its own thread: its first request may not have
        # arrived yet (or may have to be retried) when the healthy one has had all four.
        hanging.wait_for_requests(1)
        assert len(hanging.requests) == 1  # stuck on its first request
        per_endpoint = {s.url: s for s in bridge.endpoint_stats()}
        assert per_endpoint[healthy.url].samples_sent > 0
        assert per_endpoint[hanging.url].pending_collections == 4
        bridge.close(timeout=0.5)
        hanging.release()
