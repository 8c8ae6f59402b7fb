"""The counters and log lines of delivery: what every outcome costs, counted once.

The sender and the retry loop report to one :class:`Ledger` per endpoint (it is the loop's
:class:`~prometheus_rw_bridge._delivery.retry.RetryHooks`); :meth:`Ledger.snapshot` gives the
self-metrics a consistent copy, and :meth:`BridgeStats.summed` adds the endpoints up.  Log
lines are written after the lock is released (a handler is user code) and rate-limited where
a broken receiver would repeat them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from .._exceptions import ReceiverError, SendError
from .retry import RetryHooks

if TYPE_CHECKING:
    from .retry import Delivery

__all__ = ["BridgeStats", "EndpointStats", "Ledger"]

logger = logging.getLogger(__name__)

_LOG_INTERVAL = 60.0  # seconds between two log lines of one kind, per endpoint
_MAX_DURATIONS = 10_000  # request durations kept for the self-metrics between two collections


@dataclass
class EndpointStats:
    """Counters of one endpoint; read a consistent copy with ``EndpointSender.stats()``."""

    url: str
    remote_name: str
    attempts: int = 0
    successes: int = 0
    errors: int = 0
    samples_sent: int = 0
    samples_failed: int = 0
    samples_retried: int = 0
    samples_dropped: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    pending_samples: int = 0
    pending_collections: int = 0
    highest_sent_timestamp_ms: int = 0
    last_error: str | None = None
    protocol: str = "1.0"
    batch_durations: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class BridgeStats:
    """What a bridge has done so far, summed over its endpoints.

    ``samples_dropped`` counts samples given up for good, by reason in ``dropped_by_reason``:
    ``queue_full``, ``spool_full``, ``too_old`` (past ``sample_age_limit``), ``too_large`` (past
    ``max_bytes_per_send``), ``http_<status>`` (refused with a 4xx), ``shutdown`` (past the
    close deadline, not spooled), ``protocol_fallback``, or unsendable (an empty name, a value
    that is no number...; each endpoint counts those of every collection).  ``samples_failed``
    is the subset a receiver refused or that could never be sent.  ``success_rate`` is
    successes / attempts (1.0 before the first attempt).
    """

    attempts: int
    successes: int
    errors: int
    samples_sent: int
    samples_failed: int
    samples_retried: int
    samples_dropped: int
    samples_pending: int
    bytes_sent: int
    collections: int
    collection_errors: int
    last_error: str | None
    dropped_by_reason: Mapping[str, int]

    @property
    def success_rate(self) -> float:
        return 1.0 if self.attempts == 0 else self.successes / self.attempts

    @classmethod
    def summed(cls, per: Sequence[EndpointStats], *, collections: int, collection_errors: int) -> BridgeStats:
        """Sum the counters of every endpoint."""
        dropped: dict[str, int] = {}
        for s in per:
            for reason, count in s.samples_dropped.items():
                dropped[reason] = dropped.get(reason, 0) + count
        last_errors = [s.last_error for s in per if s.last_error]
        return cls(
            attempts=sum(s.attempts for s in per),
            successes=sum(s.successes for s in per),
            errors=sum(s.errors for s in per),
            samples_sent=sum(s.samples_sent for s in per),
            samples_failed=sum(s.samples_failed for s in per),
            samples_retried=sum(s.samples_retried for s in per),
            samples_dropped=sum(dropped.values()),
            samples_pending=sum(s.pending_samples for s in per),
            bytes_sent=sum(s.bytes_sent for s in per),
            collections=collections,
            collection_errors=collection_errors,
            last_error=last_errors[-1] if last_errors else None,
            dropped_by_reason=dropped,
        )


class Ledger(RetryHooks):
    """The counters of one endpoint, safe to update from any thread.

    Args:
        url: the endpoint, safe to display.
        remote_name: its name in logs and self-metrics.
        clock: monotonic clock for the log rate limit.
    """

    def __init__(self, url: str, remote_name: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._clock = clock
        self._lock = threading.Lock()
        self._stats = EndpointStats(url=url, remote_name=remote_name)
        self._dropped_seqs: deque[int] = deque(maxlen=4096)  # collections that lost samples
        self._last_log: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def snapshot(self, *, pending_samples: int = 0, pending_collections: int = 0) -> EndpointStats:
        """A copy of the counters (without the durations), with the queue's pending counts."""
        with self._lock:
            values = {f.name: getattr(self._stats, f.name) for f in fields(self._stats)}
            values["samples_dropped"] = dict(self._stats.samples_dropped)
        values.update(
            batch_durations=[], pending_samples=pending_samples, pending_collections=pending_collections
        )
        return EndpointStats(**values)

    def take_batch_durations(self) -> list[float]:
        """Return and forget the durations of requests delivered since the last call."""
        with self._lock:
            durations, self._stats.batch_durations = self._stats.batch_durations, []
            return durations

    def dropped_after(self, seq: int) -> bool:
        """Tell whether any collection newer than ``seq`` lost samples."""
        with self._lock:
            return any(dropped > seq for dropped in self._dropped_seqs)

    def after_fork_in_child(self) -> None:
        """A new lock: the parent's may have been held by one of its threads at the fork."""
        self._lock = threading.Lock()

    # -- what happened ----------------------------------------------------------------------

    def attempt(self) -> None:
        with self._lock:
            self._stats.attempts += 1

    def retrying(self, samples: int) -> RetryHooks:
        """The retry loop's hooks for a request of ``samples`` samples."""
        return _RequestHooks(self, samples)

    def failed_attempt(self, samples: int, error: SendError, retry: int, delay: float | None) -> None:
        """A retryable failure; retry number ``retry`` follows after ``delay`` s, or none."""
        with self._lock:
            self._stats.errors += 1
            self._stats.last_error = str(error)
            if delay is not None:
                self._stats.samples_retried += samples
        if delay is not None and (retry == 1 or retry % 10 == 0):
            logger.warning(
                "Remote write to %s failed (attempt %d), retrying in %.2fs: %s",
                self._url,
                retry,
                delay,
                error,
            )

    def sent(self, samples: int, nbytes: int, protocol: str, delivery: Delivery, timestamp_ms: int) -> None:
        """A request was delivered."""
        with self._lock:
            stats = self._stats
            stats.successes += 1
            stats.samples_sent += samples
            stats.bytes_sent += nbytes
            stats.protocol = protocol
            stats.highest_sent_timestamp_ms = max(stats.highest_sent_timestamp_ms, timestamp_ms)
            stats.batch_durations.append(delivery.duration)
            if len(stats.batch_durations) > _MAX_DURATIONS:
                del stats.batch_durations[: _MAX_DURATIONS // 2]

    def rejected(self, samples: int, error: ReceiverError, seq: int) -> None:
        """The receiver refused a request for good (a 4xx but 429): dropped, failed, logged."""
        with self._lock:
            self._stats.errors += 1
            self._stats.last_error = str(error)
            self._stats.samples_failed += samples
            self._count(samples, f"http_{error.status_code}", seq)
            suppressed = self._allow("rejected")
        if suppressed is not None:
            advice = _TOO_LARGE_ADVICE if error.status_code == 413 else ""
            logger.error(
                "Remote write to %s rejected with %d, batch dropped (%d samples; a 4xx is never retried): "
                "%s%s%s",
                self._url,
                error.status_code,
                samples,
                error.message[:512],
                advice,
                _similar(suppressed),
            )

    def too_old(self, samples: int, limit: float, seq: int) -> None:
        """Samples older than ``sample_age_limit`` were dropped instead of sent or retried."""
        self._drop_logged(
            samples,
            "too_old",
            seq,
            logging.WARNING,
            "Remote write to %s: dropped %d samples older than sample_age_limit=%gs instead of sending "
            "them%s",
            limit,
        )

    def too_large(self, samples: int, size: int, limit: int, seq: int) -> None:
        """A request larger than ``max_bytes_per_send`` (one series alone) was dropped unsent."""
        self._drop_logged(
            samples,
            "too_large",
            seq,
            logging.ERROR,
            "Remote write to %s: a request of %d samples and %d bytes is larger than "
            "max_bytes_per_send=%d and cannot be split further; dropped%s",
            size,
            limit,
            failed=True,
        )

    def _drop_logged(
        self,
        samples: int,
        reason: str,
        seq: int,
        level: int,
        message: str,
        *args: object,
        failed: bool = False,
    ) -> None:
        """Count ``samples`` dropped for ``reason`` and log ``message`` (url, samples, ``args``, what was
        held back), once a minute at most."""
        with self._lock:
            if failed:
                self._stats.samples_failed += samples
            self._count(samples, reason, seq)
            suppressed = self._allow(reason)
        if suppressed is not None:
            logger.log(
                level,
                message,
                self._url,
                samples,
                *args,
                _similar(suppressed),
            )

    def dropped(self, samples: int, reason: str, seq: int | None) -> None:
        """Count ``samples`` of collection ``seq`` as given up for ``reason``.

        ``seq`` None: samples that never entered the queue (the encoder could not send them),
        which ``flush()`` does not report as a loss.
        """
        with self._lock:
            self._count(samples, reason, seq)

    def warn_queue_full(self, samples: int) -> None:
        """Say that the queue bound dropped a collection (call it with no lock held)."""
        logger.warning(
            "Remote-write queue for %s is full; dropped the oldest collection (%d samples)",
            self._url,
            samples,
        )

    def _count(self, samples: int, reason: str, seq: int | None) -> None:
        if seq is not None:
            self._dropped_seqs.append(seq)
        dropped = self._stats.samples_dropped
        dropped[reason] = dropped.get(reason, 0) + samples

    def _allow(self, kind: str) -> int | None:
        """Whether a line of ``kind`` may be logged now (once a minute): how many were held back, or None."""
        now = self._clock()
        if now - self._last_log.get(kind, -_LOG_INTERVAL) < _LOG_INTERVAL:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return None
        self._last_log[kind] = now
        return self._suppressed.pop(kind, 0)


def _similar(suppressed: int) -> str:
    return f" ({suppressed} similar messages not logged)" if suppressed else ""


_TOO_LARGE_ADVICE = (
    "; the receiver refuses requests this large: lower max_bytes_per_send "
    "(PROMETHEUS_REMOTE_WRITE_MAX_BYTES_PER_SEND) or max_samples_per_send"
)


class _RequestHooks(RetryHooks):
    """The retry loop's hooks for one request: attempts and failures go to the ledger."""

    __slots__ = ("_ledger", "_samples")

    def __init__(self, ledger: Ledger, samples: int) -> None:
        self._ledger = ledger
        self._samples = samples

    def attempt(self) -> None:
        self._ledger.attempt()

    def failed(self, error: SendError, retry: int, delay: float | None) -> None:
        self._ledger.failed_attempt(self._samples, error, retry, delay)
