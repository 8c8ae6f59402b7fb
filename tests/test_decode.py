"""decode_write_request: bodies built with the protobuf schema (not our encoder) decode faithfully."""

from __future__ import annotations

import math
import struct

import cramjam
import pytest
from scrape import bits

from prometheus_rw_bridge import STALE_NAN, DecodedMetadata, DecodedSample, decode_write_request, is_stale_nan
from prometheus_rw_bridge._protocol import schema as _schema


def _request() -> bytes:
    """An uncompressed WriteRequest built with the protobuf runtime."""
    msg = _schema.WriteRequest()
    ts = msg.timeseries.add()
    for name, value in [("__name__", "http_requests_total"), ("code", "200"), ("job", "api")]:
        ts.labels.add(name=name, value=value)
    ts.samples.add(value=3.0, timestamp=1_700_000_000_000)
    ts.samples.add(value=4.0, timestamp=1_700_000_015_000)
    ex = ts.exemplars.add(value=0.5, timestamp=1_700_000_000_001)
    ex.labels.add(name="trace_id", value="abc")
    ts2 = msg.timeseries.add()
    ts2.labels.add(name="__name__", value="temp")
    ts2.labels.add(name="room", value='a"b\\c\nd')
    ts2.samples.add(value=STALE_NAN, timestamp=7)
    ts2.samples.add(value=float("nan"), timestamp=8)
    ts2.samples.add(value=-math.inf, timestamp=9)
    msg.metadata.add(type=1, metric_family_name="http_requests_total", help="Requests.", unit="")
    msg.metadata.add(type=2, metric_family_name="temp", help="", unit="celsius")
    return bytes(msg.SerializeToString())


def test_series_labels_samples_exemplars() -> None:
    decoded = decode_write_request(bytes(cramjam.snappy.compress_raw(_request())))
    assert decoded.protocol == "1.0"
    first, second = decoded.series
    assert first.name == "http_requests_total"
    assert first.labels == {"__name__": "http_requests_total", "code": "200", "job": "api"}
    assert first.label_pairs == [("__name__", "http_requests_total"), ("code", "200"), ("job", "api")]
    assert first.samples == [DecodedSample(3.0, 1_700_000_000_000), DecodedSample(4.0, 1_700_000_015_000)]
    (ex,) = first.exemplars
    assert (ex.labels, ex.value, ex.timestamp_ms) == ({"trace_id": "abc"}, 0.5, 1_700_000_000_001)
    assert second.labels["room"] == 'a"b\\c\nd'


def test_values_bit_exact_and_stale_marker_recognised() -> None:
    decoded = decode_write_request(_request(), compressed=False)
    stale, nan, neg_inf = decoded.series[1].samples
    assert is_stale_nan(stale.value) and bits(stale.value) == 0x7FF0000000000002
    assert math.isnan(nan.value) and not is_stale_nan(nan.value)
    assert neg_inf.value == -math.inf


def test_metadata() -> None:
    decoded = decode_write_request(_request(), compressed=False)
    assert decoded.metadata == [
        DecodedMetadata("http_requests_total", "counter", "Requests.", ""),
        DecodedMetadata("temp", "gauge", "", "celsius"),
    ]


def test_to_text() -> None:
    text = decode_write_request(_request(), compressed=False).to_text()
    assert text.splitlines() == [
        'http_requests_total{code="200",job="api"} 3.0 1700000000000',
        'http_requests_total{code="200",job="api"} 4.0 1700000015000',
        'temp{room="a\\"b\\\\c\\nd"} StaleNaN 7',
        'temp{room="a\\"b\\\\c\\nd"} NaN 8',
        'temp{room="a\\"b\\\\c\\nd"} -Inf 9',
    ]


def test_empty_body_is_an_empty_request() -> None:
    decoded = decode_write_request(bytes(cramjam.snappy.compress_raw(b"")))
    assert decoded.series == [] and decoded.metadata == []
    assert decoded.to_text() == ""


def test_framed_snappy_is_refused() -> None:
    framed = bytes(cramjam.snappy.compress(_request()))
    with pytest.raises(ValueError, match="framed"):
        decode_write_request(framed)


def test_not_snappy_is_refused() -> None:
    with pytest.raises(ValueError, match="snappy"):
        decode_write_request(b"\xff\xff\xff\xff\xff definitely not snappy")


def test_not_a_write_request_is_refused() -> None:
    garbage = b"\x0a\x05\x0a\x03\x0a"  # a timeseries whose label is cut short
    with pytest.raises(ValueError, match="WriteRequest"):
        decode_write_request(garbage, compressed=False)


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="protocol"):
        decode_write_request(_request(), compressed=False, protocol="1.1")


def test_signalling_nan_payloads_are_not_quietened() -> None:
    weird = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000BAD))[0]
    msg = _schema.WriteRequest()
    ts = msg.timeseries.add()
    ts.labels.add(name="__name__", value="x")
    ts.samples.add(value=weird, timestamp=1)
    decoded = decode_write_request(msg.SerializeToString(), compressed=False)
    assert bits(decoded.series[0].samples[0].value) == 0x7FF0000000000BAD
