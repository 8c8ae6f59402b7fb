"""_schema: the runtime-built descriptors match prometheus/prometheus prompb, field for field."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from google.protobuf.descriptor import FieldDescriptor

from prometheus_rw_bridge._protocol import schema as _schema

F = FieldDescriptor

# (message, field) -> (number, type, repeated), from prompb/types.proto and prompb/remote.proto.
V1_FIELDS = {
    ("WriteRequest", "timeseries"): (1, F.TYPE_MESSAGE, True),
    ("WriteRequest", "metadata"): (3, F.TYPE_MESSAGE, True),
    ("TimeSeries", "labels"): (1, F.TYPE_MESSAGE, True),
    ("TimeSeries", "samples"): (2, F.TYPE_MESSAGE, True),
    ("TimeSeries", "exemplars"): (3, F.TYPE_MESSAGE, True),
    ("TimeSeries", "histograms"): (4, F.TYPE_MESSAGE, True),
    ("Label", "name"): (1, F.TYPE_STRING, False),
    ("Label", "value"): (2, F.TYPE_STRING, False),
    ("Sample", "value"): (1, F.TYPE_DOUBLE, False),
    ("Sample", "timestamp"): (2, F.TYPE_INT64, False),
    ("Exemplar", "labels"): (1, F.TYPE_MESSAGE, True),
    ("Exemplar", "value"): (2, F.TYPE_DOUBLE, False),
    ("Exemplar", "timestamp"): (3, F.TYPE_INT64, False),
    ("MetricMetadata", "type"): (1, F.TYPE_ENUM, False),
    ("MetricMetadata", "metric_family_name"): (2, F.TYPE_STRING, False),
    ("MetricMetadata", "help"): (4, F.TYPE_STRING, False),
    ("MetricMetadata", "unit"): (5, F.TYPE_STRING, False),
    ("Histogram", "count_int"): (1, F.TYPE_UINT64, False),
    ("Histogram", "count_float"): (2, F.TYPE_DOUBLE, False),
    ("Histogram", "sum"): (3, F.TYPE_DOUBLE, False),
    ("Histogram", "schema"): (4, F.TYPE_SINT32, False),
    ("Histogram", "zero_threshold"): (5, F.TYPE_DOUBLE, False),
    ("Histogram", "zero_count_int"): (6, F.TYPE_UINT64, False),
    ("Histogram", "zero_count_float"): (7, F.TYPE_DOUBLE, False),
    ("Histogram", "negative_spans"): (8, F.TYPE_MESSAGE, True),
    ("Histogram", "negative_deltas"): (9, F.TYPE_SINT64, True),
    ("Histogram", "negative_counts"): (10, F.TYPE_DOUBLE, True),
    ("Histogram", "positive_spans"): (11, F.TYPE_MESSAGE, True),
    ("Histogram", "positive_deltas"): (12, F.TYPE_SINT64, True),
    ("Histogram", "positive_counts"): (13, F.TYPE_DOUBLE, True),
    ("Histogram", "reset_hint"): (14, F.TYPE_ENUM, False),
    ("Histogram", "timestamp"): (15, F.TYPE_INT64, False),
    ("BucketSpan", "offset"): (1, F.TYPE_SINT32, False),
    ("BucketSpan", "length"): (2, F.TYPE_UINT32, False),
}

# io.prometheus.write.v2 (remote-write 2.0), the fields that are stable across its drafts.
V2_FIELDS = {
    ("V2Request", "symbols"): (4, F.TYPE_STRING, True),
    ("V2Request", "timeseries"): (5, F.TYPE_MESSAGE, True),
    ("V2TimeSeries", "labels_refs"): (1, F.TYPE_UINT32, True),
    ("V2TimeSeries", "samples"): (2, F.TYPE_MESSAGE, True),
    ("V2TimeSeries", "histograms"): (3, F.TYPE_MESSAGE, True),
    ("V2TimeSeries", "exemplars"): (4, F.TYPE_MESSAGE, True),
    ("V2TimeSeries", "metadata"): (5, F.TYPE_MESSAGE, False),
    ("V2Sample", "value"): (1, F.TYPE_DOUBLE, False),
    ("V2Sample", "timestamp"): (2, F.TYPE_INT64, False),
    ("V2Exemplar", "labels_refs"): (1, F.TYPE_UINT32, True),
    ("V2Exemplar", "value"): (2, F.TYPE_DOUBLE, False),
    ("V2Exemplar", "timestamp"): (3, F.TYPE_INT64, False),
    ("V2Metadata", "type"): (1, F.TYPE_ENUM, False),
    ("V2Metadata", "help_ref"): (3, F.TYPE_UINT32, False),
    ("V2Metadata", "unit_ref"): (4, F.TYPE_UINT32, False),
}


@pytest.mark.parametrize(
    ("message", "field", "expected"),
    [pytest.param(m, f, spec, id=f"{m}.{f}") for (m, f), spec in {**V1_FIELDS, **V2_FIELDS}.items()],
)
def test_field_numbers_and_types(message: str, field: str, expected: tuple[int, int, bool]) -> None:
    descriptor = getattr(_schema, message).DESCRIPTOR.fields_by_name[field]
    number, ftype, repeated = expected
    assert (descriptor.number, descriptor.type, _is_repeated(descriptor)) == (number, ftype, repeated)


def _is_repeated(descriptor: FieldDescriptor) -> bool:
    """``label`` is gone in protobuf 7; ``is_repeated`` is missing before 5.x."""
    if hasattr(descriptor, "is_repeated"):
        return bool(descriptor.is_repeated)
    return bool(descriptor.label == F.LABEL_REPEATED)


def test_v1_messages_have_no_fields_beyond_prompb() -> None:
    for message in {m for m, _ in V1_FIELDS} - {"Histogram"}:
        names = set(getattr(_schema, message).DESCRIPTOR.fields_by_name)
        assert names == {f for m, f in V1_FIELDS if m == message}, message


def test_full_names() -> None:
    assert _schema.WriteRequest.DESCRIPTOR.full_name == "prometheus.WriteRequest"
    assert _schema.V2Request.DESCRIPTOR.full_name == "io.prometheus.write.v2.Request"


def test_metric_type_enum() -> None:
    enum = _schema.MetricMetadata.DESCRIPTOR.enum_types_by_name["MetricType"]
    assert [(v.name, v.number) for v in enum.values] == [
        ("UNKNOWN", 0),
        ("COUNTER", 1),
        ("GAUGE", 2),
        ("HISTOGRAM", 3),
        ("GAUGEHISTOGRAM", 4),
        ("SUMMARY", 5),
        ("INFO", 6),
        ("STATESET", 7),
    ]


def test_histogram_count_oneofs() -> None:
    hist = _schema.Histogram(count_float=2.5, zero_count_int=3)
    parsed = _schema.Histogram.FromString(hist.SerializeToString())
    assert parsed.WhichOneof("count") == "count_float"
    assert parsed.WhichOneof("zero_count") == "zero_count_int"


def test_write_request_round_trip() -> None:
    msg = _schema.WriteRequest()
    ts = msg.timeseries.add()
    ts.labels.add(name="__name__", value="up")
    ts.samples.add(value=1.0, timestamp=5)
    ts.exemplars.add(value=0.5, timestamp=6).labels.add(name="trace_id", value="t")
    msg.metadata.add(type=2, metric_family_name="up", help="h", unit="u")
    assert _schema.WriteRequest.FromString(msg.SerializeToString()) == msg


def test_descriptors_live_in_a_private_pool() -> None:
    from google.protobuf import descriptor_pool

    assert _schema.WriteRequest.DESCRIPTOR.file.pool is _schema.POOL
    assert _schema.POOL is not descriptor_pool.Default()


def test_no_clash_with_another_copy_of_the_schema_in_the_default_pool() -> None:
    """A library that registered its own ``prometheus.WriteRequest`` first must not break us."""
    code = textwrap.dedent(
        """
        from google.protobuf import descriptor_pb2, descriptor_pool
        f = descriptor_pb2.FileDescriptorProto(name="other.proto", package="prometheus", syntax="proto3")
        m = f.message_type.add(name="WriteRequest")
        m.field.add(name="something_else", number=1, type=9, label=1)
        descriptor_pool.Default().Add(f)
        from prometheus_rw_bridge._protocol import schema as _schema
        msg = _schema.WriteRequest()
        msg.timeseries.add().labels.add(name="__name__", value="x")
        assert _schema.WriteRequest.FromString(msg.SerializeToString()).timeseries[0].labels[0].value == "x"
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_protobuf_runtime_is_in_the_supported_range() -> None:
    import google.protobuf

    major, minor = (int(part) for part in google.protobuf.__version__.split(".")[:2])
    assert (major, minor) >= (4, 21)
