"""The background pusher's logic: order, retries, outage backlog, staleness, shutdown, fork.

These tests drive :class:`RemoteWriteBridge` with a scripted in-memory transport so every
outcome (500, 400, 413, refused, hanging) is deterministic; tests against real HTTP
receivers live in ``test_pusher_http.py`` and the integration modules.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import Metric

from prometheus_rw_bridge import STALE_NAN_BITS, decode_write_request
from prometheus_rw_bridge._delivery.bridge import RemoteWriteBridge
from prometheus_rw_bridge._delivery.retry import RetryPolicy
from prometheus_rw_bridge._delivery.sender import EndpointSender
from prometheus_rw_bridge._exceptions import (
    NonRetryableReceiverError,
    RetryableReceiverError,
    TransportError,
)
from prometheus_rw_bridge._http.transport import SendResult as Result
from prometheus_rw_bridge._protocol.encode import Encoder

FAST = RetryPolicy(min_backoff=0.001, max_backoff=0.002, jitter=0.0)


class ScriptedTransport:
    """Answers from a script: each item is ``"ok"``, an exception, or ``"hang"``; then ``"ok"``."""

    url = "http://receiver.invalid/api/v1/write"
    remote_name = "scripted"
    timeout = 5.0

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.received: list[tuple[bytes, str, int]] = []  # delivered bodies, protocol, attempt
        self.attempts = 0
        self.hanging = 0  # requests waiting on ``release`` (or their timeout) right now
        self.cond = threading.Condition()
        self.release = threading.Event()
        self.closed = False

    def send(
        self, body: bytes, *, protocol: str = "1.0", attempt: int = 0, timeout: float | None = None
    ) -> Result:
        with self.cond:
            self.attempts += 1
            action = self.script.pop(0) if self.script else "ok"
            self.cond.notify_all()
        if action == "hang":
            with self.cond:
                self.hanging += 1
            try:
                self.release.wait(timeout)
            finally:
                with self.cond:
                    self.hanging -= 1
            raise TransportError("timed out")
        if isinstance(action, BaseException):
            raise action
        with self.cond:
            self.received.append((body, protocol, attempt))
            self.cond.notify_all()
        return Result(204)

    def set_script(self, *script: Any) -> None:
        with self.cond:
            self.script = list(script)

    def wait_attempts(self, n: int, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.attempts >= n, timeout), (
                f"{self.attempts} attempts, wanted {n}"
            )

    def series(self) -> list[tuple[dict[str, str], float, int]]:
        out = []
        for body, _, _ in self.received:
            for s in decode_write_request(body).series:
                for sample in s.samples:
                    out.append((s.labels, sample.value, sample.timestamp_ms))
        return out

    def close(self) -> None:
        self.closed = True


class FakeWallClock:
    """A wall clock that stands still unless moved: two flushes in one millisecond."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_bridge(
    registry: CollectorRegistry,
    transport: ScriptedTransport,
    *,
    wall: FakeWallClock | None = None,
    **sender_options: Any,
) -> RemoteWriteBridge:
    sender = EndpointSender(transport, policy=FAST, **sender_options)
    return RemoteWriteBridge(
        registry,
        [sender],
        encoder=Encoder(job="test", instance="here", track_staleness=True),
        interval=3600.0,
        wall_clock=wall or FakeWallClock(),
        start=False,
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def closing() -> Iterator[list[RemoteWriteBridge]]:
    bridges: list[RemoteWriteBridge] = []
    yield bridges
    for bridge in bridges:
        bridge.close(timeout=1.0)


def test_flush_delivers_every_sample(registry: CollectorRegistry, closing: list[RemoteWriteBridge]) -> None:
    Counter("jobs", "Jobs done.", ["kind"], registry=registry).labels("a").inc(3)
    Gauge("depth", "Queue depth.", registry=registry).set(7)
    transport = ScriptedTransport()
    bridge = make_bridge(registry, transport)
    closing.append(bridge)

    assert bridge.flush(timeout=10)

    got = {(labels["__name__"], labels.get("kind")): value for labels, value, _ in transport.series()}
    assert got[("jobs_total", "a")] == 3.0
    assert got[("depth", None)] == 7.0
    assert all(
        labels["job"] == "test" and labels["instance"] == "here" for labels, _, _ in transport.series()
    )
    assert bridge.stats.samples_sent == len(transport.series())
    assert bridge.stats.success_rate == 1.0


def test_timestamps_strictly_increase_within_one_millisecond(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge]
) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    transport = ScriptedTransport()
    bridge = make_bridge(registry, transport, wall=FakeWallClock())  # the clock never moves
    closing.append(bridge)
    for _ in range(3):
        assert bridge.flush(timeout=10)
    stamps = [ts for labels, _, ts in transport.series() if labels["__name__"] == "g"]
    assert len(stamps) == 3
    assert stamps == sorted(set(stamps))


