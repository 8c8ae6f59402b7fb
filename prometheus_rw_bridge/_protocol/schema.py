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

# (name, number, type, repeated, oneof index or None); a type not in _TYPES is a message or
# enum name, resolved relative to the file's package.
_Field = tuple[str, int, str, bool, "int | None"]


def _message(
    file: descriptor_pb2.FileDescriptorProto,
    name: str,
    fields: list[_Field],
    *,
    enums: dict[str, list[str]] | None = None,
    oneofs: tuple[str, ...] = (),
    reserved: tuple[tuple[int, int], ...] = (),
) -> None:
    """Add one message type to ``file``."""
    msg = file.message_type.add(name=name)
    for enum_name, values in (enums or {}).items():
        enum = msg.enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    for oneof in oneofs:
        msg.oneof_decl.add(name=oneof)
    for start, end in reserved:
        msg.reserved_range.add(start=start, end=end + 1)
    enum_names = set(enums or ())
    for fname, number, ftype, repeated, oneof_index in fields:
        field = msg.field.add(
            name=fname,
            number=number,
            label=_REPEATED if repeated else _OPTIONAL,
        )
        if ftype in _TYPES:
            field.type = _TYPES[ftype]
        elif ftype in enum_names:
            field.type = _F.TYPE_ENUM
            field.type_name = f".{file.package}.{name}.{ftype}"
        else:
            field.type = _F.TYPE_MESSAGE
            field.type_name = f".{file.package}.{ftype}"
        if oneof_index is not None:
            field.oneof_index = oneof_index


def _histogram(file: descriptor_pb2.FileDescriptorProto, reset_hints: list[str]) -> None:
    """Add ``BucketSpan`` and the native ``Histogram`` message, identical in both versions."""
    _message(file, "BucketSpan", [("offset", 1, "sint32", False, None), ("length", 2, "uint32", False, None)])
    _message(
        file,
        "Histogram",
        [
            ("count_int", 1, "uint64", False, 0),
            ("count_float", 2, "double", False, 0),
            ("sum", 3, "double", False, None),
            ("schema", 4, "sint32", False, None),
            ("zero_threshold", 5, "double", False, None),
            ("zero_count_int", 6, "uint64", False, 1),
            ("zero_count_float", 7, "double", False, 1),
            ("negative_spans", 8, "BucketSpan", True, None),
            ("negative_deltas", 9, "sint64", True, None),
            ("negative_counts", 10, "double", True, None),
            ("positive_spans", 11, "BucketSpan", True, None),
            ("positive_deltas", 12, "sint64", True, None),
            ("positive_counts", 13, "double", True, None),
            ("reset_hint", 14, "ResetHint", False, None),
            ("timestamp", 15, "int64", False, None),
            ("custom_values", 16, "double", True, None),
        ],
        enums={"ResetHint": reset_hints},
        oneofs=("count", "zero_count"),
    )


def _v1_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="prometheus_rw_bridge/prometheus/remote.proto", package="prometheus", syntax="proto3"
    )
    _message(
        file,
        "MetricMetadata",
        [
            ("type", 1, "MetricType", False, None),
            ("metric_family_name", 2, "string", False, None),
            ("help", 4, "string", False, None),
            ("unit", 5, "string", False, None),
        ],
        enums={"MetricType": [word.upper() for word in METRIC_TYPE_NAMES]},
    )
    _message(file, "Sample", [("value", 1, "double", False, None), ("timestamp", 2, "int64", False, None)])
    _message(file, "Label", [("name", 1, "string", False, None), ("value", 2, "string", False, None)])
    _message(
        file,
        "Exemplar",
        [
            ("labels", 1, "Label", True, None),
            ("value", 2, "double", False, None),
            ("timestamp", 3, "int64", False, None),
        ],
    )
    _histogram(file, ["UNKNOWN", "YES", "NO", "GAUGE"])
    _message(
        file,
        "TimeSeries",
        [
            ("labels", 1, "Label", True, None),
            ("samples", 2, "Sample", True, None),
            ("exemplars", 3, "Exemplar", True, None),
            ("histograms", 4, "Histogram", True, None),
        ],
    )
    _message(
        file,
        "WriteRequest",
        [("timeseries", 1, "TimeSeries", True, None), ("metadata", 3, "MetricMetadata", True, None)],
        reserved=((2, 2),),
    )
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
    _message(
        file,
        "Sample",
        [
            ("value", 1, "double", False, None),
            ("timestamp", 2, "int64", False, None),
            ("start_timestamp", 3, "int64", False, None),
        ],
    )
    _message(
        file,
        "Exemplar",
        [
            ("labels_refs", 1, "uint32", True, None),
            ("value", 2, "double", False, None),
            ("timestamp", 3, "int64", False, None),
        ],
    )
    _message(
        file,
        "Metadata",
        [
            ("type", 1, "MetricType", False, None),
            ("help_ref", 3, "uint32", False, None),
            ("unit_ref", 4, "uint32", False, None),
        ],
        enums={"MetricType": ["METRIC_TYPE_UNSPECIFIED"] + [f"METRIC_TYPE_{w.upper()}" for w in _TYPES_1_ON]},
    )
    _histogram(
        file, ["RESET_HINT_UNSPECIFIED", "RESET_HINT_YES", "RESET_HINT_NO", "RESET_HINT_GAUGE"]
    )
    # 2.0 (rc.4) gives histogram samples a start timestamp of their own; 1.0 has no such field.
    histogram = next(msg for msg in file.message_type if msg.name == "Histogram")
    histogram.field.add(name="start_timestamp", number=17, label=_OPTIONAL, type=_F.TYPE_INT64)
    _message(
        file,
        "TimeSeries",
        [
            ("labels_refs", 1, "uint32", True, None),
            ("samples", 2, "Sample", True, None),
            ("histograms", 3, "Histogram", True, None),
            ("exemplars", 4, "Exemplar", True, None),
            ("metadata", 5, "Metadata", False, None),
        ],
        reserved=((6, 6),),
    )
    _message(
        file,
        "Request",
        [("symbols", 4, "string", True, None), ("timeseries", 5, "TimeSeries", True, None)],
        reserved=((1, 3),),
    )
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
