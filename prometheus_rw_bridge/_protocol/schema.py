"""The remote-write protobuf schemas, built at import time into a private descriptor pool.

The encoder writes protobuf bytes by hand (see ``_wire``) and does not need this module;
decoding, the validating receiver and the tests do.  Building descriptors from Python
(rather than shipping ``protoc`` output) keeps us off the generated-code version checks,
so every protobuf runtime from 4.21 on works, and a private pool never clashes with
another library that registered its own copy of ``prometheus.WriteRequest``.

The field numbers follow prometheus/prometheus ``prompb/types.proto``, ``prompb/remote.proto``
(remote-write 1.0, package ``prometheus``) and ``prompb/io/prometheus/write/v2/types.proto``
(remote-write 2.0, package ``io.prometheus.write.v2``).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool

from .tags import METRIC_TYPE_NAMES

_TYPES_1_ON = METRIC_TYPE_NAMES[1:]

_F = descriptor_pb2.FieldDescriptorProto

_OPTIONAL = _F.LABEL_OPTIONAL
_REPEATED = _F.LABEL_REPEATED

_TYPES = {
    "double": _F.TYPE_DOUBLE,
    "int64": _F.TYPE_INT64,
    "uint64": _F.TYPE_UINT64,
    "uint32": _F.TYPE_UINT32,
    "sint32": _F.TYPE_SINT32,
    "sint64": _F.TYPE_SINT64,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

def _fields(spec: str) -> list[tuple[str, int, str, bool, int | None]]:
    """Parse ``"[*]name number type[/oneof], ..."``: ``*`` repeated, ``/N`` in oneof N.

    A type not in ``_TYPES`` is a message or enum name, resolved relative to the package.
    """
    out = []
    for item in spec.split(","):
        name, number, ftype = item.split()
        ftype, _, oneof = ftype.partition("/")
        repeated = name.startswith("*")
        out.append((name.lstrip("*"), int(number), ftype, repeated, int(oneof) if oneof else None))
    return out


def _message(
    file: descriptor_pb2.FileDescriptorProto,
    name: str,
    spec: str,
    *,
    enums: dict[str, list[str]] | None = None,
    oneofs: tuple[str, ...] = (),
    reserved: tuple[tuple[int, int], ...] = (),
) -> None:
    """Add one message type, its fields given as :func:`_fields` parses them, to ``file``."""
    msg = file.message_type.add(name=name)
    for enum_name, values in (enums or {}).items():
        enum = msg.enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    for oneof in oneofs:
        msg.oneof_decl.add(name=oneof)
    for start, end in reserved:
        msg.reserved_range.add(start=start, end=end + 1)
    for fname, number, ftype, repeated, oneof_index in _fields(spec):
        field = msg.field.add(name=fname, number=number, label=_REPEATED if repeated else _OPTIONAL)
        if ftype in _TYPES:
            field.type = _TYPES[ftype]
        elif ftype in (enums or {}):
            field.type = _F.TYPE_ENUM
            field.type_name = f".{file.package}.{name}.{ftype}"
        else:
            field.type = _F.TYPE_MESSAGE
            field.type_name = f".{file.package}.{ftype}"
        if oneof_index is not None:
            field.oneof_index = oneof_index


_HISTOGRAM = (
    "count_int 1 uint64/0, count_float 2 double/0, sum 3 double, schema 4 sint32, zero_threshold 5 double,"
    "zero_count_int 6 uint64/1, zero_count_float 7 double/1, *negative_spans 8 BucketSpan,"
    "*negative_deltas 9 sint64, *negative_counts 10 double, *positive_spans 11 BucketSpan,"
    "*positive_deltas 12 sint64, *positive_counts 13 double, reset_hint 14 ResetHint, timestamp 15 int64,"
    "*custom_values 16 double"
)


def _histogram(file: descriptor_pb2.FileDescriptorProto, reset_hints: list[str], extra: str = "") -> None:
    """Add ``BucketSpan`` and the native ``Histogram`` message (with ``extra`` fields) to ``file``."""
    _message(file, "BucketSpan", "offset 1 sint32, length 2 uint32")
    spec = _HISTOGRAM + ("," + extra if extra else "")
    _message(file, "Histogram", spec, enums={"ResetHint": reset_hints}, oneofs=("count", "zero_count"))


def _v1_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="prometheus_rw_bridge/prometheus/remote.proto", package="prometheus", syntax="proto3"
    )
    types = {"MetricType": [word.upper() for word in METRIC_TYPE_NAMES]}
    metadata = "type 1 MetricType, metric_family_name 2 string, help 4 string, unit 5 string"
    _message(file, "MetricMetadata", metadata, enums=types)
    _message(file, "Sample", "value 1 double, timestamp 2 int64")
    _message(file, "Label", "name 1 string, value 2 string")
    _message(file, "Exemplar", "*labels 1 Label, value 2 double, timestamp 3 int64")
    _histogram(file, ["UNKNOWN", "YES", "NO", "GAUGE"])
    series = "*labels 1 Label, *samples 2 Sample, *exemplars 3 Exemplar, *histograms 4 Histogram"
    _message(file, "TimeSeries", series)
    _message(file, "WriteRequest", "*timeseries 1 TimeSeries, *metadata 3 MetricMetadata", reserved=((2, 2),))
    return file


def _v2_file() -> descriptor_pb2.FileDescriptorProto:
    """Build ``io.prometheus.write.v2`` as of spec 2.0-rc.4.

    Since rc.4 the start ("created") timestamp lives in ``Sample.start_timestamp`` (3) and
    ``Histogram.start_timestamp`` (17); ``TimeSeries.created_timestamp`` (6) is gone and
    reserved, as are ``Request`` fields 1 to 3 (so a 1.0 decoder reads a 2.0 body as empty).
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="prometheus_rw_bridge/io/prometheus/write/v2/types.proto",
        package="io.prometheus.write.v2",
        syntax="proto3",
    )
    types = {"MetricType": ["METRIC_TYPE_UNSPECIFIED"] + [f"METRIC_TYPE_{w.upper()}" for w in _TYPES_1_ON]}
    _message(file, "Sample", "value 1 double, timestamp 2 int64, start_timestamp 3 int64")
    _message(file, "Exemplar", "*labels_refs 1 uint32, value 2 double, timestamp 3 int64")
    _message(file, "Metadata", "type 1 MetricType, help_ref 3 uint32, unit_ref 4 uint32", enums=types)
    hints = ["RESET_HINT_UNSPECIFIED", "RESET_HINT_YES", "RESET_HINT_NO", "RESET_HINT_GAUGE"]
    _histogram(file, hints, extra="start_timestamp 17 int64")  # 2.0 only, since rc.4
    series = "*labels_refs 1 uint32, *samples 2 Sample, *histograms 3 Histogram, *exemplars 4 Exemplar"
    _message(file, "TimeSeries", series + ", metadata 5 Metadata", reserved=((6, 6),))
    _message(file, "Request", "*symbols 4 string, *timeseries 5 TimeSeries", reserved=((1, 3),))
    return file