def test_flush_without_collecting_waits_for_what_is_queued(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge]
) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    transport = ScriptedTransport("hang")
    bridge = make_bridge(registry, transport)
    closing.append(bridge)
    assert not bridge.flush(timeout=0)  # collected and queued; its request hangs
    transport.wait_attempts(1)
    assert not bridge.flush(timeout=0, collect=False)  # still in flight
    transport.release.set()  # the hanging attempt fails; the retry delivers
    assert bridge.flush(timeout=10, collect=False)
    assert bridge.stats.collections == 1  # nothing collected again
    assert [v for labels, v, _ in transport.series() if labels["__name__"] == "g"] == [1.0]


def test_500_is_retried_and_delivered(registry: CollectorRegistry, closing: list[RemoteWriteBridge]) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    transport = ScriptedTransport(RetryableReceiverError(500, "boom", "u"))
    bridge = make_bridge(registry, transport)
    closing.append(bridge)
    assert bridge.flush(timeout=10)
    assert [v for labels, v, _ in transport.series() if labels["__name__"] == "g"] == [1.0]
    assert transport.received[0][2] == 1  # delivered on the first retry
    stats = bridge.stats
    assert stats.errors == 1 and stats.samples_retried > 0 and stats.samples_dropped == 0


def test_400_is_dropped_and_never_resent(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge], caplog: pytest.LogCaptureFixture
) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    transport = ScriptedTransport(NonRetryableReceiverError(400, "out of order sample", "u"))
    bridge = make_bridge(registry, transport)
    closing.append(bridge)
    assert bridge.flush(timeout=10) is False  # delivered nothing
    assert transport.attempts == 1
    assert transport.received == []
    stats = bridge.stats
    assert stats.samples_dropped > 0 and stats.dropped_by_reason.get("http_400")
    assert "out of order sample" in caplog.text
    # The next collection goes out normally.
    assert bridge.flush(timeout=10)
    assert transport.attempts == 2


class TwiceYielded:
    """A custom collector whose family yields one series twice, beside one sent as it is."""

    def collect(self) -> Iterator[Any]:
        family = Metric("twice", "Twice.", "gauge")
        family.add_sample("twice", {"k": "a"}, 1.0)
        family.add_sample("twice", {"k": "a"}, 2.0)
        family.add_sample("twice", {"k": "b"}, 3.0)
        yield family


def test_what_the_encoder_leaves_out_is_counted_at_every_collection(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge]
) -> None:
    registry.register(TwiceYielded())
    transport = ScriptedTransport()
    bridge = make_bridge(registry, transport)
    closing.append(bridge)
    for _ in range(2):
        assert bridge.flush(timeout=10)  # never queued, so not undelivered
    sent = [(labels["k"], value) for labels, value, _ in transport.series()]
    assert sent == [("a", 1.0), ("b", 3.0)] * 2  # the first of the two is sent
    stats = bridge.stats
    assert stats.dropped_by_reason == {"duplicate": 2}  # the template's drop, at each collection
    assert stats.samples_dropped == 2 and stats.samples_failed == 0


