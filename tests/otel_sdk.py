"""Real OpenTelemetry SDK pipelines for tests: record with a meter, read with ``InMemoryMetricReader``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

SERVICE = {"service.name": "checkout", "service.namespace": "shop", "service.instance.id": "pod-7"}


def record(
    use: Callable[[Meter], None],
    *,
    resource: Mapping[str, Any] | None = None,
    views: Sequence[View] = (),
    temporality: dict[type, Any] | None = None,
    scope: tuple[str, str] = ("shop.checkout", "2.1.0"),
    exemplar_filter: Any = None,
    scope_attributes: Mapping[str, Any] | None = None,
) -> MetricsData:
    """Run ``use`` on a meter of a fresh provider and return what its reader collects.

    ``resource`` is taken as it is (``Resource(...)``, no SDK defaults); ``None`` means
    ``Resource.create(SERVICE)``, with the SDK's ``telemetry.sdk.*`` attributes.
    """
    reader = InMemoryMetricReader(preferred_temporality=temporality)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create(SERVICE) if resource is None else Resource(dict(resource)),
        views=list(views),
        exemplar_filter=exemplar_filter,
        shutdown_on_exit=False,
    )
    try:
        if scope_attributes is None:
            meter = provider.get_meter(*scope)
        else:
            meter = provider.get_meter(*scope, attributes=dict(scope_attributes))
        use(meter)
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    assert data is not None
    return data


@contextmanager
def sampled_span() -> Iterator[Any]:
    """Make a sampled span current, so that the default trace-based exemplar filter records exemplars."""
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("operation") as span:
        yield span.get_span_context()


def points(data: MetricsData, name: str) -> list[Any]:
    """Return the data points of the metric called ``name``."""
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def native_bucket_counts(native: Any) -> dict[int, int]:
    """Expand a native histogram's positive spans and deltas into ``{bucket index: count}``."""
    return _expand(native.pos_spans or (), native.pos_deltas or ())


def native_negative_bucket_counts(native: Any) -> dict[int, int]:
    return _expand(native.neg_spans or (), native.neg_deltas or ())


def _expand(spans: Sequence[Any], deltas: Sequence[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    index, count, position = 0, 0, 0
    for offset, length in spans:
        index += offset
        for _ in range(length):
            count += deltas[position]
            position += 1
            if count:
                counts[index] = count
            index += 1
    assert position == len(deltas)
    return counts


def native_index(value: float, schema: int) -> int:
    """The native-histogram bucket holding ``abs(value)``: ``base**(i-1) < |v| <= base**i``."""
    magnitude = abs(value)
    index = math.ceil(math.log2(magnitude) * 2**schema)
    # Correct log2's rounding at the edges with the definition itself.
    while 2 ** ((index - 1) / 2**schema) >= magnitude:
        index -= 1
    while 2 ** (index / 2**schema) < magnitude:
        index += 1
    return index
