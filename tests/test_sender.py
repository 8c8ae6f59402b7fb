"""One endpoint's sender: lanes and order, sample_age_limit, max_bytes_per_send, and the disk spool.

A scripted in-memory transport answers each request as the test says and keeps a log of
events (a request started, a request ended), so order and concurrency are read from states,
never from timing.  Collections are built by hand: parts whose bodies are decodable 1.0 (or 2.0)
requests of a few series.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from prometheus_rw_bridge import decode_write_request, enable_remote_write
from prometheus_rw_bridge._delivery.collection import Collection, Part
from prometheus_rw_bridge._delivery.negotiate import Negotiator
from prometheus_rw_bridge._delivery.retry import RetryPolicy
from prometheus_rw_bridge._delivery.selfmetrics import SelfMetricsCollector
from prometheus_rw_bridge._delivery.sender import EndpointSender
from prometheus_rw_bridge._delivery.spool import Spool
from prometheus_rw_bridge._exceptions import (
    NonRetryableReceiverError,
    RetryableReceiverError,
    SpoolLockedError,
    TransportError,
)
from prometheus_rw_bridge._http.transport import SendResult as Result
from prometheus_rw_bridge._protocol import snappy
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2

FAST = RetryPolicy(min_backoff=0.001, max_backoff=0.002, jitter=0.0)
START = 1_700_000_000.0


Answer = Callable[[bytes, str], Any]  # returns a Result or raises; may block


@dataclass
class Transport:
    """Answers every request with ``answer(body, protocol)``; logs ("start"|"end", name, protocol)."""

    answer: Answer = lambda body, protocol: Result(204)
    url: str = "http://receiver.invalid/api/v1/write"
    remote_name: str = "scripted"
    timeout: float = 30.0
    events: list[tuple[str, str, str]] = field(default_factory=list)
    delivered: list[bytes] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    in_flight: int = 0
    most_in_flight: int = 0
    closed: bool = False

    def send(
        self, body: bytes, *, protocol: str = "1.0", attempt: int = 0, timeout: float | None = None
    ) -> Any:
        name = name_of(body, protocol)
        with self.cond:
            self.events.append(("start", name, protocol))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.cond.notify_all()
        try:
            result = self.answer(body, protocol)
        finally:
            with self.cond:
                self.in_flight -= 1
                self.events.append(("end", name, protocol))
                self.cond.notify_all()
        with self.cond:
            self.delivered.append(body)
            self.cond.notify_all()
        return result

    def close(self) -> None:
        self.closed = True

    def wait(self, condition: Callable[[], bool]) -> None:
        with self.cond:
            assert self.cond.wait_for(condition, timeout=30), self.events[-10:]

    def started(self, name: str) -> bool:
        return any(kind == "start" and n == name for kind, n, _ in self.events)

    def names(self) -> list[str]:
        return [name_of(body, "1.0") for body in self.delivered]


def name_of(body: bytes, protocol: str) -> str:
    """The series names of a request, joined: its identity in these tests."""
    decoded = decode_write_request(body, protocol=protocol)
    return "+".join(sorted(s.name for s in decoded.series))


def part(*names: str, protocol: str = "1.0") -> Part:
    registry = CollectorRegistry()
    for name in names:
        Gauge(name, "G.", registry=registry).set(1)
    encoder = (EncoderV2 if protocol == "2.0" else Encoder)(job="j", instance="i")
    body = snappy.compress(encoder.encode(registry.collect(), 1).body(metadata=False))
    return Part(len(names), protocol, body, len(body))


def collection(seq: int, *parts: Part, ts: float = START, fallback: list[Part] | None = None) -> Collection:
    return Collection(seq, int(ts * 1000), list(parts), fallback)


class Wall:
    """A wall clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def senders() -> Iterator[list[EndpointSender]]:
    made: list[EndpointSender] = []
    yield made
    for sender in made:
        sender.stop(0.0)


def make(senders: list[EndpointSender], transport: Transport, **options: Any) -> EndpointSender:
    options.setdefault("policy", FAST)
    options.setdefault("wall_clock", Wall())
    sender = EndpointSender(transport, **options)  # type: ignore[arg-type]
    senders.append(sender)
    return sender


