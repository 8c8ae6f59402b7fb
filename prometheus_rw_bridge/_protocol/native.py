"""Native (sparse) histograms: prometheus_client ``NativeHistogram`` -> protobuf ``Histogram``.

The ``Histogram`` message has the same field numbers in remote-write 1.0 (``TimeSeries``
field 4) and 2.0 (``TimeSeries`` field 3), so one body encoder serves both.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from . import wire as _wire
from .samples import exemplar_entry_v1

__all__ = ["histogram_body", "histogram_entry_v1"]

_DOUBLE = struct.Struct("<d")

RESET_HINT_UNKNOWN = 0
RESET_HINT_GAUGE = 3


def _spans(tag: int, spans: Sequence[Any] | None) -> bytes:
    """Encode ``BucketSpan`` entries: ``offset`` is sint32, ``length`` uint32."""
    out = []
    for span in spans or ():
        offset, length = int(span[0]), int(span[1])
        body = b""
        if offset:
            body += b"\x08" + _wire.varint(_wire.zigzag(offset))
        if length:
            body += b"\x10" + _wire.varint(length)
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
        b"\x19" + _DOUBLE.pack(float(native.sum_value)),
        b"\x20" + _wire.varint(_wire.zigzag(int(native.schema))),
        b"\x29" + _DOUBLE.pack(float(native.zero_threshold)),
    ]
    if _whole(count) and _whole(zero_count):
        body = [
            b"\x08" + _wire.varint(int(count)),  # count_int = 1
            *header,
            b"\x30" + _wire.varint(int(zero_count)),  # zero_count_int = 6
            _spans(0x42, native.neg_spans),
            _packed_sint64(0x4A, native.neg_deltas),  # negative_deltas = 9
            _spans(0x5A, native.pos_spans),
            _packed_sint64(0x62, native.pos_deltas),  # positive_deltas = 12
        ]
    else:
        body = [
            b"\x11" + _DOUBLE.pack(count),  # count_float = 2
            *header,
            b"\x39" + _DOUBLE.pack(zero_count),  # zero_count_float = 7
            _spans(0x42, native.neg_spans),
            _packed_counts(0x52, native.neg_deltas),  # negative_counts = 10
            _spans(0x5A, native.pos_spans),
            _packed_counts(0x6A, native.pos_deltas),  # positive_counts = 13
        ]
    if gauge:
        body.append(b"\x70" + _wire.varint(RESET_HINT_GAUGE))
    body.append(b"\x78" + _wire.varint(timestamp_ms))
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
        _wire.length_delimited(_wire.TAG_TS_HISTOGRAM, histogram_body(native, timestamp_ms, gauge=gauge)),
    ]
    if exemplars is None:
        exemplars = [
            exemplar_entry_v1(ex, timestamp_ms) for ex in getattr(native, "nh_exemplars", None) or ()
        ]
    parts.extend(exemplars)
    return _wire.length_delimited(_wire.TAG_WRITE_TIMESERIES, b"".join(parts))
