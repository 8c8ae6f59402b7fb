"""One endpoint's ordered queue and the thread that delivers it.

Each endpoint gets its own :class:`EndpointSender`: a bounded FIFO of collections, one request
in flight at a time (so per-series order always holds), retries with backoff for 5xx, 429 and
connection failures, and its own counters.  A dead endpoint therefore never delays another.

Capacity: at most ``max_pending_collections`` collections and ``max_pending_bytes`` compressed
bytes wait; beyond either bound the oldest waiting collection (never the one being delivered)
is dropped and its samples counted as dropped with reason ``queue_full``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import NonRetryableReceiverError, SendError
from .._protocol import snappy as _snappy
from .._protocol.batching import Request, compress_requests, split_body
from .retry import RetryPolicy, retry_after_of

if TYPE_CHECKING:  # importing httpx is for when the first transport is built, not for import time
    from .._http.transport import Transport

logger = logging.getLogger(__name__)

__all__ = [
    "Collection",
    "EndpointSender",
    "EndpointStats",
    "Request",
    "compress_requests",  # re-exported from _protocol.batching, their home
    "split_body",
]

_ERROR_LOG_INTERVAL = 60.0  # seconds between logged 4xx messages per endpoint


@dataclass
class Collection:
    """The requests of one collection, delivered in order.

    ``fallback`` holds the same data as remote-write 1.0 requests when ``requests`` are 2.0
    and the endpoint is still negotiating; it is sent instead if the receiver turns out not to
    speak 2.0.
    """

    seq: int
    timestamp_ms: int
    requests: deque[Request]
    fallback: list[Request] | None = None
    nbytes: int = 0
    unsendable: Mapping[str, int] = field(default_factory=dict)  # samples the encoder left out, by reason

    def __post_init__(self) -> None:
        self.nbytes = sum(len(r.body) for r in self.requests) + sum(len(r.body) for r in self.fallback or ())

    @property
    def samples(self) -> int:
        return sum(r.samples for r in self.requests)


@dataclass
class EndpointStats:
    """Counters of one endpoint; read a consistent copy with :meth:`EndpointSender.stats`."""

    url: str
    remote_name: str
    attempts: int = 0
    successes: int = 0
    errors: int = 0
    samples_sent: int = 0
    samples_failed: int = 0
    samples_retried: int = 0
    samples_dropped: dict[str, int] = field(default_factory=dict)
    samples_written_reported: int = 0
    bytes_sent: int = 0
    pending_samples: int = 0
    pending_collections: int = 0
    highest_sent_timestamp_ms: int = 0
    last_error: str | None = None
    protocol: str = "1.0"
    batch_durations: list[float] = field(default_factory=list)


class EndpointSender:
    """Deliver collections to one endpoint, in order, from a daemon thread.

    Args:
        transport: the endpoint's :class:`~prometheus_rw_bridge._http.transport.Transport`.
        policy: backoff bounds for retries.
        max_pending_collections: collections that may wait (the one in flight included).
        max_pending_bytes: compressed bytes that may wait.
        negotiator: optional ``_negotiate.Negotiator`` for ``protocol="auto"``.
        on_sent: called with ``(request, duration_seconds)`` after every delivered request.
        clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        policy: RetryPolicy | None = None,
        max_pending_collections: int = 80,
        max_pending_bytes: int = 64 * 1024 * 1024,
        negotiator: Any = None,
        clock: Callable[[], float] = time.monotonic,
        thread_name: str = "prometheus-rw-bridge-send",
    ) -> None:
        self._transport = transport
        self._policy = policy or RetryPolicy()
        self._max_collections = max_pending_collections
        self._max_bytes = max_pending_bytes
        self.negotiator = negotiator
        self._clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[Collection] = deque()
        self._pending_bytes = 0
        self._delivered_seq = 0  # every collection with seq <= this is finished (sent or dropped)
        self._delivering_seq = 0  # the collection being delivered now
        self._dropped_seqs: deque[int] = deque(maxlen=4096)  # collections that lost samples
        self._stopping = False
        self._give_up_at: float | None = None
        self._stats = EndpointStats(url=transport.url, remote_name=transport.remote_name)
        self._last_error_log = -_ERROR_LOG_INTERVAL
        self._suppressed_errors = 0
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return str(self._transport.url)

    @property
    def remote_name(self) -> str:
        return str(self._transport.remote_name)

    def stats(self) -> EndpointStats:
        """Return a copy of this endpoint's counters."""
        with self._lock:
            copy = EndpointStats(**{k: getattr(self._stats, k) for k in self._stats.__dataclass_fields__})
            copy.samples_dropped = dict(self._stats.samples_dropped)
            copy.batch_durations = []
            copy.pending_samples = sum(c.samples for c in self._queue)
            copy.pending_collections = len(self._queue)
            return copy

    def take_batch_durations(self) -> list[float]:
        """Return and forget the durations of requests delivered since the last call."""
        with self._lock:
            durations, self._stats.batch_durations = self._stats.batch_durations, []
            return durations

    def protocol(self) -> str:
        """The protocol the next collection should be encoded in."""
        return "1.0" if self.negotiator is None else str(self.negotiator.protocol())

    def needs_fallback(self) -> bool:
        """Whether 2.0 collections must carry 1.0 copies (``auto``, and 2.0 not yet confirmed)."""
        negotiator = self.negotiator
        return negotiator is not None and negotiator.mode == "auto" and not negotiator.confirmed_v2

    def submit(self, collection: Collection) -> None:
        """Queue ``collection``; never blocks on the network.  Drops the oldest waiting beyond capacity."""
        with self._cond:
            for reason, samples in collection.unsendable.items():
                # Dropped for good but never queued: counted, and flush() does not wait on them.
                self._count_dropped(samples, reason)
            if self._stopping and self._give_up_at is not None:
                self._drop(collection, "shutdown")
                self._delivered_seq = max(self._delivered_seq, collection.seq)
                return
            self._queue.append(collection)
            self._pending_bytes += collection.nbytes
            while len(self._queue) > 1 and (
                len(self._queue) > self._max_collections or self._pending_bytes > self._max_bytes
            ):
                # Keep the head: it may be in flight.  Drop the oldest one behind it.
                victim = self._queue[1]
                del self._queue[1]
                self._pending_bytes -= victim.nbytes
                self._drop(victim, "queue_full")
                self._advance_delivered()
            self._cond.notify_all()

    def wait_delivered(self, seq: int, timeout: float | None) -> bool:
        """Wait until every collection up to ``seq`` is finished; tell whether that happened in time."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while self._delivered_seq < seq:
                remaining = None if deadline is None else deadline - self._clock()
                if remaining is not None and remaining <= 0:
                    return False
                if not self._thread.is_alive():
                    return False
                self._cond.wait(remaining if remaining is None else min(remaining, 1.0))
            return True

    def dropped_after(self, seq: int) -> bool:
        """Tell whether any collection newer than ``seq`` lost samples."""
        with self._lock:
            return any(dropped > seq for dropped in self._dropped_seqs)

    def stop(self, deadline: float) -> bool:
        """Deliver what is queued until ``deadline`` (monotonic), then stop; return whether all went out."""
        with self._cond:
            self._stopping = True
            self._give_up_at = deadline
            self._cond.notify_all()
        self._thread.join(max(0.0, deadline - self._clock()))
        with self._cond:
            drained = not self._queue
            if self._thread.is_alive():
                # Stuck in a request to a receiver that never answers: give up on what waits
                # behind it.  The head stays: when its request returns (its own timeout fires,
                # or the interpreter ends the daemon thread) the thread counts it, once.
                while len(self._queue) > 1:
                    victim = self._queue.pop()
                    self._pending_bytes -= victim.nbytes
                    self._drop(victim, "shutdown")
        if not self._thread.is_alive():
            self._transport.close()
        return drained

    def after_fork_in_child(self) -> None:
        """Forget everything inherited from the parent; the child's copy of the thread is gone."""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue = deque()
        self._pending_bytes = 0
        self._stopping = True

    # -- the delivery thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if not self._queue:
                        return
                    collection = self._queue[0]
                    self._delivering_seq = collection.seq
                self._deliver(collection)
                with self._cond:
                    if self._queue and self._queue[0] is collection:
                        self._queue.popleft()
                        self._pending_bytes -= collection.nbytes
                    self._delivered_seq = max(self._delivered_seq, collection.seq)
                    self._advance_delivered()
                    self._cond.notify_all()
            except Exception:  # the loop must never die
                logger.error("Remote-write sender for %s failed unexpectedly", self.url, exc_info=True)
                with self._cond:
                    if self._queue:
                        victim = self._queue.popleft()
                        self._pending_bytes -= victim.nbytes
                        self._drop(victim, "internal_error")
                        self._delivered_seq = max(self._delivered_seq, victim.seq)
                    self._cond.notify_all()

    def _advance_delivered(self) -> None:
        """Everything older than the oldest queued collection is finished."""
        if self._queue:
            self._delivered_seq = max(self._delivered_seq, self._queue[0].seq - 1)

    def _deliver(self, collection: Collection) -> None:
        """Send every request of ``collection`` in order, retrying as the policy allows."""
        while collection.requests:
            request = collection.requests[0]
            outcome = self._send_with_retries(request)
            if outcome == "fallback":
                if collection.fallback is not None:
                    collection.requests = deque(collection.fallback)
                    collection.fallback = None
                    continue
                # 2.0 had been confirmed, so no 1.0 copy was kept; the next collection is 1.0.
                outcome = "dropped"
                with self._lock:
                    self._drop_samples(request.samples, "protocol_fallback")
            if outcome == "split":
                halves = split_body(_snappy.decompress(request.body), request.protocol)
                if halves is not None:
                    collection.requests.popleft()
                    for part, count in reversed(halves):
                        collection.requests.appendleft(
                            Request(_snappy.compress(part), count, request.protocol)
                        )
                    continue
                outcome = "dropped"
                with self._lock:
                    self._drop_samples(request.samples, "too_large")
            collection.requests.popleft()
            if outcome == "sent":
                collection.fallback = None  # 2.0 confirmed for this collection, if it was 2.0
                with self._lock:
                    stats = self._stats
                    stats.highest_sent_timestamp_ms = max(
                        stats.highest_sent_timestamp_ms, collection.timestamp_ms
                    )

    def _send_with_retries(self, request: Request) -> str:
        """Return ``sent``, ``dropped``, ``fallback`` (resend as 1.0) or ``split`` (413)."""
        attempt = 0
        while True:
            with self._lock:
                give_up_at = self._give_up_at
                self._stats.attempts += 1
            timeout = None
            if give_up_at is not None:
                timeout = give_up_at - self._clock()
                if timeout <= 0:
                    with self._lock:
                        self._drop_samples(request.samples, "shutdown")
                    return "dropped"
            started = self._clock()
            try:
                result = self._transport.send(
                    request.body, protocol=request.protocol, attempt=attempt, timeout=timeout
                )
            except NonRetryableReceiverError as exc:
                if self.negotiator is not None and self.negotiator.observe(
                    request.protocol, status_code=exc.status_code, confirmed_v2=False
                ):
                    return "fallback"
                if exc.status_code == 413 and request.samples > 1:
                    return "split"
                with self._lock:
                    self._stats.errors += 1
                    self._stats.last_error = str(exc)
                    self._drop_samples(request.samples, f"http_{exc.status_code}")
                    self._stats.samples_failed += request.samples
                self._log_rejection(exc)
                return "dropped"
            except SendError as exc:
                retry_after = retry_after_of(exc)
                attempt += 1
                delay = self._policy.delay(attempt, retry_after)
                with self._lock:
                    self._stats.errors += 1
                    self._stats.last_error = str(exc)
                    self._stats.samples_retried += request.samples
                if attempt == 1 or attempt % 10 == 0:
                    logger.warning(
                        "Remote write to %s failed (attempt %d), retrying in %.2fs: %s",
                        self.url,
                        attempt,
                        delay,
                        exc,
                    )
                if self._wait_retry(delay):
                    with self._lock:
                        self._drop_samples(request.samples, "shutdown")
                    return "dropped"
                continue
            duration = self._clock() - started
            if self.negotiator is not None and self.negotiator.observe(
                request.protocol, status_code=result.status_code, confirmed_v2=result.confirms_v2
            ):
                return "fallback"
            with self._lock:
                stats = self._stats
                stats.successes += 1
                stats.samples_sent += request.samples
                stats.bytes_sent += len(request.body)
                stats.protocol = request.protocol
                if result.samples_written is not None:
                    stats.samples_written_reported += result.samples_written
                stats.batch_durations.append(duration)
                if len(stats.batch_durations) > 10_000:
                    del stats.batch_durations[:5_000]
            return "sent"

    def _wait_retry(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; return True if shutdown's deadline ends the wait."""
        with self._cond:
            end = self._clock() + delay
            while True:
                now = self._clock()
                if self._give_up_at is not None and now >= self._give_up_at:
                    return True
                if now >= end:
                    return False
                limit = end if self._give_up_at is None else min(end, self._give_up_at)
                self._cond.wait(limit - now)

    def _drop(self, collection: Collection, reason: str) -> None:
        samples = sum(r.samples for r in collection.requests)
        self._drop_samples(samples, reason, collection.seq)
        if reason == "queue_full":
            logger.warning(
                "Remote-write queue for %s is full; dropped the oldest collection (%d samples)",
                self.url,
                samples,
            )

    def _drop_samples(self, samples: int, reason: str, seq: int | None = None) -> None:
        """Count ``samples`` as dropped for ``reason`` from a queued collection; the caller holds the lock."""
        self._dropped_seqs.append(self._delivering_seq if seq is None else seq)
        self._count_dropped(samples, reason)

    def _count_dropped(self, samples: int, reason: str) -> None:
        """Add ``samples`` to the dropped count of ``reason``; the caller holds the lock."""
        dropped = self._stats.samples_dropped
        dropped[reason] = dropped.get(reason, 0) + samples

    def _log_rejection(self, exc: NonRetryableReceiverError) -> None:
        """Log the receiver's message verbatim (truncated), at most once a minute per endpoint."""
        now = self._clock()
        if now - self._last_error_log < _ERROR_LOG_INTERVAL:
            self._suppressed_errors += 1
            return
        suppressed, self._suppressed_errors = self._suppressed_errors, 0
        self._last_error_log = now
        logger.error(
            "Remote write to %s rejected with %d, batch dropped (not retried): %s%s",
            self.url,
            exc.status_code,
            exc.message[:512],
            f" ({suppressed} similar rejections not logged)" if suppressed else "",
        )