# -- lanes and order ---------------------------------------------------------------------------


def test_requests_of_one_collection_go_out_side_by_side_up_to_max_shards(
    senders: list[EndpointSender],
) -> None:
    gate = threading.Event()
    transport = Transport(answer=lambda body, protocol: gate.wait() and Result(204))
    sender = make(senders, transport, max_shards=4)
    sender.submit(collection(1, *(part(f"g{i}") for i in range(10))))
    transport.wait(lambda: transport.in_flight == 4)
    gate.set()
    assert sender.wait_delivered(1, timeout=30)
    assert transport.most_in_flight == 4
    assert sorted(transport.names()) == sorted(f"g{i}" for i in range(10))
    assert sender.stats().samples_sent == 10


def test_the_next_collection_starts_only_when_every_request_of_this_one_is_done(
    senders: list[EndpointSender],
) -> None:
    slow = threading.Event()

    def answer(body: bytes, protocol: str) -> Result:
        if name_of(body, protocol) == "a2":
            slow.wait()  # the last request of collection 1 takes long
        return Result(204)

    transport = Transport(answer=answer)
    sender = make(senders, transport, max_shards=4)
    sender.submit(collection(1, part("a1"), part("a2"), part("a3")))
    sender.submit(collection(2, part("b1"), part("b2")))
    transport.wait(lambda: transport.started("a2") and len(transport.delivered) == 2)
    # Give a wrong implementation every chance to start collection 2 while a2 hangs.
    with transport.cond:
        transport.cond.wait_for(lambda: transport.started("b1"), timeout=0.3)
    slow.set()
    assert sender.wait_delivered(2, timeout=30)
    order = [(kind, name) for kind, name, _ in transport.events]
    assert order.index(("end", "a2")) < order.index(("start", "b1"))
    assert order.index(("end", "a2")) < order.index(("start", "b2"))


def test_auto_probes_with_one_request_then_sends_the_1_0_copies_to_a_1_0_receiver(
    senders: list[EndpointSender],
) -> None:
    gate = threading.Event()

    def answer(body: bytes, protocol: str) -> Result:
        gate.wait()
        return Result(204)  # a 2xx without *-Written headers: a 1.0 receiver

    transport = Transport(answer=answer)
    sender = make(senders, transport, max_shards=8, negotiator=Negotiator("auto"))
    names = [f"g{i}" for i in range(4)]
    sender.submit(
        collection(
            1,
            *(part(n, protocol="2.0") for n in names),
            fallback=[part(n) for n in names],
        )
    )
    transport.wait(lambda: transport.in_flight == 1)
    gate.set()
    assert sender.wait_delivered(1, timeout=30)
    protocols = [protocol for kind, _, protocol in transport.events if kind == "start"]
    assert protocols == ["2.0", "1.0", "1.0", "1.0", "1.0"]  # the probe alone, then the copies
    assert sender.stats().samples_dropped == {}
    assert sender.protocol() == "1.0"


# -- sample_age_limit --------------------------------------------------------------------------


def test_after_a_lasting_429_ends_fresh_data_flows_and_the_old_is_counted_too_old(
    senders: list[EndpointSender],
) -> None:
    limited = threading.Event()
    limited.set()
    attempts = []

    def answer(body: bytes, protocol: str) -> Result:
        attempts.append(name_of(body, protocol))
        if limited.is_set():
            raise RetryableReceiverError(429, "per-tenant series limit", "u")
        return Result(204)

    wall = Wall()
    transport = Transport(answer=answer)
    sender = make(senders, transport, sample_age_limit=60.0, wall_clock=wall)
    sender.submit(collection(1, part("old"), ts=wall.now))
    transport.wait(lambda: len(attempts) >= 3)  # retried, as a 429 is
    wall.now += 120  # the head is now older than sample_age_limit
    sender.submit(collection(2, part("fresh"), ts=wall.now))
    limited.clear()  # the receiver takes data again
    assert sender.wait_delivered(2, timeout=30)
    assert transport.names() == ["fresh"]
    stats = sender.stats()
    assert stats.samples_dropped == {"too_old": 1} and stats.samples_sent == 1
    assert stats.samples_failed == 0


