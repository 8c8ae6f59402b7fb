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
the encoders' collection timestamp never replaces it.  The points themselves are converted in
:mod:`.points`; this module walks resources, scopes and metrics and merges the families.
Each :class:`Dropped` names its cause in a word (``DROP_*``) beside the sentence, so that an
exporter can count it under that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Gauge,
    Histogram,
    MetricsData,
    Sum,
)
from prometheus_client.core import Metric

from .names import labels_from_attributes, metric_name, unit_word
from .points import (
    Refused,
    counter_samples,
    gauge_samples,
    histogram_samples,
    native_histograms_supported,
    native_samples,
    prometheus_client_version,
    seconds,
)

__all__ = [
    "DROP_DELTA",
    "DROP_NAME_CONFLICT",
    "DROP_NO_NATIVE_HISTOGRAMS",
    "DROP_POINT",
    "DROP_UNSUPPORTED",
    "Conversion",
    "Dropped",
    "convert",
    "native_histograms_supported",
    "target_labels",
]

# Why a metric or point was left out, in a word: the ``reason`` label of delivery's drop counters.
DROP_DELTA = "delta_temporality"
DROP_UNSUPPORTED = "unsupported_metric_type"
DROP_NO_NATIVE_HISTOGRAMS = "native_histograms_unavailable"
DROP_NAME_CONFLICT = "name_conflict"
DROP_POINT = "invalid_point"

_SERVICE_KEYS = ("service.name", "service.namespace", "service.instance.id")
_CUMULATIVE = AggregationTemporality.CUMULATIVE


@dataclass(frozen=True)
class Dropped:
    """A metric, or some of its points, left out of a conversion, and why."""

    metric: str  # the OpenTelemetry name
    reason: str  # a sentence, for the log
    points: int
    kind: str = DROP_POINT  # one of the DROP_* words, for counters


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
        target = target_labels(attributes)
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
            reason = f"is the name of a {family.type} of this batch; not sent"
            self.result.dropped.append(Dropped(name + "_info", reason, 1, DROP_NAME_CONFLICT))
            return
        family.add_sample(name + "_info", labels, 1.0, seconds(time_unix_nano))

    def _add_metric(self, metric: Any, labels: dict[str, str]) -> int:
        """Convert one metric; return the latest timestamp (ns) among its points, 0 if none converted."""
        data = metric.data
        points = list(data.data_points)
        if not points:
            return 0
        try:
            mtype, convert_point = _conversion_of(data)
        except _Unconvertible as exc:
            return self._drop(metric, str(exc), len(points), exc.kind)
        name = self._names(metric, mtype, ratio=isinstance(data, Gauge))[0]
        converted: list[Any] = []
        latest = 0
        refused: dict[str, int] = {}
        for point in points:
            point_labels = {**labels_from_attributes(point.attributes), **labels}
            try:
                converted.extend(convert_point(name, point, point_labels))
            except Refused as exc:
                refused[str(exc)] = refused.get(str(exc), 0) + 1
                continue
            latest = max(latest, int(point.time_unix_nano))
        for reason, count in refused.items():
            self._drop(metric, reason, count, DROP_POINT)
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
                DROP_NAME_CONFLICT,
            )
            return None
        return existing  # HELP and UNIT of the first metric of that name are kept

    def _drop(self, metric: Any, reason: str, points: int, kind: str) -> int:
        self.result.dropped.append(Dropped(str(metric.name), reason, points, kind))
        return 0


_PointConverter = Callable[[str, Any, dict[str, str]], Iterator[Any]]


class _Unconvertible(Exception):
    """A metric none of whose points convert; its message is the reason."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _conversion_of(data: Any) -> tuple[str, _PointConverter]:
    """Return the Prometheus type of a metric's data and the converter of its points.

    Raises:
        _Unconvertible: the data's type or temporality cannot be converted.
    """
    convert_point: _PointConverter
    if isinstance(data, Gauge):
        mtype, convert_point = "gauge", gauge_samples
    elif isinstance(data, Sum):
        mtype = "counter" if data.is_monotonic else "gauge"
        convert_point = counter_samples if data.is_monotonic else gauge_samples
    elif isinstance(data, Histogram):
        mtype, convert_point = "histogram", histogram_samples
    elif isinstance(data, ExponentialHistogram):
        if not native_histograms_supported():
            raise _Unconvertible(
                f"is an exponential histogram; prometheus_client {prometheus_client_version()} has no "
                "native histograms (0.22 or later has: pip install 'prometheus-rw-bridge[opentelemetry]')",
                DROP_NO_NATIVE_HISTOGRAMS,
            )
        mtype, convert_point = "histogram", native_samples
    else:
        reason = f"has data of type {type(data).__name__}, which is not converted"
        raise _Unconvertible(reason, DROP_UNSUPPORTED)
    temporality = getattr(data, "aggregation_temporality", _CUMULATIVE)
    if temporality != _CUMULATIVE:
        raise _Unconvertible(
            f"has {getattr(temporality, 'name', temporality)} temporality; only cumulative "
            "temporality converts faithfully to Prometheus series",
            DROP_DELTA,
        )
    return mtype, convert_point


def target_labels(attributes: Mapping[str, Any]) -> dict[str, str]:
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