def test_outage_backlog_arrives_once_and_in_order(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge]
) -> None:
    gauge = Gauge("g", "G.", registry=registry)
    refused = [TransportError("connection refused") for _ in range(10_000)]
    transport = ScriptedTransport(*refused)
    wall = FakeWallClock()
    bridge = make_bridge(registry, transport, wall=wall)
    closing.append(bridge)
    for i in range(5):
        gauge.set(i)
        wall.now += 15
        assert not bridge.flush(timeout=0)  # queued behind the outage
    transport.wait_attempts(3)
    transport.set_script()  # the receiver is back
    assert bridge.flush(timeout=10)
    points = [(ts, v) for labels, v, ts in transport.series() if labels["__name__"] == "g"]
    assert [v for _, v in points] == [0.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    assert [ts for ts, _ in points] == sorted({ts for ts, _ in points})


def test_queue_bound_drops_oldest_waiting_collection(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge]
) -> None:
    gauge = Gauge("g", "G.", registry=registry)
    transport = ScriptedTransport("hang")
    wall = FakeWallClock()
    bridge = make_bridge(registry, transport, wall=wall, max_pending_collections=3)
    closing.append(bridge)
    for i in range(6):
        gauge.set(i)
        wall.now += 15
        bridge.flush(timeout=0)
    transport.wait_attempts(1)
    transport.release.set()  # the hanging request times out, is retried, and the rest follow
    sender = bridge._senders[0]
    assert sender.wait_delivered(6, timeout=10)
    values = [v for labels, v, _ in transport.series() if labels["__name__"] == "g"]
    # Collection 0 was in flight (kept, then retried); 1..3 were dropped as the oldest waiting.
    assert values == [0.0, 4.0, 5.0]
    assert sender.stats().samples_dropped == {"queue_full": 3}
    assert bridge.stats.dropped_by_reason["queue_full"] > 0


def test_removed_child_gets_a_stale_marker(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge]
) -> None:
    counter = Counter("hits", "Hits.", ["path"], registry=registry)
    counter.labels("/a").inc()
    counter.labels("/b").inc()
    transport = ScriptedTransport()
    wall = FakeWallClock()
    bridge = make_bridge(registry, transport, wall=wall)
    closing.append(bridge)
    assert bridge.flush(timeout=10)
    counter.remove("/b")
    wall.now += 15
    assert bridge.flush(timeout=10)
    last = decode_write_request(transport.received[-1][0])
    stale = [s for s in last.series if s.labels.get("path") == "/b" and s.labels["__name__"] == "hits_total"]
    assert len(stale) == 1
    value = stale[0].samples[0].value
    assert math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS
    assert stale[0].samples[0].timestamp_ms == int(wall.now * 1000)


def test_close_sends_last_values_then_stale_markers_once(registry: CollectorRegistry) -> None:
    gauge = Gauge("g", "G.", registry=registry)
    gauge.set(1)
    transport = ScriptedTransport()
    bridge = make_bridge(registry, transport)
    assert bridge.flush(timeout=10)
    gauge.set(2)
    bridge.close(timeout=5)
    bridge.close(timeout=5)  # idempotent
    points = [(v, ts) for labels, v, ts in transport.series() if labels["__name__"] == "g"]
    assert [v for v, _ in points[:2]] == [1.0, 2.0]
    assert len(points) == 3 and math.isnan(points[2][0])
    assert points[0][1] < points[1][1] < points[2][1]
    assert not bridge.enabled
    assert bridge.flush(timeout=1) is False


def test_close_without_stale_markers(registry: CollectorRegistry) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    transport = ScriptedTransport()
    sender = EndpointSender(transport, policy=FAST)
    bridge = RemoteWriteBridge(
        registry,
        [sender],
        encoder=Encoder(job="t", instance="i", track_staleness=True),
        stale_on_close=False,
        start=False,
    )
    bridge.close(timeout=5)
    assert [v for _, v, _ in transport.series()] == [1.0]


def test_close_honours_its_deadline_against_a_hanging_receiver(registry: CollectorRegistry) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    transport = ScriptedTransport(*["hang"] * 100)
    transport.timeout = 3600.0  # the request in flight ends only when released
    bridge = make_bridge(registry, transport)
    bridge.flush(timeout=0)
    transport.wait_attempts(1)
    bridge.close(timeout=0.5)
    # close() returned while the receiver still holds the request: it did not wait for it.
    assert transport.hanging == 1 and transport.attempts == 1
    assert bridge.stats.dropped_by_reason.get("shutdown", 0) > 0  # the final collection, given up
    transport.release.set()


