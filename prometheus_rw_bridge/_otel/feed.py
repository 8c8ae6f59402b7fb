"""What the OpenTelemetry exporter's bridge pushes: the latest conversion, as a collector.

The exporter hands each export's conversion to a :class:`Feed` and flushes a bridge whose
registry is that feed, so the export goes through the bridge's encoders (staleness, metadata,
both protocols), senders, retry loop and negotiation like any registry's collection.  The feed
is also the registry of the bridge's self-metrics (:meth:`Feed.register`): their families
follow the conversion's, with the resource's ``job`` and ``instance``, so that they line up
with the application's series.

The encoders of :func:`counting_encoders` add what the conversion left out to each collection's
``dropped``, by its ``DROP_*`` word, so the senders count it with the encoders' own drops (in
``stats`` and the ``prometheus_remote_storage_samples_dropped`` self-metric); a data point
counts as one sample.  Pure: no I/O, no threads, no locks (a fork may come at any moment).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client.core import Metric

from .._protocol.encode import Encoder
from .._protocol.encode_v2 import EncoderV2
from .convert import Conversion, target_labels

__all__ = ["Feed", "counting_encoders"]


class Feed:
    """A collector yielding the latest conversion's families, then its registered collectors'."""

    def __init__(self) -> None:
        self._families: list[Metric] = []
        self._target: dict[str, str] = {}
        self._collectors: list[Any] = []
        self.dropped: dict[str, int] = {}
        """The latest conversion's drops: data points by ``DROP_*`` word."""

    def update(self, data: MetricsData, conversion: Conversion) -> None:
        """Make ``conversion`` (of ``data``) what the next collection yields."""
        dropped: dict[str, int] = {}
        for drop in conversion.dropped:
            dropped[drop.kind] = dropped.get(drop.kind, 0) + drop.points
        resources = data.resource_metrics
        # Each attribute is replaced whole: a collection running meanwhile sees old or new, never half.
        self._target = target_labels(resources[0].resource.attributes or {}) if resources else {}
        self._families = list(conversion.families)
        self.dropped = dropped

    def end(self) -> None:
        """Yield no conversion from now on (the exporter's shutdown: every series has ended)."""
        self._families = []
        self.dropped = {}

    def register(self, collector: Any) -> None:
        """Add a collector (the bridge's self-metrics) whose families follow the conversion's."""
        self._collectors = [*self._collectors, collector]

    def unregister(self, collector: Any) -> None:
        self._collectors = [c for c in self._collectors if c is not collector]

    def collect(self) -> Iterator[Metric]:
        yield from self._families
        target = self._target
        for collector in self._collectors:
            for family in collector.collect():
                yield _labelled(family, target) if target else family


def _labelled(family: Metric, target: Mapping[str, str]) -> Metric:
    """Return ``family`` with ``target``'s labels on every sample that lacks them."""
    copy = Metric(family.name, family.documentation, family.type, family.unit)
    copy.samples = [sample._replace(labels={**target, **sample.labels}) for sample in family.samples]
    return copy


class _ConversionDrops:
    """Mixin for an encoder: report the feed's conversion drops with the encoder's own."""

    feed: Feed

    def encode(self, families: Iterable[Any], timestamp_ms: int, *, stream: Any = None) -> Any:
        result = super().encode(families, timestamp_ms, stream=stream)  # type: ignore[misc]
        result.add_dropped(self.feed.dropped)
        return result


class _CountingEncoder(_ConversionDrops, Encoder):
    """The 1.0 encoder, reporting the conversion's drops."""


class _CountingEncoderV2(_ConversionDrops, EncoderV2):
    """The 2.0 encoder, reporting the conversion's drops."""


def counting_encoders(feed: Feed) -> dict[str, Callable[..., Any]]:
    """Return the encoder of each protocol for a bridge that pushes ``feed`` (``encoder_types``)."""

    def of(cls: type[_CountingEncoder | _CountingEncoderV2]) -> Callable[..., Any]:
        def build(**options: Any) -> Any:
            encoder = cls(**options)
            encoder.feed = feed
            return encoder

        return build

    return {"1.0": of(_CountingEncoder), "2.0": of(_CountingEncoderV2)}
