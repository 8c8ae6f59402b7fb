"""Protobuf wire primitives for the remote-write messages, written by hand for speed.

Everything here is pure and allocation-light: functions take Python values and return
``bytes`` in protobuf's wire format, or (:func:`read_varint`, :func:`read_fields`) read them
back.  The field tags come from ``tags``.

A ``WriteRequest`` is only repeated fields, and protobuf lets a repeated field's entries be
concatenated, so any run of encoded ``timeseries`` (and ``metadata``) entries is itself a
valid request body.  The encoder and the pusher's batching rely on that.
"""

from __future__ import annotations

import math
import struct

from . import tags as _tags

__all__ = [
    "STALE_NAN",
    "STALE_NAN_BITS",
    "is_stale_nan",
    "label",
    "label_pairs",
    "labels",
    "length_delimited",
    "metadata_entry",
    "read_fields",
    "read_varint",
    "timestamp_suffix",
    "v2_metadata_field",
    "v2_sample_field",
    "varint",
]

STALE_NAN_BITS = 0x7FF0000000000002
"""The bit pattern Prometheus uses to mark a series stale (``value.StaleNaN``)."""

_DOUBLE = struct.Struct("<d")
_UINT64 = struct.Struct("<Q")

STALE_NAN: float = _DOUBLE.unpack(_UINT64.pack(STALE_NAN_BITS))[0]
"""A float whose bits are exactly :data:`STALE_NAN_BITS`; encoded bit-exact by this package."""

_U64 = 1 << 64
_INT64_MIN = -(1 << 63)

_SMALL_VARINTS = [bytes([i]) for i in range(128)]


