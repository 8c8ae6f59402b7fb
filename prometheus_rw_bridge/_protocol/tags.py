"""The wire constants of remote write 1.0 and 2.0, in one place: field tags and metric types.

A tag is ``(field number << 3) | wire type`` (0 varint, 1 fixed64, 2 length-delimited), as
protobuf writes it before a field.  Field numbers are those of prometheus/prometheus
``prompb/types.proto`` and ``prompb/remote.proto`` (1.0, package ``prometheus``) and
``prompb/io/prometheus/write/v2/types.proto`` (2.0, package ``io.prometheus.write.v2``);
``schema`` builds the same messages as descriptors, and the tests check that both agree.
Encoders, batching, decoding and the receiver's validator all read them from here.
"""

from __future__ import annotations

# --- remote write 1.0 ---------------------------------------------------------------------
WRITE_TIMESERIES = 0x0A  # WriteRequest.timeseries = 1
WRITE_METADATA = 0x1A  # WriteRequest.metadata = 3
TS_LABEL = 0x0A  # TimeSeries.labels = 1
TS_SAMPLE = 0x12  # TimeSeries.samples = 2
TS_EXEMPLAR = 0x1A  # TimeSeries.exemplars = 3
TS_HISTOGRAM = 0x22  # TimeSeries.histograms = 4
LABEL_NAME = 0x0A  # Label.name = 1
LABEL_VALUE = 0x12  # Label.value = 2
SAMPLE_VALUE = 0x09  # Sample.value = 1 (double)
SAMPLE_TIMESTAMP = 0x10  # Sample.timestamp = 2 (int64)
EXEMPLAR_LABEL = 0x0A  # Exemplar.labels = 1
EXEMPLAR_VALUE = 0x11  # Exemplar.value = 2 (double)
EXEMPLAR_TIMESTAMP = 0x18  # Exemplar.timestamp = 3 (int64)
METADATA_TYPE = 0x08  # MetricMetadata.type = 1 (enum)
METADATA_FAMILY_NAME = 0x12  # MetricMetadata.metric_family_name = 2
METADATA_HELP = 0x22  # MetricMetadata.help = 4
METADATA_UNIT = 0x2A  # MetricMetadata.unit = 5

# --- remote write 2.0 ---------------------------------------------------------------------
V2_REQUEST_SYMBOL = 0x22  # Request.symbols = 4
V2_REQUEST_TIMESERIES = 0x2A  # Request.timeseries = 5
V2_TS_LABELS_REFS = 0x0A  # TimeSeries.labels_refs = 1 (packed uint32)
V2_TS_SAMPLE = 0x12  # TimeSeries.samples = 2
V2_TS_HISTOGRAM = 0x1A  # TimeSeries.histograms = 3
V2_TS_EXEMPLAR = 0x22  # TimeSeries.exemplars = 4
V2_TS_METADATA = 0x2A  # TimeSeries.metadata = 5
V2_SAMPLE_START = 0x18  # Sample.start_timestamp = 3 (int64); value and timestamp as in 1.0
V2_EXEMPLAR_LABELS_REFS = 0x0A  # Exemplar.labels_refs = 1 (packed uint32)
V2_METADATA_TYPE = 0x08  # Metadata.type = 1 (enum)
V2_METADATA_HELP_REF = 0x18  # Metadata.help_ref = 3
V2_METADATA_UNIT_REF = 0x20  # Metadata.unit_ref = 4
V2_HISTOGRAM_START = b"\x88\x01"  # Histogram.start_timestamp = 17 (int64): a two-byte tag

# --- the native Histogram message, the same in both versions -----------------------------
HIST_COUNT_INT = 0x08  # count_int = 1 (uint64)
HIST_COUNT_FLOAT = 0x11  # count_float = 2 (double)
HIST_SUM = 0x19  # sum = 3 (double)
HIST_SCHEMA = 0x20  # schema = 4 (sint32)
HIST_ZERO_THRESHOLD = 0x29  # zero_threshold = 5 (double)
HIST_ZERO_COUNT_INT = 0x30  # zero_count_int = 6 (uint64)
HIST_ZERO_COUNT_FLOAT = 0x39  # zero_count_float = 7 (double)
HIST_NEGATIVE_SPANS = 0x42  # negative_spans = 8
HIST_NEGATIVE_DELTAS = 0x4A  # negative_deltas = 9 (packed sint64)
HIST_NEGATIVE_COUNTS = 0x52  # negative_counts = 10 (packed double)
HIST_POSITIVE_SPANS = 0x5A  # positive_spans = 11
HIST_POSITIVE_DELTAS = 0x62  # positive_deltas = 12 (packed sint64)
HIST_POSITIVE_COUNTS = 0x6A  # positive_counts = 13 (packed double)
HIST_RESET_HINT = 0x70  # reset_hint = 14 (enum)
HIST_TIMESTAMP = 0x78  # timestamp = 15 (int64)
SPAN_OFFSET = 0x08  # BucketSpan.offset = 1 (sint32)
SPAN_LENGTH = 0x10  # BucketSpan.length = 2 (uint32)
RESET_HINT_GAUGE = 3  # Histogram.ResetHint.GAUGE

SERIES_TAG = {"1.0": WRITE_TIMESERIES, "2.0": V2_REQUEST_TIMESERIES}
"""The top-level field holding series, by protocol."""

# --- metric types -------------------------------------------------------------------------
METRIC_TYPE_NAMES = (
    "unknown",
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
)
"""``MetricMetadata.MetricType`` (1.0) and ``Metadata.MetricType`` (2.0), by number, as type words."""

METRIC_TYPES = {"untyped": 0, **{word: number for number, word in enumerate(METRIC_TYPE_NAMES)}}
"""Type word of the text exposition format -> metric type number, in both versions."""
