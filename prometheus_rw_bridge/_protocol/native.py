"""Native (sparse) histograms: prometheus_client ``NativeHistogram`` -> protobuf ``Histogram``.

The ``Histogram`` message has the same field numbers in remote-write 1.0 (``TimeSeries``
field 4) and 2.0 (``TimeSeries`` field 3), so one body encoder serves both.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from . import tags as _tags
from . import wire as _wire
from .samples import exemplar_entry_v1

__all__ = ["histogram_body", "histogram_entry_v1"]

_DOUBLE = struct.Struct("<d")
_T = [bytes([tag]) for tag in range(128)]  # one-byte tags as bytes



def _spans(tag: int, spans: Sequence[Any] | None) -> bytes:
    """Encode ``BucketSpan`` entries: ``offset`` is sint32, ``length`` uint32."""
    out = []
    for span in spans or ():
        offset, length = int(span[0]), int(span[1])
        body = b""
        if offset:
            body += _T[_tags.SPAN_OFFSET] + _wire.varint(_wire.zigzag(offset))
        if length:
            body += _T[_tags.SPAN_LENGTH] + _wire.varint(length)
        out.append(_wire.length_delimited(tag, body))
    return b"".join(out)


def _packed_sint64(tag: int, values: Sequence[int] | None) -> bytes:
    """Encode a packed ``repeated sint64`` field, or nothing when empty."""
    if not values:
        return b""
    return _wire.length_delimited(tag, b"".join(_wire.varint(_wire.zigzag(int(v))) for v in values))


def _packed_counts(tag: int, deltas: Sequence[int] | None) -> bytes:
    """Encode a packed ``repeated double`` field of absolute bucket counts (the deltas' running sums)."""
    if not deltas:
        return b""
    counts = [float(c) for c in accumulate(int(d) for d in deltas)]
    return _wire.length_delimited(tag, struct.pack(f"<{len(counts)}d", *counts))


def _whole(value: float) -> bool:
    return value.is_integer() and value >= 0


def histogram_body(native: Any, timestamp_ms: int, *, gauge: bool = False) -> bytes:
    """Encode a ``NativeHistogram`` as the body of a protobuf ``Histogram`` message.

    A histogram is either an integer one (``count_int``, ``zero_count_int`` and bucket
    deltas) or a float one (``count_float``, ``zero_count_float`` and absolute bucket counts),
    never a mix: the integer form is used when both counts are whole and not negative.
    Remote-write 2.0 callers append ``Histogram.start_timestamp`` (field 17) themselves.

    Raises:
        OverflowError: a count, delta or the timestamp does not fit its 64-bit field.
    """
    count, zero_count = float(native.count_value), float(native.zero_count)
    header = [
        _T[_tags.HIST_SUM] + _DOUBLE.pack(float(native.sum_value)),
        _T[_tags.HIST_SCHEMA] + _wire.varint(_wire.zigzag(int(native.schema))),
        _T[_tags.HIST_ZERO_THRESHOLD] + _DOUBLE.pack(float(native.zero_threshold)),
    ]
    if _whole(count) and _whole(zero_count):
        body = [
            _T[_tags.HIST_COUNT_INT] + _wire.varint(int(count)),
            *header,
            _T[_tags.HIST_ZERO_COUNT_INT] + _wire.varint(int(zero_count)),
            _spans(_tags.HIST_NEGATIVE_SPANS, native.neg_spans),
            _packed_sint64(_tags.HIST_NEGATIVE_DELTAS, native.neg_deltas),
            _spans(_tags.HIST_POSITIVE_SPANS, native.pos_spans),
            _packed_sint64(_tags.HIST_POSITIVE_DELTAS, native.pos_deltas),
        ]
    else:
        body = [
            _T[_tags.HIST_COUNT_FLOAT] + _DOUBLE.pack(count),
            *header,
            _T[_tags.HIST_ZERO_COUNT_FLOAT] + _DOUBLE.pack(zero_count),
            _spans(_tags.HIST_NEGATIVE_SPANS, native.neg_spans),
            _packed_counts(_tags.HIST_NEGATIVE_COUNTS, native.neg_deltas),
            _spans(_tags.HIST_POSITIVE_SPANS, native.pos_spans),
            _packed_counts(_tags.HIST_POSITIVE_COUNTS, native.pos_deltas),
        ]
    if gauge:
        body.append(_T[_tags.HIST_RESET_HINT] + _wire.varint(_tags.RESET_HINT_GAUGE))
    body.append(_T[_tags.HIST_TIMESTAMP] + _wire.varint(timestamp_ms))
    return b"".join(body)


def histogram_entry_v1(
    label_bytes: bytes,
    native: Any,
    timestamp_ms: int,
    *,
    gauge: bool = False,
    exemplars: Sequence[bytes] | None = None,
) -> bytes:
    """Encode a ``WriteRequest.timeseries`` entry carrying one native histogram (and its exemplars).

    ``exemplars`` are already encoded ``TimeSeries.exemplars`` entries; ``None`` encodes the
    histogram's ``nh_exemplars`` here (and raises if one of them cannot be encoded).
    """
    parts = [
        label_bytes,
        _wire.length_delimited(_tags.TS_HISTOGRAM, histogram_body(native, timestamp_ms, gauge=gauge)),
    ]
    if exemplars is None:
        exemplars = [
            exemplar_entry_v1(ex, timestamp_ms) for ex in getattr(native, "nh_exemplars", None) or ()
        ]
    parts.extend(exemplars)
    return _wire.length_delimited(_tags.WRITE_TIMESERIES, b"".join(parts))
