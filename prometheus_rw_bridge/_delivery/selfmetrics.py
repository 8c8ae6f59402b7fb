"""The bridge's own metrics, named like Prometheus's remote-write sender so dashboards carry over.

A collector registered in the pushed registry; every family is labelled with ``remote_name``
and ``url`` (credentials already removed by the transport).

The request-duration histogram is counted here with :func:`bisect.bisect_left` and exposed as
prometheus_client's ``HistogramMetricFamily``, not kept in a prometheus_client ``Histogram``.
Under ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn, Celery and other pre-fork servers)
prometheus_client decides at import time that *every* metric value lives in a file of that
directory (``values.ValueClass`` becomes ``MultiProcessValue``), and ``MultiProcessCollector``
merges every file it finds there.  A ``Histogram`` made by the bridge would therefore leave a
``histogram_<pid>.db`` behind in each process and appear a second time in the merged view that
the gunicorn integration pushes, summed over processes and without our ``remote_name`` and
``url``.  There is no supported way to give one metric an in-memory value in that mode, so the
counts stay in this collector's memory.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

__all__ = ["SelfMetricsCollector"]

_PREFIX = "prometheus_remote_storage_"
_LABELS = ["remote_name", "url"]
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0)


class SelfMetricsCollector:
    """Expose each endpoint sender's counters as ``prometheus_remote_storage_*`` families."""

    def __init__(self, senders: Callable[[], Sequence[Any]]) -> None:
        self._senders = senders
        # Durations are accumulated here (senders hand them over once) so the histogram is cumulative.
        self._hist: dict[tuple[str, str], tuple[list[int], float]] = {}
        self._lock = threading.Lock()  # a scrape and the pusher may collect at once

    def describe(self) -> list[Any]:
        # Returning nothing keeps registration from calling collect() (and our senders) early.
        return []

    def collect(self) -> Iterator[Any]:
        senders = list(self._senders())
        samples = CounterMetricFamily(
            _PREFIX + "samples", "Total number of samples sent to remote storage.", labels=_LABELS
        )
        failed = CounterMetricFamily(
            _PREFIX + "samples_failed",
            "Total number of samples which failed on send to remote storage, non-recoverable errors.",
            labels=_LABELS,
        )
        retried = CounterMetricFamily(
            _PREFIX + "samples_retried",
            "Total number of samples which failed on send to remote storage but were retried "
            "because the send error was recoverable.",
            labels=_LABELS,
        )
        dropped = CounterMetricFamily(
            _PREFIX + "samples_dropped",
            "Total number of samples which were dropped, by reason.",
            labels=[*_LABELS, "reason"],
        )
        sent_bytes = CounterMetricFamily(
            _PREFIX + "bytes",
            "The total number of bytes of data (not metadata) sent by the queue after compression.",
            labels=_LABELS,
        )
        pending = GaugeMetricFamily(
            _PREFIX + "samples_pending",
            "The number of samples pending in the queue's shards to be sent to the remote storage.",
            labels=_LABELS,
        )
        highest = GaugeMetricFamily(
            _PREFIX + "queue_highest_sent_timestamp_seconds",
            "The highest timestamp successfully sent by this queue, in seconds since epoch.",
            labels=_LABELS,
        )
        duration = HistogramMetricFamily(
            _PREFIX + "sent_batch_duration_seconds",
            "Duration of send calls to the remote storage.",
            labels=_LABELS,
        )
        for sender in senders:
            stats = sender.stats()
            labels = [stats.remote_name, stats.url]
            samples.add_metric(labels, stats.samples_sent)
            failed.add_metric(labels, stats.samples_failed)
            retried.add_metric(labels, stats.samples_retried)
            for reason, count in sorted(stats.samples_dropped.items()):
                dropped.add_metric([*labels, reason], count)
            sent_bytes.add_metric(labels, stats.bytes_sent)
            pending.add_metric(labels, stats.pending_samples)
            highest.add_metric(labels, stats.highest_sent_timestamp_ms / 1000.0)
            with self._lock:
                buckets, total = self._histogram((labels[0], labels[1]), sender.take_batch_durations())
            duration.add_metric(labels, buckets, total)
        yield from (samples, failed, retried, dropped, sent_bytes, pending, highest, duration)

    def _histogram(self, key: tuple[str, str], new: list[float]) -> tuple[list[tuple[str, float]], float]:
        """Add ``new`` durations to the endpoint's bucket counts; return the cumulative buckets and sum."""
        counts, total = self._hist.get(key, ([0] * (len(_BUCKETS) + 1), 0.0))
        for value in new:
            counts[bisect_left(_BUCKETS, value)] += 1  # the first bound >= value: "le" semantics
        total += sum(new)
        self._hist[key] = (counts, total)
        bounds = [repr(bound) for bound in _BUCKETS] + ["+Inf"]
        return [(bound, float(n)) for bound, n in zip(bounds, accumulate(counts), strict=True)], total