def test_a_raising_collector_does_not_stop_the_bridge(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge]
) -> None:
    class Flaky:
        broken = True

        def collect(self) -> Any:
            if self.broken:
                raise RuntimeError("collector exploded")
            yield from Gauge("flaky", "F.", registry=None).collect()

    flaky = Flaky()
    registry.register(flaky)
    Gauge("steady", "S.", registry=registry).set(1)
    transport = ScriptedTransport()
    bridge = make_bridge(registry, transport)
    closing.append(bridge)
    assert bridge.flush(timeout=10)
    assert {labels["__name__"] for labels, _, _ in transport.series()} == {"steady"}
    flaky.broken = False
    assert bridge.flush(timeout=10)
    assert "flaky" in {labels["__name__"] for labels, _, _ in transport.series()}


def test_413_is_dropped_counted_and_never_split_or_resent(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge], caplog: pytest.LogCaptureFixture
) -> None:
    counter = Counter("c", "C.", ["n"], registry=registry)
    for i in range(10):
        counter.labels(str(i)).inc(i)
    transport = ScriptedTransport(NonRetryableReceiverError(413, "request entity too large", "u"))
    bridge = make_bridge(registry, transport)
    closing.append(bridge)
    assert bridge.flush(timeout=10) is False  # its samples were dropped
    assert transport.attempts == 1 and transport.received == []  # one request, never split, never resent
    stats = bridge.stats
    assert stats.samples_failed == stats.dropped_by_reason["http_413"] > 0
    assert "max_bytes_per_send" in caplog.text and "max_samples_per_send" in caplog.text
    assert bridge.flush(timeout=10)  # the next collection goes out as usual
    assert transport.attempts == 2


def test_flush_of_an_empty_registry_returns_at_once(closing: list[RemoteWriteBridge]) -> None:
    transport = ScriptedTransport()
    bridge = make_bridge(CollectorRegistry(), transport)
    closing.append(bridge)
    assert bridge.flush(timeout=5) is True
    assert bridge.flush() is True  # no timeout: must not wait for ever
    assert transport.attempts <= 1  # at most the metadata-free empty collection: nothing to send


def test_close_honours_its_deadline_while_a_collector_is_slow(registry: CollectorRegistry) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def collect(self) -> Any:
            entered.set()
            release.wait(30)
            yield from Gauge("slow", "S.", registry=None).collect()

    registry.register(Slow())
    transport = ScriptedTransport()
    bridge = make_bridge(registry, transport)
    busy = threading.Thread(target=bridge.flush, kwargs={"timeout": 30})
    busy.start()
    assert entered.wait(10)
    try:
        assert bridge.flush(timeout=0.2) is False  # bounded by its own timeout
        bridge.close(timeout=0.5)
        assert busy.is_alive() and not release.is_set()  # returned while the collection still runs
        assert not bridge.enabled
    finally:
        release.set()
        busy.join(10)


def test_large_collections_are_split_by_max_samples(registry: CollectorRegistry) -> None:
    counter = Counter("c", "C.", ["n"], registry=registry)
    for i in range(25):
        counter.labels(str(i)).inc()
    transport = ScriptedTransport()
    sender = EndpointSender(transport, policy=FAST)
    bridge = RemoteWriteBridge(
        registry, [sender], encoder=Encoder(job="t", instance="i"), max_samples_per_send=10, start=False
    )
    try:
        assert bridge.flush(timeout=10)
    finally:
        bridge.close(timeout=1)
    counts = [len(decode_write_request(body).series) for body, _, _ in transport.received[:3]]
    assert counts == [10, 10, 10]  # 50 series (_total and _created) in requests of 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_inherits_no_running_bridge(registry: CollectorRegistry) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    transport = ScriptedTransport()
    bridge = make_bridge(registry, transport)
    try:
        assert bridge.flush(timeout=10)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: must not deadlock, must not push
            try:
                ok = (not bridge.enabled) and bridge.flush(timeout=1) is False
                bridge.close(timeout=1)
                os.write(write, b"ok" if ok else b"bad")
            finally:
                os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        assert os.read(read, 10) == b"ok"
        assert status == 0
        assert bridge.enabled
        assert bridge.flush(timeout=10)
    finally:
        bridge.close(timeout=1)


