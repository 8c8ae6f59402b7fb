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
from typing import TYPE_CHECKING

from .._exceptions import ReceiverError
from .._protocol import snappy as _snappy
from .._protocol.batching import Request, compress_requests, split_body
from .ledger import EndpointStats, Ledger
from .retry import Delivery, Outcome, RetryPolicy, send_with_retries

if TYPE_CHECKING:  # importing httpx is for when the first transport is built, not for import time
    from .._http.transport import Transport
    from .negotiate import Negotiator

logger = logging.getLogger(__name__)

__all__ = [
    "Collection",
    "EndpointSender",
    "EndpointStats",
    "Request",
    "compress_requests",  # re-exported from _protocol.batching, their home
    "split_body",
]


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


class EndpointSender:
    """Deliver collections to one endpoint, in order, from a daemon thread.

    Args:
        transport: the endpoint's :class:`~prometheus_rw_bridge._http.transport.Transport`.
        policy: backoff bounds for retries.
        max_pending_collections: collections that may wait (the one in flight included).
        max_pending_bytes: compressed bytes that may wait.
        negotiator: optional :class:`~prometheus_rw_bridge._delivery.negotiate.Negotiator`
            for ``protocol="auto"``.
        clock: monotonic clock, injectable for tests.
        thread_name: the delivery thread's name.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        policy: RetryPolicy | None = None,
        max_pending_collections: int = 80,
        max_pending_bytes: int = 64 * 1024 * 1024,
        negotiator: Negotiator | None = None,
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
        self._stopping = False
        self._give_up_at: float | None = None  # set by stop(): the shutdown deadline
        self._ledger = Ledger(transport.url, transport.remote_name, clock=clock)
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
            samples = sum(c.samples for c in self._queue)
            collections = len(self._queue)
        return self._ledger.snapshot(pending_samples=samples, pending_collections=collections)

    def take_batch_durations(self) -> list[float]:
        """Return and forget the durations of requests delivered since the last call."""
        return self._ledger.take_batch_durations()

    def protocol(self) -> str:
        """The protocol the next collection should be encoded in."""
        return "1.0" if self.negotiator is None else str(self.negotiator.protocol())

    def needs_fallback(self) -> bool:
        """Whether 2.0 collections must carry 1.0 copies (``auto``, and 2.0 not yet confirmed)."""
        negotiator = self.negotiator
        return negotiator is not None and negotiator.mode == "auto" and not negotiator.confirmed_v2

    def submit(self, collection: Collection) -> None:
        """Queue ``collection``; never blocks on the network.  Drops the oldest waiting beyond capacity."""
        victims: list[int] = []
        with self._cond:
            for reason, samples in collection.unsendable.items():
                # Dropped for good but never queued: counted, and flush() does not wait on them.
                self._ledger.dropped(samples, reason, None)
            if self._stopping and self._give_up_at is not None:
                self._ledger.dropped(collection.samples, "shutdown", collection.seq)
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
                self._ledger.dropped(victim.samples, "queue_full", victim.seq)
                victims.append(victim.samples)
                self._advance_delivered()
            self._cond.notify_all()
        for samples in victims:
            self._ledger.warn_queue_full(samples)

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
        return self._ledger.dropped_after(seq)

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
                    self._ledger.dropped(victim.samples, "shutdown", victim.seq)
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
        self._ledger.after_fork_in_child()

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
                        self._ledger.dropped(victim.samples, "internal_error", victim.seq)
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
            delivery = send_with_retries(
                self._transport,
                request.body,
                protocol=request.protocol,
                deadline=lambda: self._give_up_at,
                policy=self._policy,
                negotiator=self.negotiator,
                clock=self._clock,
                wait=self._wait_retry,
                hooks=self._ledger.retrying(request.samples),
            )
            if delivery.outcome is Outcome.FALLBACK and collection.fallback is not None:
                collection.requests = deque(collection.fallback)
                collection.fallback = None
                continue
            if delivery.outcome is Outcome.TOO_LARGE and request.samples > 1 and _split_head(collection):
                continue
            collection.requests.popleft()
            self._account(collection, request, delivery)

    def _account(self, collection: Collection, request: Request, delivery: Delivery) -> None:
        """Count what delivering ``request`` came to."""
        outcome, seq = delivery.outcome, collection.seq
        if outcome is Outcome.SENT:
            collection.fallback = None  # 2.0 confirmed for this collection, if it was 2.0
            self._ledger.sent(
                request.samples, len(request.body), request.protocol, delivery, collection.timestamp_ms
            )
        elif outcome is Outcome.FALLBACK:
            # 2.0 had been confirmed, so no 1.0 copy was kept; the next collection is 1.0.
            self._ledger.dropped(request.samples, "protocol_fallback", seq)
        elif outcome is Outcome.TOO_LARGE and request.samples > 1:
            self._ledger.dropped(request.samples, "too_large", seq)
        elif outcome is Outcome.GAVE_UP:
            self._ledger.dropped(request.samples, "shutdown", seq)
        else:
            assert isinstance(delivery.error, ReceiverError)
            self._ledger.rejected(request.samples, delivery.error, seq)

    def _wait_retry(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; return True if shutdown's deadline comes first."""
        with self._cond:
            end = self._clock() + delay
            while True:
                if self._give_up_at is not None and self._give_up_at <= end:
                    return True
                remaining = end - self._clock()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)


def _split_head(collection: Collection) -> bool:
    """Replace the head request (refused as too large) by its two halves; False if it has one series."""
    request = collection.requests[0]
    halves = split_body(_snappy.decompress(request.body), request.protocol)
    if halves is None:
        return False
    collection.requests.popleft()
    for part, count in reversed(halves):
        collection.requests.appendleft(Request(_snappy.compress(part), count, request.protocol))
    return True
