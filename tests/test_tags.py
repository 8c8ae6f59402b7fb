"""Every wire constant in ``tags`` agrees with the protobuf schema, for 1.0, 2.0 and native histograms."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from prometheus_rw_bridge._protocol import schema as _schema
from prometheus_rw_bridge._protocol import tags as _tags

# constant -> (message class in schema, field name)
FIELDS = {
    "WRITE_TIMESERIES": ("WriteRequest", "timeseries"),
    "WRITE_METADATA": ("WriteRequest", "metadata"),
    "TS_LABEL": ("TimeSeries", "labels"),
    "TS_SAMPLE": ("TimeSeries", "samples"),
    "TS_EXEMPLAR": ("TimeSeries", "exemplars"),
    "TS_HISTOGRAM": ("TimeSeries", "histograms"),
    "LABEL_NAME": ("Label", "name"),
    "LABEL_VALUE": ("Label", "value"),
    "SAMPLE_VALUE": ("Sample", "value"),
    "SAMPLE_TIMESTAMP": ("Sample", "timestamp"),
    "EXEMPLAR_LABEL": ("Exemplar", "labels"),
    "EXEMPLAR_VALUE": ("Exemplar", "value"),
    "EXEMPLAR_TIMESTAMP": ("Exemplar", "timestamp"),
    "METADATA_TYPE": ("MetricMetadata", "type"),
    "METADATA_FAMILY_NAME": ("MetricMetadata", "metric_family_name"),
    "METADATA_HELP": ("MetricMetadata", "help"),
    "METADATA_UNIT": ("MetricMetadata", "unit"),
    "V2_REQUEST_SYMBOL": ("V2Request", "symbols"),
    "V2_REQUEST_TIMESERIES": ("V2Request", "timeseries"),
    "V2_TS_LABELS_REFS": ("V2TimeSeries", "labels_refs"),
    "V2_TS_SAMPLE": ("V2TimeSeries", "samples"),
    "V2_TS_HISTOGRAM": ("V2TimeSeries", "histograms"),
    "V2_TS_EXEMPLAR": ("V2TimeSeries", "exemplars"),
    "V2_TS_METADATA": ("V2TimeSeries", "metadata"),
    "V2_SAMPLE_START": ("V2Sample", "start_timestamp"),
    "V2_EXEMPLAR_LABELS_REFS": ("V2Exemplar", "labels_refs"),
    "V2_METADATA_TYPE": ("V2Metadata", "type"),
    "V2_METADATA_HELP_REF": ("V2Metadata", "help_ref"),
    "V2_METADATA_UNIT_REF": ("V2Metadata", "unit_ref"),
    "HIST_COUNT_INT": ("Histogram", "count_int"),
    "HIST_COUNT_FLOAT": ("Histogram", "count_float"),
    "HIST_SUM": ("Histogram", "sum"),
    "HIST_SCHEMA": ("Histogram", "schema"),
    "HIST_ZERO_THRESHOLD": ("Histogram", "zero_threshold"),
    "HIST_ZERO_COUNT_INT": ("Histogram", "zero_count_int"),
    "HIST_ZERO_COUNT_FLOAT": ("Histogram", "zero_count_float"),
    "HIST_NEGATIVE_SPANS": ("Histogram", "negative_spans"),
    "HIST_NEGATIVE_DELTAS": ("Histogram", "negative_deltas"),
    "HIST_NEGATIVE_COUNTS": ("Histogram", "negative_counts"),
    "HIST_POSITIVE_SPANS": ("Histogram", "positive_spans"),
    "HIST_POSITIVE_DELTAS": ("Histogram", "positive_deltas"),
    "HIST_POSITIVE_COUNTS": ("Histogram", "positive_counts"),
    "HIST_RESET_HINT": ("Histogram", "reset_hint"),
    "HIST_TIMESTAMP": ("Histogram", "timestamp"),
    "SPAN_OFFSET": ("BucketSpan", "offset"),
    "SPAN_LENGTH": ("BucketSpan", "length"),
}

_FIXED64 = {FieldDescriptor.TYPE_DOUBLE}
_LENGTH_DELIMITED = {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE}


def _tag(descriptor: FieldDescriptor) -> int:
    repeated = getattr(descriptor, "is_repeated", None)  # protobuf >= 6.31; older ones have label
    if repeated is None:
        repeated = descriptor.label == FieldDescriptor.LABEL_REPEATED
    packed = repeated and descriptor.type not in _LENGTH_DELIMITED
    if packed or descriptor.type in _LENGTH_DELIMITED:
        wire_type = 2
    else:
        wire_type = 1 if descriptor.type in _FIXED64 else 0
    return (descriptor.number << 3) | wire_type


@pytest.mark.parametrize(("constant", "where"), [pytest.param(k, v, id=k) for k, v in FIELDS.items()])
def test_tag_agrees_with_the_schema(constant: str, where: tuple[str, str]) -> None:
    message, field = where
    descriptor = getattr(_schema, message).DESCRIPTOR.fields_by_name[field]
    assert getattr(_tags, constant) == _tag(descriptor)


def test_every_tag_is_checked() -> None:
    names = {n for n in vars(_tags) if n.isupper() and isinstance(getattr(_tags, n), int)}
    assert names - set(FIELDS) == {"RESET_HINT_GAUGE"}


def test_the_two_byte_histogram_start_tag() -> None:
    descriptor = _schema.V2Histogram.DESCRIPTOR.fields_by_name["start_timestamp"]
    tag = _tag(descriptor)
    assert bytes([(tag & 0x7F) | 0x80, tag >> 7]) == _tags.V2_HISTOGRAM_START


def test_metric_types_match_both_schema_enums() -> None:
    v1 = _schema.MetricMetadata.DESCRIPTOR.enum_types_by_name["MetricType"]
    v2 = _schema.V2Metadata.DESCRIPTOR.enum_types_by_name["MetricType"]
    for number, word in enumerate(_tags.METRIC_TYPE_NAMES):
        assert v1.values_by_number[number].name == word.upper()
        assert v2.values_by_number[number].name.endswith("UNSPECIFIED" if number == 0 else word.upper())
    assert _tags.METRIC_TYPES["untyped"] == 0
    reset = _schema.Histogram.DESCRIPTOR.enum_types_by_name["ResetHint"]
    assert reset.values_by_number[_tags.RESET_HINT_GAUGE].name == "GAUGE"
