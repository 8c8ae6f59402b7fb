"""One OpenTelemetry data point -> prometheus_client samples.  Pure: no I/O, no threads.

The per-point half of :mod:`.convert`: each function takes a family name, an SDK data point
and its labels (attributes, resource and scope labels already merged) and yields the samples
a Prometheus scrape of the same data would store, each with the point's own timestamp.  A
point that cannot be converted raises :class:`Refused`, whose message says why.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import samples as _pc_samples
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

from .._protocol.wire import STALE_NAN
from .names import labels_from_attributes

__all__ = [
    "Refused",
    "counter_samples",
    "gauge_samples",
    "histogram_samples",
    "native_histograms_supported",
    "native_samples",
    "prometheus_client_version",
    "seconds",
]

# prometheus_client >= 0.22 has native histograms, >= 0.23 exemplars on them.
_NativeHistogram: Any = getattr(_pc_samples, "NativeHistogram", None)
_BucketSpan: Any = getattr(_pc_samples, "BucketSpan", None)
_NATIVE_EXEMPLARS = _NativeHistogram is not None and "nh_exemplars" in _NativeHistogram._fields

_NO_RECORDED_VALUE = 1  # DataPointFlags.NO_RECORDED_VALUE
_MIN_SCHEMA, _MAX_SCHEMA = -4, 8
_ZERO_THRESHOLD = 1e-128  # the specification's default when the point has none
_EXEMPLAR_RUNES = 128  # OpenMetrics: exemplar label names and values together


class Refused(Exception):
    """A data point that cannot be converted; its message is the reason."""


def native_histograms_supported() -> bool:
    """Tell whether the installed prometheus_client can carry native histograms (0.22 or later)."""
    return _NativeHistogram is not None


def prometheus_client_version() -> str:
    """Return the installed prometheus_client's version, for messages."""
    try:
        return version("prometheus_client")
    except PackageNotFoundError:
        return "(version unknown)"


