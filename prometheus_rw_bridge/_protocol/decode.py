"""Compressed remote-write body -> plain Python objects, decoded with the protobuf schema.

For tests, the command line's receiver, and users checking what they send.  Needs protobuf
at run time (the encoder does not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import MissingDependencyError
from . import snappy as _snappy
from .tags import METRIC_TYPE_NAMES

__all__ = [
    "DecodedExemplar",
    "DecodedMetadata",
    "DecodedRequest",
    "DecodedSample",
    "DecodedSeries",
    "decode_write_request",
]

@dataclass(frozen=True)
class DecodedSample:
    """One sample: a float64 value (bit-exact) and its int64 millisecond timestamp."""

    value: float
    timestamp_ms: int
    start_timestamp_ms: int = 0


@dataclass(frozen=True)
class DecodedExemplar:
    """One exemplar attached to a series."""

    labels: dict[str, str]
    value: float
    timestamp_ms: int


@dataclass
class DecodedSeries:
    """One ``TimeSeries``: labels in wire order, samples, exemplars and native histograms."""

    labels: dict[str, str]
    samples: list[DecodedSample] = field(default_factory=list)
    exemplars: list[DecodedExemplar] = field(default_factory=list)
    histograms: list[Any] = field(default_factory=list)
    label_pairs: list[tuple[str, str]] = field(default_factory=list)
    metadata: DecodedMetadata | None = None

    @property
    def name(self) -> str:
        """The series' ``__name__``."""
        return self.labels.get("__name__", "")


@dataclass(frozen=True)
class DecodedMetadata:
    """One ``MetricMetadata`` entry (1.0) or a series' ``Metadata`` (2.0)."""

    metric_family_name: str
    type: str
    help: str
    unit: str


@dataclass
class DecodedRequest:
    """A decoded request: its series and metadata, and the protocol it was decoded as."""

    series: list[DecodedSeries]
    metadata: list[DecodedMetadata]
    protocol: str = "1.0"
    symbols: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        """Render the series one per line, like the exposition format with millisecond timestamps."""
        lines = []
        for series in self.series:
            labels = ",".join(
                f'{k}="{_escape(v)}"' for k, v in sorted(series.labels.items()) if k != "__name__"
            )
            name = series.name + (f"{{{labels}}}" if labels else "")
            for sample in series.samples:
                lines.append(f"{name} {_format_value(sample.value)} {sample.timestamp_ms}")
            for hist in series.histograms:
                lines.append(
                    f"{name} <native histogram count={_hist_count(hist)} sum={hist.sum}> {hist.timestamp}"
                )
        return "\n".join(lines) + ("\n" if lines else "")


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _format_value(value: float) -> str:
    if math.isnan(value):
        from .wire import is_stale_nan

        return "StaleNaN" if is_stale_nan(value) else "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _hist_count(hist: Any) -> float:
    return float(hist.count_int if hist.WhichOneof("count") == "count_int" else hist.count_float)


def _schema() -> Any:
    try:
        from . import schema as _schema
    except ImportError as exc:
        raise MissingDependencyError("protobuf", "decoding remote-write requests") from exc
    return _schema


def decode_write_request(body: bytes, *, compressed: bool = True, protocol: str = "1.0") -> DecodedRequest:
    """Decode a remote-write request body into series and metadata.

    Args:
        body: the request body as sent on the wire.
        compressed: whether ``body`` is snappy (block) compressed, as on the wire.
        protocol: ``"1.0"`` for ``prometheus.WriteRequest``, ``"2.0"`` for
            ``io.prometheus.write.v2.Request``.

    Returns:
        The decoded request.

    Raises:
        ValueError: the body is not block snappy, or not a valid message of that protocol.
    """
    raw = _snappy.decompress(body) if compressed else body
    schema = _schema()
    if protocol == "2.0":
        return _decode_v2(schema, raw)
    if protocol != "1.0":
        raise ValueError(f"protocol must be '1.0' or '2.0', not {protocol!r}")
    try:
        message = schema.WriteRequest.FromString(raw)
    except Exception as exc:
        raise ValueError(f"body is not a valid prometheus.WriteRequest: {exc}") from exc
    series = []
    for ts in message.timeseries:
        pairs = [(lab.name, lab.value) for lab in ts.labels]
        series.append(
            DecodedSeries(
                labels=dict(pairs),
                label_pairs=pairs,
                samples=[DecodedSample(s.value, s.timestamp) for s in ts.samples],
                exemplars=[
                    DecodedExemplar({lab.name: lab.value for lab in ex.labels}, ex.value, ex.timestamp)
                    for ex in ts.exemplars
                ],
                histograms=list(ts.histograms),
            )
        )
    metadata = [
        DecodedMetadata(md.metric_family_name, _type_name(md.type), md.help, md.unit)
        for md in message.metadata
    ]
    return DecodedRequest(series=series, metadata=metadata, protocol="1.0")


def _type_name(number: int) -> str:
    return METRIC_TYPE_NAMES[number] if 0 <= number < len(METRIC_TYPE_NAMES) else str(number)


def _decode_v2(schema: Any, raw: bytes) -> DecodedRequest:
    """Decode an ``io.prometheus.write.v2.Request``, resolving every symbol reference."""
    try:
        message = schema.V2Request.FromString(raw)
    except Exception as exc:
        raise ValueError(f"body is not a valid io.prometheus.write.v2.Request: {exc}") from exc
    symbols = list(message.symbols)

    def sym(ref: int) -> str:
        if not 0 <= ref < len(symbols):
            raise ValueError(f"symbol reference {ref} is out of range (the table has {len(symbols)} entries)")
        return str(symbols[ref])

    def pairs_of(refs: Any) -> list[tuple[str, str]]:
        if len(refs) % 2:
            raise ValueError("labels_refs has an odd number of entries")
        return [(sym(refs[i]), sym(refs[i + 1])) for i in range(0, len(refs), 2)]

    series = []
    for ts in message.timeseries:
        pairs = pairs_of(ts.labels_refs)
        md = ts.metadata
        series.append(
            DecodedSeries(
                labels=dict(pairs),
                label_pairs=pairs,
                samples=[
                    DecodedSample(s.value, s.timestamp, getattr(s, "start_timestamp", 0)) for s in ts.samples
                ],
                exemplars=[
                    DecodedExemplar(dict(pairs_of(ex.labels_refs)), ex.value, ex.timestamp)
                    for ex in ts.exemplars
                ],
                histograms=list(ts.histograms),
                metadata=DecodedMetadata(
                    dict(pairs).get("__name__", ""), _type_name(md.type), sym(md.help_ref), sym(md.unit_ref)
                ),
            )
        )
    return DecodedRequest(series=series, metadata=[], protocol="2.0", symbols=symbols)