def _message_classes(pool: descriptor_pool.DescriptorPool, names: list[str]) -> dict[str, Any]:
    """Return concrete message classes for ``names``, on old and new protobuf runtimes alike."""
    try:
        from google.protobuf.message_factory import GetMessageClass  # protobuf >= 4.22
    except ImportError:  # pragma: no cover - protobuf 4.21
        from google.protobuf.message_factory import MessageFactory

        factory = MessageFactory(pool)
        return {name: factory.GetPrototype(pool.FindMessageTypeByName(name)) for name in names}  # type: ignore[attr-defined,unused-ignore]
    return {name: GetMessageClass(pool.FindMessageTypeByName(name)) for name in names}


POOL = descriptor_pool.DescriptorPool()
POOL.Add(_v1_file())
POOL.Add(_v2_file())

_classes = _message_classes(
    POOL,
    [
        "prometheus.WriteRequest",
        "prometheus.TimeSeries",
        "prometheus.Label",
        "prometheus.Sample",
        "prometheus.Exemplar",
        "prometheus.MetricMetadata",
        "prometheus.Histogram",
        "prometheus.BucketSpan",
        "io.prometheus.write.v2.Request",
        "io.prometheus.write.v2.TimeSeries",
        "io.prometheus.write.v2.Sample",
        "io.prometheus.write.v2.Exemplar",
        "io.prometheus.write.v2.Metadata",
        "io.prometheus.write.v2.Histogram",
        "io.prometheus.write.v2.BucketSpan",
    ],
)

WriteRequest: Any = _classes["prometheus.WriteRequest"]
TimeSeries: Any = _classes["prometheus.TimeSeries"]
Label: Any = _classes["prometheus.Label"]
Sample: Any = _classes["prometheus.Sample"]
Exemplar: Any = _classes["prometheus.Exemplar"]
MetricMetadata: Any = _classes["prometheus.MetricMetadata"]
Histogram: Any = _classes["prometheus.Histogram"]
BucketSpan: Any = _classes["prometheus.BucketSpan"]

V2Request: Any = _classes["io.prometheus.write.v2.Request"]
V2TimeSeries: Any = _classes["io.prometheus.write.v2.TimeSeries"]
V2Sample: Any = _classes["io.prometheus.write.v2.Sample"]
V2Exemplar: Any = _classes["io.prometheus.write.v2.Exemplar"]
V2Metadata: Any = _classes["io.prometheus.write.v2.Metadata"]
V2Histogram: Any = _classes["io.prometheus.write.v2.Histogram"]
V2BucketSpan: Any = _classes["io.prometheus.write.v2.BucketSpan"]