def varint(value: int) -> bytes:
    """Encode an unsigned or int64 value as a protobuf varint (negatives as 10-byte two's complement).

    Raises:
        OverflowError: ``value`` fits neither ``uint64`` nor ``int64`` (a longer varint would
            make the whole message undecodable).
    """
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if value < 0:
        if value < _INT64_MIN:
            raise OverflowError(f"{value} does not fit a 64-bit varint")
        value += _U64
    elif value >= _U64:
        raise OverflowError(f"{value} does not fit a 64-bit varint")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Read the varint at ``data[pos]``; return its (unsigned) value and the position after it.

    Raises:
        ValueError: the data ends inside the varint, or it is longer than 10 bytes.
    """
    value = shift = 0
    end = len(data)
    while True:
        if pos >= end or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def first_packed_varints(data: bytes) -> list[int]:
    """Read the packed varints of the length-delimited field ``data`` starts with (a one-byte tag)."""
    length, pos = read_varint(data, 1)
    end = pos + length
    values = []
    while pos < end:
        value, pos = read_varint(data, pos)
        values.append(value)
    return values


def read_fields(data: bytes | memoryview) -> list[tuple[int, int, int]]:
    """Split a message of length-delimited fields with one-byte tags into ``(tag, start, end)``.

    ``start`` is where the field (its tag) starts, ``end`` where its payload ends; every
    top-level field of a remote-write request (and of a ``Label``) is such a field.

    Raises:
        ValueError: a field is not length-delimited, or runs past the end.
    """
    fields = []
    pos, size = 0, len(data)
    while pos < size:
        start, tag = pos, data[pos]
        if tag & 0x07 != 2:
            raise ValueError(f"field with tag {tag:#x} is not length-delimited")
        length, pos = read_varint(data, pos + 1)
        pos += length
        if pos > size:
            raise ValueError("a field runs past the end of the message")
        fields.append((tag, start, pos))
    return fields


def label_pairs(label_bytes: bytes) -> list[tuple[bytes, bytes]]:
    """Decode repeated ``Label`` fields (as :func:`labels` encodes them) back into their pairs."""
    pairs = []
    for _, start, end in read_fields(label_bytes):
        _, body = read_varint(label_bytes, start + 1)
        name = value = b""
        for tag, field_start, field_end in read_fields(label_bytes[body:end]):
            _, payload = read_varint(label_bytes, body + field_start + 1)
            text = label_bytes[payload : body + field_end]
            if tag == _tags.LABEL_NAME:
                name = text
            else:
                value = text
        pairs.append((name, value))
    return pairs


def zigzag(value: int) -> int:
    """Map a signed integer onto an unsigned one, as ``sint32``/``sint64`` fields require.

    Raises:
        OverflowError: ``value`` does not fit an ``int64``.
    """
    if not _INT64_MIN <= value < -_INT64_MIN:
        raise OverflowError(f"{value} does not fit a sint64")
    return (value << 1) ^ (value >> 63)


def length_delimited(tag: int, payload: bytes) -> bytes:
    """Return ``payload`` as a length-delimited field with the one-byte ``tag``."""
    return _SMALL_VARINTS[tag] + varint(len(payload)) + payload


def label(name: bytes, value: bytes) -> bytes:
    """Encode one ``Label`` message body (name and value already UTF-8)."""
    return length_delimited(_tags.LABEL_NAME, name) + length_delimited(_tags.LABEL_VALUE, value)


def labels(pairs: list[tuple[bytes, bytes]], tag: int = _tags.TS_LABEL) -> bytes:
    """Encode sorted ``(name, value)`` pairs as repeated ``Label`` fields with ``tag``."""
    return b"".join([length_delimited(tag, label(n, v)) for n, v in pairs])


def timestamp_suffix(timestamp_ms: int) -> bytes:
    """Return the ``Sample.timestamp`` field that ends every sample encoded at ``timestamp_ms``."""
    return _SMALL_VARINTS[_tags.SAMPLE_TIMESTAMP] + varint(timestamp_ms)


def sample_entry(label_bytes: bytes, value: float, timestamp_ms: int, extra: bytes = b"") -> bytes:
    """Encode one ``WriteRequest.timeseries`` entry holding a single sample (and ``extra`` fields)."""
    sample = _SMALL_VARINTS[_tags.SAMPLE_VALUE] + _DOUBLE.pack(value) + timestamp_suffix(timestamp_ms)
    body = label_bytes + length_delimited(_tags.TS_SAMPLE, sample) + extra
    return length_delimited(_tags.WRITE_TIMESERIES, body)


def exemplar(label_bytes: bytes, value: float, timestamp_ms: int) -> bytes:
    """Encode one ``TimeSeries.exemplars`` entry (``label_bytes`` tagged as Exemplar.labels)."""
    body = label_bytes + _SMALL_VARINTS[_tags.EXEMPLAR_VALUE] + _DOUBLE.pack(value)
    if timestamp_ms:
        body += _SMALL_VARINTS[_tags.EXEMPLAR_TIMESTAMP] + varint(timestamp_ms)
    return length_delimited(_tags.TS_EXEMPLAR, body)


def v2_metadata_field(mtype: int, help_ref: int, unit_ref: int) -> bytes:
    """Encode a 2.0 ``TimeSeries.metadata`` field; zero fields are left out, as proto3 does."""
    body = b""
    if mtype:
        body += _SMALL_VARINTS[_tags.V2_METADATA_TYPE] + varint(mtype)
    if help_ref:
        body += _SMALL_VARINTS[_tags.V2_METADATA_HELP_REF] + varint(help_ref)
    if unit_ref:
        body += _SMALL_VARINTS[_tags.V2_METADATA_UNIT_REF] + varint(unit_ref)
    return length_delimited(_tags.V2_TS_METADATA, body)


def v2_sample_field(value: float, timestamp_ms: int, start_ms: int) -> bytes:
    """Encode one 2.0 ``TimeSeries.samples`` field, with its start timestamp when not 0."""
    body = _SMALL_VARINTS[_tags.SAMPLE_VALUE] + _DOUBLE.pack(value) + timestamp_suffix(timestamp_ms)
    if start_ms:
        body += _SMALL_VARINTS[_tags.V2_SAMPLE_START] + varint(start_ms)
    return length_delimited(_tags.V2_TS_SAMPLE, body)


def metadata_entry(metric_type: int, family_name: str, help_text: str, unit: str) -> bytes:
    """Encode one ``WriteRequest.metadata`` entry (``MetricMetadata``)."""
    body = b""
    if metric_type:
        body += _SMALL_VARINTS[_tags.METADATA_TYPE] + varint(metric_type)
    body += length_delimited(_tags.METADATA_FAMILY_NAME, family_name.encode("utf-8"))
    if help_text:
        body += length_delimited(_tags.METADATA_HELP, help_text.encode("utf-8"))
    if unit:
        body += length_delimited(_tags.METADATA_UNIT, unit.encode("utf-8"))
    return length_delimited(_tags.WRITE_METADATA, body)


def is_stale_nan(value: float) -> bool:
    """Tell whether ``value`` is Prometheus's stale marker, by its exact bits."""
    return math.isnan(value) and _UINT64.unpack(_DOUBLE.pack(value))[0] == STALE_NAN_BITS
