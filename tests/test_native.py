"""_native: native histograms as protobuf Histogram bodies, integer or float, never a mix."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.samples import BucketSpan, NativeHistogram

from prometheus_rw_bridge._protocol import native as _native
from prometheus_rw_bridge._protocol import schema as _schema

TS = 1_763_900_000_000


def _native_histogram(
    count: float, zero_count: float, pos_deltas: list[int] | None = None
) -> NativeHistogram:
    return NativeHistogram(
        count_value=count,
        sum_value=12.5,
        schema=1,
        zero_threshold=0.001,
        zero_count=zero_count,
        pos_spans=[BucketSpan(0, 2), BucketSpan(3, 1)],
        pos_deltas=pos_deltas or [2, -1, 1],
        neg_spans=[BucketSpan(1, 1)],
        neg_deltas=[1],
    )


def _decode(native: NativeHistogram) -> Any:
    return _schema.Histogram.FromString(_native.histogram_body(native, TS))


def test_whole_counts_give_an_integer_histogram() -> None:
    hist = _decode(_native_histogram(7, 1))
    assert hist.WhichOneof("count") == "count_int" and hist.count_int == 7
    assert hist.WhichOneof("zero_count") == "zero_count_int" and hist.zero_count_int == 1
    assert list(hist.positive_deltas) == [2, -1, 1] and list(hist.negative_deltas) == [1]
    assert not hist.positive_counts and not hist.negative_counts
    assert hist.timestamp == TS


@pytest.mark.parametrize(
    ("count", "zero_count"),
    [
        pytest.param(7.5, 1, id="fractional-count"),
        pytest.param(7, 0.5, id="fractional-zero-count"),
        pytest.param(-1, 1, id="negative-count"),
    ],
)
def test_any_non_whole_count_gives_a_float_histogram(count: float, zero_count: float) -> None:
    hist = _decode(_native_histogram(count, zero_count))
    assert hist.WhichOneof("count") == "count_float" and hist.count_float == count
    assert hist.WhichOneof("zero_count") == "zero_count_float"
    assert hist.zero_count_float == zero_count
    # Absolute counts, the running sums of the deltas; no deltas at all.
    assert list(hist.positive_counts) == [2.0, 1.0, 2.0]
    assert list(hist.negative_counts) == [1.0]
    assert not hist.positive_deltas and not hist.negative_deltas
    assert [(s.offset, s.length) for s in hist.positive_spans] == [(0, 2), (3, 1)]


def test_a_delta_beyond_int64_raises_rather_than_corrupting_the_body() -> None:
    with pytest.raises(OverflowError):
        _native.histogram_body(_native_histogram(7, 1, pos_deltas=[2**70]), TS)


def test_a_count_beyond_uint64_raises() -> None:
    with pytest.raises(OverflowError):
        _native.histogram_body(_native_histogram(1e30, 1), TS)
