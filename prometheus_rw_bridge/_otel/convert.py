"""OpenTelemetry SDK ``MetricsData`` -> prometheus_client metric families.  Pure: no I/O, no threads.

The families go through the 1.0 and 2.0 encoders of ``_protocol`` like a registry's, so an
OpenTelemetry metric arrives under the name, labels, metadata and (2.0) start timestamp a
Prometheus user expects.  The rules are those of OpenTelemetry's Prometheus compatibility
specification, "OTLP Metric points to Prometheus":

* Names and units: see :mod:`.names` (``http.server.duration`` in ``s`` ->
  ``http_server_duration_seconds``).  HELP is the description, UNIT the spelled-out unit.
* Gauge and ObservableGauge -> gauge.  Counter and ObservableCounter (monotonic sums) ->
  counter: ``<name>_total`` and ``<name>_created`` from the start time (over 2.0 the encoder
  makes that the samples' start timestamp).  UpDownCounter and ObservableUpDownCounter
  (non-monotonic sums) -> gauge.
* Histogram -> classic histogram with **cumulative** ``_bucket`` counts, an ``le="+Inf"``
  bucket equal to the count, ``_count``, ``_sum`` (left out once a negative value was
  recorded: it would no longer be a counter) and ``_created``.
* Exponential histogram -> native histogram (one ``<name>`` series; scale above 8 merged
  down to schema 8; OpenTelemetry's bucket index ``i`` is Prometheus' ``i + 1``; zero
  threshold 1e-128; start time unused, as the specification says).  The same native series
  travels over both protocols: remote-write 2.0 ``TimeSeries.histograms`` and 1.0's field 4,
  the one the OpenTelemetry Collector's remote-write exporter uses.  Converting to classic
  buckets for 1.0 instead would change the series' names and shape whenever negotiation
  falls back from 2.0, and double the series per histogram; receivers that store native
  histograms (Prometheus with native histograms enabled, Mimir, Thanos) read field 4.  What
  the others do, measured: Prometheus 2.42 without ``--enable-feature=native-histograms``
  answers ``500 native histograms are disabled`` for the whole request; VictoriaMetrics 1.79
  stores the other series and drops the histogram silently.
* Attributes -> labels; ``otel_scope_name``/``otel_scope_version`` on every series;
  ``job`` (``service.namespace/service.name``) and ``instance`` (``service.instance.id``)
  from the resource, overriding attributes of those names; the other resource attributes on
  one ``target_info`` series per resource; the attributes of a scope that has some on an
  ``otel_scope_info`` series.
* Exemplars on counters and histograms: ``trace_id``/``span_id`` labels (hex) and the
  filtered attributes, unless those would pass OpenMetrics' 128-character limit.  A classic
  series carries one exemplar, so a bucket or counter with several keeps the latest; native
  histograms keep them all.  Exemplars on gauges are dropped, as the specification says.

**Delta temporality** cannot be converted faithfully by a stateless conversion: a delta
point holds only the change since the last export, and the specification asks for
cumulative series (or that they be dropped).  Delta sums, histograms and exponential
histograms are therefore dropped whole and reported in :attr:`Conversion.dropped`; an
exporter asks the SDK for cumulative temporality so that none arrive.  Nothing is raised
for a metric that cannot be converted: every other metric is still converted.

Every sample carries its point's own timestamp (``time_unix_nano`` to the millisecond), so
the encoders' collection timestamp never replaces it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Gauge,
    Histogram,
    MetricsData,
    Sum,
)
from prometheus_client import samples as _pc_samples
from prometheus_client.core import Metric
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

from .._protocol.wire import STALE_NAN
from .names import labels_from_attributes, metric_name, unit_word

__all__ = ["Conversion", "Dropped", "convert", "native_histograms_supported"]

# prometheus_client >= 0.22 has native histograms, >= 0.23 exemplars on them.
_NativeHistogram: Any = getattr(_pc_samples, "NativeHistogram", None)
_BucketSpan: Any = getattr(_pc_samples, "BucketSpan", None)
_NATIVE_EXEMPLARS = _NativeHistogram is not None and "nh_exemplars" in _NativeHistogram._fields

_SERVICE_KEYS = ("service.name", "service.namespace", "service.instance.id")
_NO_RECORDED_VALUE = 1  # DataPointFlags.NO_RECORDED_VALUE
_MIN_SCHEMA, _MAX_SCHEMA = -4, 8
_ZERO_THRESHOLD = 1e-128  # the specification's default when the point has none
_EXEMPLAR_RUNES = 128  # OpenMetrics: exemplar label names and values together
_CUMULATIVE = AggregationTemporality.CUMULATIVE


def native_histograms_supported() -> bool:
    """Tell whether the installed prometheus_client can carry native histograms (0.22 or later)."""
    return _NativeHistogram is not None


@dataclass(frozen=True)
class Dropped:
    """A metric, or some of its points, left out of a conversion, and why."""

    metric: str  # the OpenTelemetry name
    reason: str
    points: int


@dataclass
class Conversion:
    """What :func:`convert` made: families for the encoders, and what it had to leave out."""

    families: list[Metric] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


def convert(data: MetricsData, *, scope_labels: bool = True, target_info: bool = True) -> Conversion:
    """Convert an SDK export batch into prometheus_client metric families.

    Args:
        data: what a ``MetricReader`` hands its exporter (``MetricExporter.export``).
        scope_labels: add ``otel_scope_name``/``otel_scope_version`` labels and
            ``otel_scope_info`` series, as the specification asks by default.
        target_info: add a ``target_info`` series per resource with its other attributes.

    Returns:
        The families (metrics of one Prometheus name and type merged into one family) and
        the metrics or points dropped, with the reason.
    """
    builder = _Builder(scope_labels=scope_labels, target_info=target_info)
    for resource_metrics in data.resource_metrics:
        builder.add_resource(resource_metrics)
    return builder.result


def _seconds(time_unix_nano: int) -> float:
    """Return a timestamp in seconds that the encoders' ``to_millis`` turns back into its millisecond."""
    # ms / 1000 survives to_millis' ``int(float(t) * 1000)``; ns / 1e9 sometimes loses a millisecond.
    return (int(time_unix_nano) // 1_000_000) / 1000


def _main_name(family: Metric) -> str:
    """Return the name of a family's main series, the one its TYPE metadata is keyed by."""
    suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
    return str(family.name) + suffix


class _Builder:
    """Accumulate the families of one conversion."""

    def __init__(self, *, scope_labels: bool, target_info: bool) -> None:
        self._scope_labels = scope_labels
        self._target_info = target_info
        self._families: dict[str, Metric] = {}
        self.result = Conversion()

    def add_resource(self, resource_metrics: Any) -> None:
        attributes: Mapping[str, Any] = resource_metrics.resource.attributes or {}
        target = _target_labels(attributes)
        latest = 0
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            labels = dict(target)
            if self._scope_labels:
                labels.update(_scope_labels(scope))
            scope_latest = 0
            for metric in scope_metrics.metrics:
                scope_latest = max(scope_latest, self._add_metric(metric, labels))
            if self._scope_labels and scope_latest and getattr(scope, "attributes", None):
                scope_info = {**labels_from_attributes(scope.attributes), **labels}
                self._add_info("otel_scope", "Instrumentation Scope metadata", scope_info, scope_latest)
            latest = max(latest, scope_latest)
        others = labels_from_attributes(attributes, skip=_SERVICE_KEYS)
        if self._target_info and latest and others:
            # Only job and instance besides the resource's own attributes, as the specification says.
            self._add_info("target", "Target metadata", {**others, **target}, latest)

    def _add_info(self, name: str, help_text: str, labels: dict[str, str], time_unix_nano: int) -> None:
        family = self._families.get(name + "_info")
        if family is None:
            family = self._families[name + "_info"] = Metric(name, help_text, "info")
            self.result.families.append(family)
        elif family.type != "info":
            self.result.dropped.append(
                Dropped(name + "_info", f"is the name of a {family.type} of this batch; not sent", 1)
            )
            return
        family.add_sample(name + "_info", labels, 1.0, _seconds(time_unix_nano))

    def _add_metric(self, metric: Any, labels: dict[str, str]) -> int:
        """Convert one metric; return the latest timestamp (ns) among its points, 0 if none converted."""
        data = metric.data
        points = list(data.data_points)
        if not points:
            return 0
        if isinstance(data, Gauge):
            mtype, convert_point = "gauge", _gauge_samples
        elif isinstance(data, Sum):
            mtype = "counter" if data.is_monotonic else "gauge"
            convert_point = _counter_samples if data.is_monotonic else _gauge_samples
        elif isinstance(data, Histogram):
            mtype, convert_point = "histogram", _histogram_samples
        elif isinstance(data, ExponentialHistogram):
            if _NativeHistogram is None:
                return self._drop(
                    metric,
                    f"is an exponential histogram; prometheus_client {_pc_version()} has no native "
                    "histograms (0.22 or later has: pip install 'prometheus-rw-bridge[opentelemetry]')",
                    len(points),
                )
            mtype, convert_point = "histogram", _native_samples
        else:
            return self._drop(
                metric, f"has data of type {type(data).__name__}, which is not converted", len(points)
            )
        temporality = getattr(data, "aggregation_temporality", _CUMULATIVE)
        if temporality != _CUMULATIVE:
            return self._drop(
                metric,
                f"has {getattr(temporality, 'name', temporality)} temporality; only cumulative "
                "temporality converts faithfully to Prometheus series",
                len(points),
            )
        name = self._names(metric, mtype, ratio=isinstance(data, Gauge))[0]
        converted: list[Any] = []
        latest = 0
        refused: dict[str, int] = {}
        for point in points:
            point_labels = {**labels_from_attributes(point.attributes), **labels}
            try:
                converted.extend(convert_point(name, point, point_labels))
            except _Refused as exc:
                refused[str(exc)] = refused.get(str(exc), 0) + 1
                continue
            latest = max(latest, int(point.time_unix_nano))
        for reason, count in refused.items():
            self._drop(metric, reason, count)
        if not converted:
            return 0
        family = self._family(metric, mtype, ratio=isinstance(data, Gauge))
        if family is None:
            return 0
        family.samples.extend(converted)
        return latest

    @staticmethod
    def _names(metric: Any, mtype: str, *, ratio: bool) -> tuple[str, str]:
        """Return a metric's family name and UNIT metadata.

        ``ratio``: unit ``1`` means ``ratio`` (OpenTelemetry gauges; not up-down counters).
        """
        return metric_name(metric.name, unit_word(metric.unit, gauge=ratio), counter=mtype == "counter")

    def _family(self, metric: Any, mtype: str, *, ratio: bool) -> Metric | None:
        """Return the family a metric's samples join: its own, or one of the same name and type."""
        name, unit_metadata = self._names(metric, mtype, ratio=ratio)
        family = Metric(name, metric.description or "", mtype, unit_metadata)
        main = _main_name(family)
        existing = self._families.get(main)
        if existing is None:
            self._families[main] = family
            self.result.families.append(family)
            return family
        if existing.type != mtype:
            self._drop(
                metric,
                f"would be the {mtype} {main}, a name a {existing.type} of this batch already has",
                len(metric.data.data_points),
            )
            return None
        return existing  # HELP and UNIT of the first metric of that name are kept

    def _drop(self, metric: Any, reason: str, points: int) -> int:
        self.result.dropped.append(Dropped(str(metric.name), reason, points))
        return 0


class _Refused(Exception):
    """A data point that cannot be converted; its message is the reason."""


def _pc_version() -> str:
    try:
        return version("prometheus_client")
    except PackageNotFoundError:
        return "(version unknown)"


def _target_labels(attributes: Mapping[str, Any]) -> dict[str, str]:
    """Return ``job`` and ``instance`` from a resource's service attributes (those it has)."""
    labels: dict[str, str] = {}
    name = str(attributes.get("service.name", "") or "")
    namespace = str(attributes.get("service.namespace", "") or "")
    if name:
        labels["job"] = f"{namespace}/{name}" if namespace else name
    instance = str(attributes.get("service.instance.id", "") or "")
    if instance:
        labels["instance"] = instance
    return labels


def _scope_labels(scope: Any) -> dict[str, str]:
    labels = {}
    if scope.name:
        labels["otel_scope_name"] = str(scope.name)
    if scope.version:
        labels["otel_scope_version"] = str(scope.version)
    return labels


def _gauge_samples(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    # Exemplars on gauges and non-monotonic sums MUST be dropped (specification).
    yield _sample(name, labels, float(point.value), point.time_unix_nano)


def _counter_samples(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    exemplars = _latest_exemplars(getattr(point, "exemplars", ()), lambda _: 0)
    yield _sample(name + "_total", labels, float(point.value), point.time_unix_nano, exemplars.get(0))
    yield from _created(name, point, labels)


def _histogram_samples(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    bounds = list(point.explicit_bounds)
    counts = list(point.bucket_counts)
    if len(counts) != len(bounds) + 1:
        raise _Refused(f"has a histogram point with {len(counts)} bucket counts for {len(bounds)} bounds")
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


def _native_samples(name: str, point: Any, labels: dict[str, str]) -> Iterator[Any]:
    scale = int(point.scale)
    if scale < _MIN_SCHEMA:
        raise _Refused(f"has an exponential histogram point of scale {scale}, below the coarsest schema -4")
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
    yield _pc_samples.Sample(name, labels, native.count_value, _seconds(point.time_unix_nano), None, native)


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
        yield _sample(name + "_created", labels, _seconds(start), point.time_unix_nano)


def _sample(
    name: str, labels: dict[str, str], value: float, time_unix_nano: int, exemplar: Any = None
) -> Any:
    return _pc_samples.Sample(name, labels, value, _seconds(time_unix_nano), exemplar)


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
    return Exemplar(labels, float(ex.value), _seconds(ex.time_unix_nano))
