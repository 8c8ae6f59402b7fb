"""Batching: requests cut between series, by count and by bytes, each decodable on its own."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from prometheus_rw_bridge import decode_write_request
from prometheus_rw_bridge._protocol import snappy as _snappy
from prometheus_rw_bridge._protocol import tags, wire
from prometheus_rw_bridge._protocol.batching import (
    JoinBuffer,
    RequestStream,
    compress_requests,
    iter_split,
    split_body,
)
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
from prometheus_rw_bridge._protocol.registry import read


def _registry(children: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("hits", "H.", ["path"], registry=registry)
    histogram = Histogram("lat", "L.", ["path"], registry=registry, buckets=(0.1, 1.0))
    for index in range(children):
        counter.labels(f"/{'x' * (index % 7)}{index}").inc(index)
        histogram.labels(str(index)).observe(index / 10)
    return registry


def _names(body: bytes, protocol: str) -> list[tuple[str, ...]]:
    decoded = decode_write_request(body, compressed=False, protocol=protocol)
    return [tuple(sorted(s.labels.items())) for s in decoded.series]  # type: ignore[misc]


@pytest.mark.parametrize(("cls", "protocol"), [(Encoder, "1.0"), (EncoderV2, "2.0")])
@settings(max_examples=40, deadline=None)
@given(
    children=st.integers(0, 12),
    max_samples=st.integers(1, 30),
    max_bytes=st.one_of(st.none(), st.integers(1, 600)),
)
def test_requests_hold_every_series_once_in_order_within_the_limits(
    cls: Any, protocol: str, children: int, max_samples: int, max_bytes: int | None
) -> None:
    collection = cls(job="j", instance="i").encode(read(_registry(children)), 1_000)
    whole = _names(collection.body(metadata=False), protocol)
    requests = list(iter_split(collection, max_samples, max_bytes=max_bytes))
    got: list[tuple[str, ...]] = []
    for body, count in requests:
        names = _names(body, protocol)  # each request decodes on its own (2.0: its own symbols)
        assert len(names) == count and 1 <= count <= max_samples
        if max_bytes is not None and count > 1:  # a single series larger than the cap goes alone
            assert len(body) - len(_symbols_of(body, protocol)) <= max_bytes
        got += names
    assert got == whole


def _symbols_of(body: bytes, protocol: str) -> bytes:
    """The symbol table in front of a 2.0 request's series (the byte cap counts series only)."""
    if protocol == "1.0":
        return b""
    return b"".join(body[s:e] for tag, s, e in wire.read_fields(body) if tag == tags.V2_REQUEST_SYMBOL)


def test_limits_below_one_are_refused() -> None:
    collection = Encoder(job="j", instance="i").encode(read(_registry(1)), 1)
    with pytest.raises(ValueError):
        list(iter_split(collection, 0))
    with pytest.raises(ValueError):
        list(iter_split(collection, 10, max_bytes=0))


def test_metadata_rides_with_the_last_request_only() -> None:
    """The last request is still open when a stream learns whether the metadata goes."""
    collection = Encoder(job="j", instance="i").encode(read(_registry(3)), 1)
    requests = compress_requests(collection, "1.0", 4, metadata=True)
    decoded = [decode_write_request(r.body) for r in requests]
    assert decoded[-1].metadata and not any(d.metadata for d in decoded[:-1])
    assert sum(r.samples for r in requests) == collection.samples


def test_split_body_halves_a_request_between_series() -> None:
    collection = Encoder(job="j", instance="i").encode(read(_registry(3)), 1)
    body = collection.body()
    halves = split_body(body)
    assert halves is not None
    (left, n_left), (right, n_right) = halves
    assert n_left + n_right == collection.samples
    assert _names(left, "1.0") + _names(right, "1.0") == _names(body, "1.0")
    assert _snappy.decompress(_snappy.compress(left)) == left


