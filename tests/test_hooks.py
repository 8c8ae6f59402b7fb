"""The encoders' seams for relabelling and for counting what they drop, with reasons."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from prometheus_rw_bridge import decode_write_request
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
from prometheus_rw_bridge._protocol.registry import collect, read

ENCODERS = [pytest.param(Encoder, "1.0", id="1.0"), pytest.param(EncoderV2, "2.0", id="2.0")]


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    hits = Counter("hits", "H.", ["path", "tenant"], registry=registry)
    for path in ("/a", "/b", "/c"):
        hits.labels(path, "t1").inc()
    Gauge("up", "U.", registry=registry).set(1)
    return registry


def _relabel(labels: dict[str, str]) -> dict[str, str] | None:
    """Drop every series of /c, and drop the path label: /a and /b then collide."""
    if labels.get("path") == "/c":
        return None
    return {k: v for k, v in labels.items() if k != "path"}


@pytest.mark.parametrize(("cls", "protocol"), ENCODERS)
@pytest.mark.parametrize("source", [read, collect], ids=["direct", "collected"])
def test_relabel_applies_once_per_series_and_collisions_are_counted(
    cls: Any, protocol: str, source: Any
) -> None:
    registry = _registry()
    calls: list[dict[str, str]] = []

    def relabel(labels: dict[str, str]) -> dict[str, str] | None:
        calls.append(dict(labels))
        return _relabel(labels)

    encoder = cls(job="j", instance="i", relabel=relabel)
    first = encoder.encode(source(registry), 1)
    built = len(calls)
    second = encoder.encode(source(registry), 2)
    assert len(calls) == built  # the warm path calls nothing: the result is kept
    series = decode_write_request(second.body(), compressed=False, protocol=protocol).series
    assert "up" in {s.name for s in series}
    totals = [s for s in series if s.name == "hits_total"]
    assert [s.labels.get("path") for s in totals] == [None]  # /a kept, /b dropped as a duplicate
    drops = {"relabel": 1 if protocol == "2.0" else 2, "duplicate": 1 if protocol == "2.0" else 2}
    assert first.dropped == drops == second.dropped  # per collection, for delivery's counters


def test_no_relabel_no_drops() -> None:
    collection = Encoder(job="j", instance="i").encode(read(_registry()), 1)
    assert collection.dropped == {}
