"""Test oracles: what a Prometheus scrape of a registry shows, what a request body holds, and a
realistic registry to compare them on.

``scraped()`` reads ``prometheus_client.generate_latest`` text, the ground truth for names,
labels and values; ``written()`` decodes a request body with the protobuf schema (never the
encoder's own helpers).  Both give ``{(name, labels): ...}`` with ``labels`` a frozenset of
``(name, value)`` pairs without empty values, the way Prometheus stores a series.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import (
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import BucketSpan, NativeHistogram

from prometheus_rw_bridge._protocol import schema as _schema
from prometheus_rw_bridge._protocol import snappy as _snappy

SeriesKey = tuple[str, frozenset[tuple[str, str]]]

TARGET_LABELS = ("job", "instance")


@dataclass(frozen=True)
class Point:
    """A sample: its value and its millisecond timestamp (``None`` when the text shows none)."""

    value: float
    timestamp_ms: int | None


@dataclass
class WrittenSeries:
    """One decoded ``TimeSeries``: labels in wire order, samples and exemplars."""

    label_pairs: list[tuple[str, str]]
    points: list[Point]
    exemplars: list[Any]

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.label_pairs)


def bits(value: float) -> int:
    """Return the IEEE 754 bit pattern of ``value``."""
    result: int = struct.unpack("<Q", struct.pack("<d", value))[0]
    return result


def same_value(a: float, b: float) -> bool:
    """Compare floats as the text format can: NaN equals NaN, -0.0 differs from 0.0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def key(name: str, labels: dict[str, str], drop: Iterable[str] = ()) -> SeriesKey:
    """Return the series key of ``name`` with ``labels``, leaving out empty values and ``drop``."""
    skip = set(drop) | {"__name__"}
    return name, frozenset((k, v) for k, v in labels.items() if v != "" and k not in skip)


def scrape_text(registry: Any) -> str:
    """Return ``generate_latest(registry)`` as text."""
    return generate_latest(registry).decode("utf-8")


def scraped(registry: Any) -> dict[SeriesKey, Point]:
    """Return every sample a scrape of ``registry`` shows, keyed as Prometheus would store it."""
    result: dict[SeriesKey, Point] = {}
    for family in text_string_to_metric_families(scrape_text(registry)):
        for sample in family.samples:
            ts = None if sample.timestamp is None else round(float(sample.timestamp) * 1000)
            k = key(sample.name, sample.labels)
            assert k not in result, f"the scrape itself shows {k} twice"
            result[k] = Point(float(sample.value), ts)
    return result


def scraped_metadata(registry: Any) -> dict[str, tuple[str, str]]:
    """Return ``{name: (type, help)}`` from the ``# HELP`` and ``# TYPE`` lines of the scrape."""
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    for line in scrape_text(registry).splitlines():
        if line.startswith("# HELP "):
            name, _, text = line[7:].partition(" ")
            helps[name] = _unescape_help(text)
        elif line.startswith("# TYPE "):
            name, _, mtype = line[7:].partition(" ")
            types[name] = "unknown" if mtype == "untyped" else mtype
    return {name: (types.get(name, "unknown"), helps.get(name, "")) for name in types.keys() | helps.keys()}


def _unescape_help(text: str) -> str:
    out = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append("\n" if nxt == "n" else nxt)
        else:
            out.append(ch)
    return "".join(out)


def message(body: bytes, *, compressed: bool = True) -> Any:
    """Parse a request body into a ``prometheus.WriteRequest`` message with the schema."""
    raw = _snappy.decompress(body) if compressed else body
    return _schema.WriteRequest.FromString(raw)


def written_list(body: bytes, *, compressed: bool = True) -> list[WrittenSeries]:
    """Return the body's time series in wire order."""
    out = []
    for ts in message(body, compressed=compressed).timeseries:
        out.append(
            WrittenSeries(
                label_pairs=[(lab.name, lab.value) for lab in ts.labels],
                points=[Point(s.value, s.timestamp) for s in ts.samples],
                exemplars=list(ts.exemplars),
            )
        )
    return out


def written(
    body: bytes, *, compressed: bool = True, drop: Iterable[str] = TARGET_LABELS
) -> dict[SeriesKey, Point]:
    """Return ``{(name, labels): point}`` for a body of one-sample series, leaving out ``drop`` labels."""
    drop = tuple(drop)
    result: dict[SeriesKey, Point] = {}
    for series in written_list(body, compressed=compressed):
        assert len(series.points) == 1, series
        labels = series.labels
        k = key(labels["__name__"], labels, drop)
        assert k not in result, f"the body holds {k} twice"
        result[k] = series.points[0]
    return result


def written_metadata(body: bytes, *, compressed: bool = True) -> dict[str, tuple[str, str]]:
    """Return ``{metric_family_name: (type, help)}`` from the body's metadata."""
    msg = message(body, compressed=compressed)
    type_names = _schema.MetricMetadata.DESCRIPTOR.enum_types_by_name["MetricType"].values_by_number
    result = {}
    for md in msg.metadata:
        assert md.metric_family_name not in result, f"metadata for {md.metric_family_name} twice"
        result[md.metric_family_name] = (type_names[md.type].name.lower(), md.help)
    return result


def assert_matches_scrape(
    body: bytes, registry: Any, *, timestamp_ms: int, compressed: bool = True
) -> dict[SeriesKey, Point]:
    """Assert that ``body`` holds exactly the scrape's series and values, at the scrape's timestamps."""
    expected = scraped(registry)
    got = written(body, compressed=compressed)
    missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    assert not missing and not extra, f"missing from the body: {missing}; not in the scrape: {extra}"
    for k, point in expected.items():
        assert same_value(got[k].value, point.value), (k, got[k], point)
        want_ts = timestamp_ms if point.timestamp_ms is None else point.timestamp_ms
        assert got[k].timestamp_ms == want_ts, (k, got[k], point)
    return got


