"""What the bridge's encoders keep between pushes: one protocol's state in auto mode, none for gone series."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from prometheus_rw_bridge import RemoteWriteBridge, enable_remote_write
from prometheus_rw_bridge._protocol.encode import Encoder
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
    assert encoder._owners == {}


def test_reset_forgets_everything() -> None:
    registry = CollectorRegistry()
    Gauge("g", "G.", registry=registry).set(1)
    encoder = Encoder(job="j", instance="i", track_staleness=True)
    first = encoder.encode(read(registry), 1)
    encoder.reset()
    assert encoder.series_kept == 0 and encoder._owners == {}
    again = encoder.encode(read(registry), 2)
    assert again.metadata_changed and again.stale_markers == 0
    assert len(again.body()) == len(first.body())