def test_a_collection_too_old_when_its_turn_comes_is_dropped_without_an_attempt(
    senders: list[EndpointSender], caplog: pytest.LogCaptureFixture
) -> None:
    wall = Wall()
    transport = Transport()
    sender = make(senders, transport, sample_age_limit=60.0, wall_clock=wall)
    sender.submit(collection(1, part("a"), part("b"), ts=wall.now - 61))
    sender.submit(collection(2, part("c"), ts=wall.now))
    assert sender.wait_delivered(2, timeout=30)
    assert transport.names() == ["c"] and transport.events[0][1] == "c"
    assert sender.stats().samples_dropped == {"too_old": 2}
    assert "older than sample_age_limit=60s" in caplog.text
    assert sender.dropped_after(0)  # flush() reports the loss
    families = {f.name: f for f in SelfMetricsCollector(lambda: [sender]).collect()}
    dropped = {
        s.labels["reason"]: s.value for s in families["prometheus_remote_storage_samples_dropped"].samples
    }
    assert dropped == {"too_old": 2.0}


# -- max_bytes_per_send ------------------------------------------------------------------------


def test_a_request_larger_than_max_bytes_per_send_is_never_sent(senders: list[EndpointSender]) -> None:
    small, large = part("s"), part(*(f"series_with_a_long_name_{i}" for i in range(40)))
    transport = Transport()
    sender = make(senders, transport, max_bytes_per_send=large.size - 1)
    sender.submit(collection(1, small, large))
    assert sender.wait_delivered(1, timeout=30)
    assert transport.names() == ["s"]
    stats = sender.stats()
    assert stats.samples_dropped == {"too_large": 40} and stats.samples_failed == 40


# -- the spool ---------------------------------------------------------------------------------


def records(directory: Path) -> int:
    with Spool(directory) as spool:
        return spool.stats().records


def test_requests_wait_on_disk_and_leave_it_once_answered(
    tmp_path: Path, senders: list[EndpointSender]
) -> None:
    gate = threading.Event()
    transport = Transport(answer=lambda body, protocol: gate.wait() and Result(204))
    spool = Spool(tmp_path)
    sender = make(senders, transport, spool=spool)
    first = collection(1, part("a"), part("b"))
    sender.submit(first)
    assert all(p.body is None and p.record_id is not None for p in first.parts)  # on disk only
    assert spool.stats().records == 2
    gate.set()
    assert sender.wait_delivered(1, timeout=30)
    assert sorted(transport.names()) == ["a", "b"]  # read back from the spool
    assert spool.stats().records == 0


def test_a_request_refused_with_a_4xx_leaves_the_spool_too(
    tmp_path: Path, senders: list[EndpointSender]
) -> None:
    def answer(body: bytes, protocol: str) -> Result:
        raise NonRetryableReceiverError(400, "out of order sample", "u")

    spool = Spool(tmp_path)
    sender = make(senders, Transport(answer=answer), spool=spool)
    sender.submit(collection(1, part("a")))
    assert sender.wait_delivered(1, timeout=30)
    assert spool.stats().records == 0
    assert sender.stats().samples_dropped == {"http_400": 1}


def refused(body: bytes, protocol: str) -> Result:
    raise TransportError("connection refused")


def test_what_is_not_delivered_by_stop_waits_on_disk_and_goes_first_at_the_next_start(
    tmp_path: Path, senders: list[EndpointSender]
) -> None:
    down = Transport(answer=refused)
    sender = make(senders, down, spool=Spool(tmp_path))
    for seq, name in enumerate(["r1", "r2", "r3"], start=1):
        sender.submit(collection(seq, part(f"{name}a"), part(f"{name}b"), ts=START + seq))
    sender.stop(0.0)  # nothing was delivered: it all stays in the spool
    assert sender.stats().samples_dropped == {}  # not lost, so not counted as dropped
    assert records(tmp_path) == 6
    up = Transport()
    sender = make(senders, up, spool=Spool(tmp_path), max_shards=4)
    sender.submit(collection(1, part("new"), ts=START + 10))
    assert sender.wait_delivered(1, timeout=30)
    names = up.names()
    groups = [sorted(names[i : i + 2]) for i in (0, 2, 4)]
    assert groups == [["r1a", "r1b"], ["r2a", "r2b"], ["r3a", "r3b"]] and names[6:] == ["new"]
    assert sender.stats().samples_sent == 7
    sender.stop(0.0)
    assert records(tmp_path) == 0