class _Custom:
    """A hand-written collector: custom quantiles, a gauge histogram, a stateset, an own timestamp."""

    def __init__(self, own_timestamp: float, special_values: bool) -> None:
        self.own_timestamp = own_timestamp
        self.special_values = special_values

    def collect(self) -> Any:
        rpc = SummaryMetricFamily("rpc_duration_seconds", "RPC latency from a sidecar.", labels=["service"])
        for service, scale in (("auth", 1.0), ("billing", 2.5)):
            rpc.add_metric([service], count_value=int(40 * scale), sum_value=3.25 * scale)
            for q, v in (("0.5", 0.05), ("0.9", 0.2), ("0.99", 0.75)):
                rpc.add_sample("rpc_duration_seconds", {"service": service, "quantile": q}, v * scale)
        yield rpc
        queue = GaugeHistogramMetricFamily(
            "queue_wait_seconds",
            "Time items have waited.",
            buckets=[("0.1", 3), ("1.0", 7), ("+Inf", 9)],
            gsum_value=4.5,
        )
        yield queue
        yield StateSetMetricFamily(
            "feature_flags", "Feature flags.", value={"dark_mode": True, "beta_api": False}
        )
        yield UnknownMetricFamily("legacy_value", "An untyped value.", value=17)
        stamped = GaugeMetricFamily("batch_last_success", "Set by a batch job.", labels=["batch"])
        stamped.add_metric(["nightly"], 1.7e9, timestamp=self.own_timestamp)
        yield stamped
        if self.special_values:
            special = GaugeMetricFamily("special_values", "Non-finite and signed values.", labels=["kind"])
            for kind, value in (
                ("pos_inf", math.inf),
                ("neg_inf", -math.inf),
                ("nan", math.nan),
                ("tiny", 5e-324),
            ):
                special.add_metric([kind], value)
            yield special


def realistic_registry(*, own_timestamp: float, special_values: bool = True) -> CollectorRegistry:
    """A registry with every family type, labels that need escaping, a UTF-8 name and exemplars.

    Args:
        own_timestamp: seconds; one gauge carries it as its own sample timestamp (keep it
            within Prometheus' five-minute lookback of the collection time).
        special_values: include NaN, ±Inf and a subnormal (VictoriaMetrics does not keep NaN).
    """
    registry = CollectorRegistry(target_info={"service": "checkout", "version": "1.4.2"})
    requests = Counter("http_requests", "HTTP requests served.", ["method", "code"], registry=registry)
    requests.labels("GET", "200").inc(1027)
    requests.labels("POST", "200").inc(3, exemplar={"trace_id": "4bf92f3577b34da6"})
    requests.labels("GET", "500").inc(2)
    events = Counter("app.events", "Events by kind (a UTF-8 name).", ["event.kind"], registry=registry)
    events.labels("signup").inc(5)
    rooms = Gauge("room_temperature_celsius", "Temperature.", ["room", "note"], registry=registry)
    rooms.labels("kitchen", 'says "hi"\\n\nnewline').set(21.5)
    rooms.labels("日本", "").set(-3.25)  # the empty label value is no label at all
    Gauge("inflight_requests", "In flight.", registry=registry).set(0)
    latency = Histogram(
        "request_latency_seconds",
        "Latency.",
        ["route"],
        buckets=[0.005, 0.05, 0.5, 1, 2.5],
        registry=registry,
    )
    for value in (0.003, 0.04, 0.04, 0.7, 3.0):
        latency.labels("/api").observe(value)
    latency.labels("/health").observe(0.001)
    Summary("job_duration_seconds", "Batch job duration.", registry=registry).observe(12.5)
    Info("build", "Build information.", registry=registry).info({"version": "1.4.2", "revision": "abc123"})
    Enum("worker_state", "Worker state.", states=["starting", "running", "stopped"], registry=registry).state(
        "running"
    )
    registry.register(_Custom(own_timestamp, special_values))
    return registry


NATIVE = NativeHistogram(
    count_value=7,  # 1 negative + 1 zero + (2, 1, 2) positive
    sum_value=12.5,
    schema=1,
    zero_threshold=0.001,
    zero_count=1,
    pos_spans=[BucketSpan(0, 2), BucketSpan(3, 1)],
    pos_deltas=[2, -1, 1],
    neg_spans=[BucketSpan(1, 1)],
    neg_deltas=[1],
)
"""A native histogram with negative, zero and positive buckets and a gap between spans."""


def read_back(items: Iterable[dict[str, Any]], job: str, instance: str) -> dict[SeriesKey, float]:
    """Key a query API's instant-vector ``result`` like the scrape, checking ``job`` and ``instance``."""
    result = {}
    for item in items:
        labels = dict(item["metric"])
        assert labels.pop("job") == job
        assert labels.pop("instance") == instance
        result[key(labels["__name__"], labels)] = float(item["value"][1])
    return result


METADATA_PROBE = "metadata_probe_bytes_total"
"""The series of :func:`metadata_probe`: a counter with help and unit."""


def metadata_probe(job: str, timestamp_ms: int) -> bytes:
    """A request body of one counter with help and unit, checked to carry that metadata."""
    from prometheus_rw_bridge import generate_write_request

    registry = CollectorRegistry()
    Counter("metadata_probe", "Help of the probe.", unit="bytes", registry=registry).inc()
    body = generate_write_request(registry, timestamp_ms=timestamp_ms, job=job, instance="ci-host:9000")
    assert written_metadata(body) == {
        METADATA_PROBE: ("counter", "Help of the probe."),
        "metadata_probe_bytes_created": ("gauge", "Help of the probe."),
    }
    return body
