"""What the bridge's encoders keep between pushes: one protocol's state in auto mode, none for gone series."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily

from prometheus_rw_bridge import RemoteWriteBridge, decode_write_request, enable_remote_write
from prometheus_rw_bridge._delivery import give_back
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
from prometheus_rw_bridge._protocol.registry import read
from prometheus_rw_bridge.testing import Receiver, Reply


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("orders", "Orders.", ["shop"], registry=registry).labels("north").inc(4)
    Gauge("temperature_celsius", "T.", registry=registry).set(21.5)
    return registry


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as fault_receiver:
        yield fault_receiver


def _bridge(url: str, registry: CollectorRegistry) -> RemoteWriteBridge:
    return enable_remote_write(
        url, registry=registry, interval=3600, job="j", instance="i", protocol="auto", self_metrics=False
    )


def test_auto_confirmed_on_2_0_drops_the_1_0_encoders_state(
    receiver: Receiver, registry: CollectorRegistry
) -> None:
    bridge = _bridge(receiver.url, registry)
    try:
        assert bridge.flush(timeout=10)  # 2.0, confirmed by the receiver's *-Written headers
        assert bridge.flush(timeout=10)
        assert bridge._makers[0].encoders["1.0"].series_kept == 0
        # orders_total (created as start time), temperature
        assert bridge._makers[0].encoders["2.0"].series_kept == 2
    finally:
        bridge.close(timeout=5)
    assert {r.protocol for r in receiver.requests} == {"2.0"}


def test_the_dropped_state_is_given_back_to_the_system_once(
    receiver: Receiver, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(give_back, "give_back", lambda: calls.append(1))
    bridge = _bridge(receiver.url, registry)
    try:
        assert bridge.flush(timeout=10)  # both encoded, 2.0 confirmed
        assert calls == []
        assert bridge.flush(timeout=10)  # the 1.0 state dropped, and given back
        assert bridge.flush(timeout=10)  # nothing more to drop
    finally:
        bridge.close(timeout=5)
    assert calls == [1]


def test_give_back_asks_glibc_and_nothing_else() -> None:
    """malloc_trim where the C library is glibc (this machine's); elsewhere a no-op."""
    assert give_back.give_back() is (platform.libc_ver()[0] == "glibc")


def test_auto_fallen_back_to_1_0_drops_the_2_0_encoders_state(
    receiver: Receiver, registry: CollectorRegistry
) -> None:
    receiver.script(Reply(415, "unsupported content type"))
    bridge = _bridge(receiver.url, registry)
    try:
        assert bridge.flush(timeout=10)  # 2.0 refused, resent as 1.0
        assert bridge.flush(timeout=10)  # 1.0 until the next probe
        assert bridge._makers[0].encoders["2.0"].series_kept == 0
        assert bridge._makers[0].encoders["1.0"].series_kept == 3  # orders_total, orders_created, temperature
    finally:
        bridge.close(timeout=5)
    assert [r.protocol for r in receiver.requests][-1] == "1.0"


def test_removed_children_release_their_series() -> None:
    registry = CollectorRegistry()
    counter = Counter("hits", "H.", ["path"], registry=registry)
    for index in range(50):
        counter.labels(f"/p{index}").inc()
    encoder = Encoder(job="j", instance="i", track_staleness=True)
    encoder.encode(read(registry), 1)
    assert encoder.series_kept == 100
    counter.clear()
    gone = encoder.encode(read(registry), 2)
    assert gone.stale_markers == 100 and encoder.series_kept == 0
    assert not encoder._ownership


def test_reset_forgets_everything() -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    encoder = Encoder(job="j", instance="i", track_staleness=True)
    first = encoder.encode(read(registry), 1)
    encoder.reset()
    assert encoder.series_kept == 0 and not encoder._ownership
    again = encoder.encode(read(registry), 2)
    assert again.metadata_changed and again.stale_markers == 0
    assert len(again.body()) == len(first.body())


class _Repeats:
    """A custom collector yielding, under another family name, a series the registry's counter sends."""

    def __init__(self) -> None:
        self.on = True

    def collect(self) -> Iterator[Any]:
        if self.on:
            family = CounterMetricFamily("hits_total", "Again.", labels=["path"])  # sent as hits_total
            family.add_metric(["/a"], 5.0)
            family.add_metric(["/other"], 1.0)
            yield family


@pytest.mark.parametrize(("cls", "protocol"), [(Encoder, "1.0"), (EncoderV2, "2.0")])
def test_series_are_owned_one_by_one_only_under_names_two_families_send(cls: Any, protocol: str) -> None:
    """A name one family sends costs no per-series state; one that two send, only its own series."""
    registry = CollectorRegistry()
    hits = Counter("hits", "H.", ["path"], registry=registry)
    for path in ("/a", "/b", "/c"):
        hits.labels(path).inc()
    Gauge("temperature", "T.", ["room"], registry=registry).labels("hall").set(20)
    encoder = cls(job="j", instance="i", track_staleness=True)
    encoder.encode(read(registry), 1)
    assert encoder._ownership.owners == {}
    repeats = _Repeats()
    registry.register(repeats)
    both = decode_write_request(encoder.encode(read(registry), 2).body(), compressed=False, protocol=protocol)
    sent = sorted((s.name, s.labels["path"]) for s in both.series if s.name == "hits_total")
    assert sent == [("hits_total", path) for path in ("/a", "/b", "/c", "/other")]
    # hits_total: the counter's three series and the collector's /other; /a is the counter's.
    assert len(encoder._ownership.owners) == 4
    repeats.on = False
    gone = encoder.encode(read(registry), 3)
    assert gone.stale_markers == 1  # /other; /a is still the counter's
    assert encoder._ownership.owners == {}