def test_split_body_v2_copies_the_symbols_table_into_both_halves() -> None:
    registry = CollectorRegistry()
    counter = Counter("c", "C.", ["n"], registry=registry)
    for i in range(6):
        counter.labels(str(i)).inc(i)
    raw = EncoderV2(job="j", instance="i").encode(registry.collect(), 1).body()
    halves = split_body(raw, "2.0")
    assert halves is not None
    got = []
    for body, count in halves:
        decoded = decode_write_request(body, compressed=False, protocol="2.0")  # every ref resolves
        assert len(decoded.series) == count == 3
        got += [(s.labels["n"], s.samples[0].value) for s in decoded.series]
    assert sorted(got) == [(str(i), float(i)) for i in range(6)]


def test_split_body_needs_two_series() -> None:
    registry = CollectorRegistry()
    Gauge("only", "O.", registry=registry).set(1)
    assert split_body(Encoder(job="j", instance="i").encode(registry.collect(), 1).body()) is None


@pytest.mark.parametrize(
    ("cls", "protocol", "max_bytes"),
    [(Encoder, "1.0", 300), (Encoder, "1.0", 2000), (EncoderV2, "2.0", 700), (EncoderV2, "2.0", 2000)],
)
def test_no_compressed_body_is_larger_than_max_bytes(cls: Any, protocol: str, max_bytes: int) -> None:
    collection = cls(job="j", instance="i").encode(read(_registry(40)), 1)
    requests = compress_requests(collection, protocol, 2000, metadata=protocol == "1.0", max_bytes=max_bytes)
    assert all(len(r.body) <= max_bytes for r in requests if r.samples > 1)
    assert sum(r.samples for r in requests) == collection.samples
    names = [n for r in requests for n in _names(_snappy.decompress(r.body), protocol)]
    assert names == _names(collection.body(metadata=False), protocol)  # every series once, in order


def test_a_2_0_request_whose_symbol_table_alone_cannot_fit_is_not_halved_in_vain() -> None:
    collection = EncoderV2(job="j", instance="i").encode(read(_registry(40)), 1)
    cut = list(iter_split(collection, 2000, max_bytes=300))
    requests = compress_requests(collection, "2.0", 2000, metadata=False, max_bytes=300)
    assert len(cut) <= len(requests) < 2 * len(cut)  # halved only where the halves could fit
    assert len(requests) < collection.samples // 2  # not down to one series each, in vain
    assert max(len(r.body) for r in requests) > 300  # what cannot fit is left for the sender to refuse


@pytest.mark.parametrize(("cls", "protocol"), [(Encoder, "1.0"), (EncoderV2, "2.0")])
@settings(max_examples=30, deadline=None)
@given(
    children=st.integers(0, 12),
    max_samples=st.integers(1, 30),
    max_bytes=st.one_of(st.none(), st.integers(1, 600)),
    pushes=st.integers(1, 3),
    metadata=st.booleans(),
)
def test_a_stream_compresses_the_requests_compress_requests_would(
    cls: Any,
    protocol: str,
    children: int,
    max_samples: int,
    max_bytes: int | None,
    pushes: int,
    metadata: bool,
) -> None:
    """Streamed block by block as the encoder writes (the bridge's pushes), or cut from the whole
    collection afterwards: the same requests, push after push (2.0: the symbols table grows)."""
    registry = _registry(children)
    streamed, whole = cls(job="j", instance="i"), cls(job="j", instance="i")
    buffer = JoinBuffer()  # one for every push, as the bridge keeps it
    for push in range(pushes):
        if push:
            Gauge(f"later{push}", "L.", ["k"], registry=registry).labels(f"v{push}").set(push)
        stream = RequestStream(protocol, max_samples, max_bytes=max_bytes, buffer=buffer)
        collection = streamed.encode(read(registry), 1_000 + push, stream=stream)
        assert collection.blocks == []  # every block went to the stream
        got = stream.finish(collection.metadata if metadata and protocol == "1.0" else b"")
        reference = whole.encode(read(registry), 1_000 + push)
        want = compress_requests(reference, protocol, max_samples, metadata=metadata, max_bytes=max_bytes)
        assert got == want
