"""_wire: the hand-written protobuf primitives agree byte for byte with the protobuf runtime."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrape import bits

from prometheus_rw_bridge._protocol import schema as _schema
from prometheus_rw_bridge._protocol import tags as _tags
from prometheus_rw_bridge._protocol import wire as _wire

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        pytest.param(0, b"\x00", id="zero"),
        pytest.param(1, b"\x01", id="one"),
        pytest.param(127, b"\x7f", id="127"),
        pytest.param(128, b"\x80\x01", id="128"),
        pytest.param(300, b"\xac\x02", id="300"),
        pytest.param(2**63 - 1, b"\xff" * 8 + b"\x7f", id="int64-max"),
        pytest.param(-1, b"\xff" * 9 + b"\x01", id="minus-one"),
        pytest.param(-(2**63), b"\x80" * 9 + b"\x01", id="int64-min"),
    ],
)
def test_varint_known_values(value: int, encoded: bytes) -> None:
    assert _wire.varint(value) == encoded


@given(INT64)
def test_timestamp_suffix_matches_protobuf_int64(timestamp: int) -> None:
    suffix = _wire.timestamp_suffix(timestamp)
    assert _schema.Sample.FromString(suffix).timestamp == timestamp
    if timestamp:  # proto3 leaves a zero out; writing it explicitly is just as valid
        assert suffix == _schema.Sample(timestamp=timestamp).SerializeToString()


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1).filter(bool))
def test_zigzag_matches_protobuf_sint32(offset: int) -> None:
    expected = _schema.BucketSpan(offset=offset).SerializeToString()
    assert b"\x08" + _wire.varint(_wire.zigzag(offset)) == expected


@given(st.text(min_size=1), st.text(min_size=1))
def test_label_matches_protobuf(name: str, value: str) -> None:
    expected = _schema.Label(name=name, value=value).SerializeToString()
    assert _wire.label(name.encode(), value.encode()) == expected


def test_labels_parse_as_repeated_label_fields() -> None:
    pairs = [(b"__name__", b"up"), (b"job", b"j\xc3\xbc")]
    ts = _schema.TimeSeries.FromString(_wire.labels(pairs))
    assert [(lab.name, lab.value) for lab in ts.labels] == [("__name__", "up"), ("job", "jü")]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0.0, id="zero"),
        pytest.param(-0.0, id="-0.0"),
        pytest.param(1.5, id="1.5"),
        pytest.param(math.inf, id="+inf"),
        pytest.param(-math.inf, id="-inf"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(struct.unpack("<d", struct.pack("<Q", 0x7FF8DEADBEEF0001))[0], id="nan-payload"),
        pytest.param(_wire.STALE_NAN, id="stale-nan"),
        pytest.param(5e-324, id="subnormal"),
    ],
)
def test_sample_entry_keeps_value_bits(value: float) -> None:
    entry = _wire.sample_entry(_wire.labels([(b"__name__", b"x")]), value, 1234)
    (ts,) = _schema.WriteRequest.FromString(entry).timeseries
    (sample,) = ts.samples
    assert bits(sample.value) == bits(value)
    assert sample.timestamp == 1234


def test_sample_entry_matches_protobuf_serialisation() -> None:
    msg = _schema.WriteRequest()
    ts = msg.timeseries.add()
    ts.labels.add(name="__name__", value="x")
    ts.samples.add(value=2.5, timestamp=1_700_000_000_000)
    entry = _wire.sample_entry(_wire.labels([(b"__name__", b"x")]), 2.5, 1_700_000_000_000)
    assert entry == msg.SerializeToString()


def test_sample_entry_negative_timestamp_round_trips() -> None:
    entry = _wire.sample_entry(b"", 1.0, -5)
    assert _schema.WriteRequest.FromString(entry).timeseries[0].samples[0].timestamp == -5


def test_exemplar_fields() -> None:
    labels = _wire.labels([(b"trace_id", b"abc")], _tags.EXEMPLAR_LABEL)
    ts = _schema.TimeSeries.FromString(_wire.exemplar(labels, 0.25, 1_700_000_000_001))
    (ex,) = ts.exemplars
    assert [(lab.name, lab.value) for lab in ex.labels] == [("trace_id", "abc")]
    assert (ex.value, ex.timestamp) == (0.25, 1_700_000_000_001)


@pytest.mark.parametrize(
    ("mtype", "name", "help_text", "unit"),
    [
        pytest.param("counter", "c_total", "Help ✓", "", id="counter"),
        pytest.param("unknown", "u", "", "", id="unknown-all-defaults"),
        pytest.param("gauge", "g_bytes", "Bytes.", "bytes", id="unit"),
        pytest.param("stateset", "s", "x\ny", "", id="stateset"),
    ],
)
def test_metadata_entry_matches_protobuf(mtype: str, name: str, help_text: str, unit: str) -> None:
    msg = _schema.WriteRequest()
    msg.metadata.add(type=_tags.METRIC_TYPES[mtype], metric_family_name=name, help=help_text, unit=unit)
    assert _wire.metadata_entry(_tags.METRIC_TYPES[mtype], name, help_text, unit) == msg.SerializeToString()


def test_stale_nan_bits() -> None:
    assert _wire.STALE_NAN_BITS == 0x7FF0000000000002
    assert bits(_wire.STALE_NAN) == 0x7FF0000000000002
    assert math.isnan(_wire.STALE_NAN)


@pytest.mark.parametrize(
    ("value", "stale"),
    [
        pytest.param(_wire.STALE_NAN, True, id="stale-nan"),
        pytest.param(float("nan"), False, id="ordinary-nan"),
        pytest.param(
            struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000001))[0], False, id="other-signalling-nan"
        ),
        pytest.param(
            struct.unpack("<d", struct.pack("<Q", 0xFFF0000000000002))[0], False, id="negative-stale-bits"
        ),
        pytest.param(0.0, False, id="zero"),
        pytest.param(math.inf, False, id="inf"),
    ],
)
def test_is_stale_nan(value: float, stale: bool) -> None:
    assert _wire.is_stale_nan(value) is stale


def test_stale_nan_survives_a_python_round_trip() -> None:
    # Copying through a list, a struct and float() must not quieten the signalling NaN.
    values = [_wire.STALE_NAN]
    copied = float(struct.unpack("<d", struct.pack("<d", values[0]))[0])
    assert _wire.is_stale_nan(copied)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(2**64, id="uint64-max-plus-one"),
        pytest.param(10**21, id="timestamp-in-ms-of-1e18-seconds"),
        pytest.param(-(2**63) - 1, id="int64-min-minus-one"),
    ],
)
def test_varint_refuses_what_no_64_bit_field_holds(value: int) -> None:
    """A longer varint would make the whole request undecodable, so it must never be written."""
    with pytest.raises(OverflowError):
        _wire.varint(value)


def test_varint_keeps_the_whole_uint64_range() -> None:
    assert _wire.varint(2**64 - 1) == b"\xff" * 9 + b"\x01"


@pytest.mark.parametrize("value", [pytest.param(2**63, id="above"), pytest.param(-(2**63) - 1, id="below")])
def test_zigzag_refuses_what_sint64_cannot_hold(value: int) -> None:
    with pytest.raises(OverflowError):
        _wire.zigzag(value)