def seconds(time_unix_nano: int) -> float:
    """Return a timestamp in seconds that the encoders' ``to_millis`` turns back into its millisecond."""
    # ms / 1000 survives to_millis' ``int(float(t) * 1000)``; ns / 1e9 sometimes loses a millisecond.
    return (int(time_unix_nano) // 1_000_000) / 1000


def gauge_samples(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    # Exemplars on gauges and non-monotonic sums MUST be dropped (specification).
    yield _sample(name, labels, float(point.value), point.time_unix_nano)


def counter_samples(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    exemplars = _latest_exemplars(getattr(point, "exemplars", ()), lambda _: 0)
    yield _sample(name + "_total", labels, float(point.value), point.time_unix_nano, exemplars.get(0))
    yield from _created(name, point, labels)


def histogram_samples(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    bounds = list(point.explicit_bounds)
    counts = list(point.bucket_counts)
    if len(counts) != len(bounds) + 1:
        raise Refused(f"has a histogram point with {len(counts)} bucket counts for {len(bounds)} bounds")
    exemplars = _latest_exemplars(getattr(point, "exemplars", ()), lambda value: bisect_left(bounds, value))
    time = point.time_unix_nano
    cumulative = 0
    for index, (bound, count) in enumerate(zip([*bounds, float("inf")], counts, strict=True)):
        cumulative += int(count)
        bucket_labels = {**labels, "le": floatToGoString(bound)}  # type: ignore[no-untyped-call]
        yield _sample(name + "_bucket", bucket_labels, float(cumulative), time, exemplars.get(index))
    yield _sample(name + "_count", labels, float(point.count), time)
    minimum = getattr(point, "min", None)
    # Negative observations make _sum go down: then it is no counter and the specification omits it.
    if not (isinstance(minimum, (int, float)) and minimum < 0 and point.count):
        yield _sample(name + "_sum", labels, float(point.sum), time)
    yield from _created(name, point, labels)


def native_samples(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    scale = int(point.scale)
    if scale < _MIN_SCHEMA:
        raise Refused(f"has an exponential histogram point of scale {scale}, below the coarsest schema -4")
    shift = max(0, scale - _MAX_SCHEMA)
    pos_spans, pos_deltas = _sparse_buckets(point.positive.offset, point.positive.bucket_counts, shift)
    neg_spans, neg_deltas = _sparse_buckets(point.negative.offset, point.negative.bucket_counts, shift)
    empty = bool(int(getattr(point, "flags", 0) or 0) & _NO_RECORDED_VALUE)
    fields: dict[str, Any] = {
        "count_value": STALE_NAN if empty else float(point.count),
        "sum_value": STALE_NAN if empty else float(point.sum),
        "schema": scale - shift,
        "zero_threshold": float(getattr(point, "zero_threshold", 0.0) or _ZERO_THRESHOLD),
        "zero_count": float(point.zero_count),
        "pos_spans": pos_spans,
        "neg_spans": neg_spans,
        "pos_deltas": pos_deltas,
        "neg_deltas": neg_deltas,
    }
    if _NATIVE_EXEMPLARS:
        fields["nh_exemplars"] = [_exemplar(ex) for ex in getattr(point, "exemplars", ())]
    native = _NativeHistogram(**fields)
    yield _pc_samples.Sample(name, labels, native.count_value, seconds(point.time_unix_nano), None, native)


def _sparse_buckets(offset: int, counts: Sequence[int], shift: int) -> tuple[list[Any], list[int]]:
    """Turn dense OpenTelemetry buckets into native-histogram spans and count deltas.

    OpenTelemetry bucket ``i`` holds ``(base**i, base**(i+1)]``, Prometheus bucket ``i`` holds
    ``(base**(i-1), base**i]``: indices differ by one.  ``shift`` merges ``2**shift`` adjacent
    buckets (scale minus ``shift``).  Gaps of up to two empty buckets stay inside a span,
    as Prometheus itself lays buckets out.
    """
    merged: dict[int, int] = {}
    for position, count in enumerate(counts):
        if count:
            index = ((int(offset) + position) >> shift) + 1
            merged[index] = merged.get(index, 0) + int(count)
    spans: list[list[int]] = []  # [offset, length]
    deltas: list[int] = []
    previous_index = previous_count = 0
    for index in sorted(merged):
        count = merged[index]
        gap = index - previous_index - 1
        if not spans:
            spans.append([index, 1])
        elif gap > 2:
            spans.append([gap, 1])
        else:
            for _ in range(gap):  # empty buckets inside the span
                deltas.append(-previous_count)
                previous_count = 0
            spans[-1][1] += gap + 1
        deltas.append(count - previous_count)
        previous_index, previous_count = index, count
    return [_BucketSpan(offset, length) for offset, length in spans], deltas


def _created(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    start = int(getattr(point, "start_time_unix_nano", 0) or 0)
    if start > 0:
        yield _sample(name + "_created", labels, seconds(start), point.time_unix_nano)


def _sample(
    name: str, labels: dict[str, str], value: float, time_unix_nano: int, exemplar: Any = None
) -> Any:
    return _pc_samples.Sample(name, labels, value, seconds(time_unix_nano), exemplar)


def _latest_exemplars(exemplars: Sequence[Any], slot: Callable[[float], int]) -> dict[int, Any]:
    """Convert exemplars, keeping the latest for each slot (bucket index) ``slot(value)`` gives."""
    latest: dict[int, Any] = {}
    for ex in sorted(exemplars or (), key=lambda ex: int(ex.time_unix_nano or 0)):
        latest[slot(ex.value)] = ex
    return {index: _exemplar(ex) for index, ex in latest.items()}


def _exemplar(ex: Any) -> Any:
    """Convert one SDK exemplar: trace and span ids in hex, then its filtered attributes if they fit."""
    labels: dict[str, str] = {}
    if ex.trace_id:
        labels["trace_id"] = format(int(ex.trace_id), "032x")
    if ex.span_id:
        labels["span_id"] = format(int(ex.span_id), "016x")
    extra = {k: v for k, v in labels_from_attributes(ex.filtered_attributes).items() if k not in labels}
    combined = {**labels, **extra}
    if sum(len(k) + len(v) for k, v in combined.items()) <= _EXEMPLAR_RUNES:
        labels = combined
    return Exemplar(labels, float(ex.value), seconds(ex.time_unix_nano))