@pytest.mark.parametrize(
    "module", [pytest.param("cramjam", id="no-cramjam"), pytest.param("httpx", id="no-httpx")]
)
def test_missing_dependency_gives_a_disabled_bridge(module: str) -> None:
    code = f"""
import logging, sys
sys.modules[{module!r}] = None  # make the import fail
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
from prometheus_client import Counter, generate_latest
import prometheus_rw_bridge as prw
c = Counter("still_scraped", "x"); c.inc()
b = prw.enable_remote_write("http://127.0.0.1:9/api/v1/write", interval=1)
assert not b.enabled, b
assert b.flush(timeout=1) is False
b.close()
prw.enable_remote_write("http://127.0.0.1:9/api/v1/write")
assert b"still_scraped_total 1.0" in generate_latest()
print("DONE")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "DONE" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, proc.stderr  # said once
    assert module in warnings[0] and "pip install" in warnings[0]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(100.3, (1, 14.7), id="collection-took-0.3s"),
        pytest.param(100.0, (1, 15.0), id="instant-collection"),
        pytest.param(131.0, (3, 14.0), id="missed-ticks-are-skipped"),
        pytest.param(115.0, (2, 15.0), id="exactly-on-the-next-tick"),
    ],
)
def test_ticks_stay_on_the_interval_grid(now: float, expected: tuple[int, float]) -> None:
    from prometheus_rw_bridge._delivery.bridge import next_tick

    tick, delay = next_tick(100.0, 0, now, 15.0)
    assert (tick, round(delay, 6)) == expected


def test_no_drift_over_many_ticks() -> None:
    from prometheus_rw_bridge._delivery.bridge import next_tick

    start, now, tick = 1000.0, 1000.0, 0
    for _ in range(1000):
        now += 0.25  # every collection takes a quarter second
        tick, delay = next_tick(start, tick, now, 15.0)
        now += delay
    assert now == pytest.approx(start + 1000 * 15.0)


def test_bridge_is_a_context_manager(registry: CollectorRegistry) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    transport = ScriptedTransport()
    with make_bridge(registry, transport) as bridge:
        assert bridge.flush(timeout=10)
    assert not bridge.enabled
    assert math.isnan([v for labels, v, _ in transport.series() if labels["__name__"] == "g"][-1])


def test_unregistered_collector_gets_stale_markers(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge]
) -> None:
    gone = Gauge("gone", "G.", ["k"], registry=registry)
    gone.labels("a").set(1)
    Gauge("stays", "S.", registry=registry).set(2)
    transport = ScriptedTransport()
    wall = FakeWallClock()
    bridge = make_bridge(registry, transport, wall=wall)
    closing.append(bridge)
    assert bridge.flush(timeout=10)
    registry.unregister(gone)
    wall.now += 15
    assert bridge.flush(timeout=10)
    last = decode_write_request(transport.received[-1][0])
    by_name = {s.labels["__name__"]: s.samples[0].value for s in last.series}
    assert math.isnan(by_name["gone"]) and by_name["stays"] == 2.0


def test_rejections_are_logged_verbatim_truncated_and_rate_limited(
    registry: CollectorRegistry, closing: list[RemoteWriteBridge], caplog: pytest.LogCaptureFixture
) -> None:
    Gauge("g", "G.", registry=registry).set(1)
    long_message = "bad label: " + "x" * 2000
    transport = ScriptedTransport(*[NonRetryableReceiverError(400, long_message, "u") for _ in range(3)])
    sender = EndpointSender(transport, policy=FAST, clock=lambda: 1000.0)  # a minute never passes
    bridge = RemoteWriteBridge(registry, [sender], encoder=Encoder(job="t", instance="i"), start=False)
    closing.append(bridge)
    for _ in range(3):
        bridge.flush(timeout=10)
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "rejected with 400" in r.getMessage()]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "bad label: xxx" in message and len(message) < 1000
    assert sender.stats().samples_dropped["http_400"] == 3