def test_a_full_spool_drops_the_oldest_requests_counted_once(
    tmp_path: Path, senders: list[EndpointSender]
) -> None:
    gate = threading.Event()
    transport = Transport(answer=lambda body, protocol: gate.wait() and Result(204))
    spool = Spool(tmp_path, max_bytes=4096, segment_bytes=1024)
    sender = make(senders, transport, spool=spool)
    for seq in range(1, 41):
        sender.submit(collection(seq, part(f"g{seq}"), ts=START + seq))
    dropped = sender.stats().samples_dropped.get("spool_full", 0)
    assert dropped > 0 and spool.stats().dropped_samples >= dropped
    gate.set()
    assert sender.wait_delivered(40, timeout=30)
    names = transport.names()
    stats = sender.stats()
    assert stats.samples_sent + stats.samples_dropped["spool_full"] == 40  # every sample, once
    kept = [int(n[1:]) for n in names]
    assert kept == sorted(kept) and kept[-1] == 40  # the newest kept, in order


def test_a_replayed_collection_keeps_its_1_0_copies_for_a_receiver_that_turns_out_1_0(
    tmp_path: Path, senders: list[EndpointSender]
) -> None:
    names = ["g0", "g1"]
    sender = make(senders, Transport(answer=refused), spool=Spool(tmp_path), negotiator=Negotiator("auto"))
    sender.submit(collection(1, *(part(n, protocol="2.0") for n in names), fallback=[part(n) for n in names]))
    sender.stop(0.0)
    one_oh = Transport()  # answers 204 without *-Written headers: speaks 1.0 only
    sender = make(senders, one_oh, spool=Spool(tmp_path), negotiator=Negotiator("auto"))
    sender.submit(collection(1))
    assert sender.wait_delivered(1, timeout=30)
    protocols = [protocol for kind, _, protocol in one_oh.events if kind == "start"]
    assert protocols == ["2.0", "1.0", "1.0"]
    assert sorted(one_oh.names()[1:]) == names and sender.stats().samples_dropped == {}
    sender.stop(0.0)
    assert records(tmp_path) == 0


def test_spooled_data_older_than_sample_age_limit_is_dropped_at_the_next_start(
    tmp_path: Path, senders: list[EndpointSender]
) -> None:
    sender = make(senders, Transport(answer=refused), spool=Spool(tmp_path))
    sender.submit(collection(1, part("old"), ts=START))
    sender.stop(0.0)
    wall = Wall()
    wall.now += 3600
    up = Transport()
    sender = make(senders, up, spool=Spool(tmp_path), sample_age_limit=1800.0, wall_clock=wall)
    sender.submit(collection(1, part("new"), ts=wall.now))
    assert sender.wait_delivered(1, timeout=30)
    assert up.names() == ["new"]
    assert sender.stats().samples_dropped == {"too_old": 1}
    sender.stop(0.0)
    assert records(tmp_path) == 0


def test_a_second_bridge_on_the_same_spool_dir_fails_naming_the_directory(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    url = "http://127.0.0.1:9/api/v1/write"
    bridge = enable_remote_write(url, registry=registry, interval=3600, spool_dir=str(tmp_path), timeout=1)
    try:
        with pytest.raises(SpoolLockedError) as info:
            enable_remote_write(url, registry=CollectorRegistry(), interval=3600, spool_dir=str(tmp_path))
        assert str(tmp_path) in str(info.value) and info.value.directory.startswith(str(tmp_path))
    finally:
        bridge.close(timeout=0.5)
