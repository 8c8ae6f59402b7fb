"""One endpoint's ordered queue and the thread that delivers it.

Each endpoint gets its own :class:`EndpointSender`: a bounded FIFO of collections, delivered one
collection after another, up to ``max_shards`` requests of a collection at once (``lanes`` says
why that keeps every series in order), retries with backoff for 5xx, 429 and connection
failures, and its own counters.  A dead endpoint therefore never delays another.

Capacity without a spool: at most ``max_pending_collections`` collections and
``max_pending_bytes`` compressed bytes wait; beyond either bound the oldest waiting collection
(never the one being delivered) is dropped and its samples counted with reason ``queue_full``.
With a spool every request is written to disk before it is sent and only its record id waits in
memory, so the spool's own bound applies (reason ``spool_full``); ``max_pending_bytes`` still
bounds the bodies that could not be spooled.  What a previous run left in the spool is sent
first, in order, before anything of this run.

``sample_age_limit``: a request whose collection is older than that is dropped (``too_old``)
instead of being sent or retried, so a lasting 429 or 503 costs the old data, not the new.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .._config.settings import DEFAULT_MAX_SHARDS
from .._exceptions import ReceiverError
from .collection import Collection, Part
from .deliver import deliver_collection
from .lanes import Lanes
from .ledger import EndpointStats, Ledger
from .retry import Delivery, Outcome, RetryPolicy, send_with_retries
from .spooled import SpooledParts

if TYPE_CHECKING:  # importing httpx is for when the first transport is built, not for import time
    from .._http.transport import Transport
    from .negotiate import Negotiator
    from .spool import Spool

logger = logging.getLogger(__name__)

__all__ = ["EndpointSender", "EndpointStats"]


class EndpointSender:
    """Deliver collections to one endpoint, in order, from a daemon thread.

    Args:
        transport: the endpoint's :class:`~prometheus_rw_bridge._http.transport.Transport`.
        policy: backoff bounds for retries.
        max_pending_collections: collections that may wait (the one in flight included);
            not applied with a spool.
        max_pending_bytes: compressed bytes that may wait in memory.
        negotiator: optional :class:`~prometheus_rw_bridge._delivery.negotiate.Negotiator`
            for ``protocol="auto"``.
        max_shards: requests of one collection in flight at once.
        sample_age_limit: seconds after which a collection's data is dropped unsent; None: never.
        max_bytes_per_send: a request body larger than this is dropped unsent; None: no limit.
        spool: the endpoint's open spool (this sender closes it), or None.
        clock: monotonic clock, injectable for tests.
        wall_clock: the time collections are stamped with, for their age.
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
        max_shards: int = DEFAULT_MAX_SHARDS,
        sample_age_limit: float | None = None,
        max_bytes_per_send: int | None = None,
        spool: Spool | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        thread_name: str = "prometheus-rw-bridge-send",
    ) -> None:
        self._transport = transport
        self._policy = policy or RetryPolicy()
        self._max_collections = max_pending_collections
        self._max_bytes = max_pending_bytes
        self.negotiator = negotiator
        self._age_limit = sample_age_limit or None
        self._max_body = max_bytes_per_send
        self._disk = SpooledParts(spool)
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[Collection] = deque()
        self._pending_bytes = 0
        self._replaying: Collection | None = None
        self._left_in_spool = 0  # samples that stay on disk for the next start
        self._delivered_seq = 0  # every collection with seq <= this is finished (sent or dropped)
        self._stopping = False
        self._give_up_at: float | None = None  # set by stop(): the shutdown deadline
        self._ledger = Ledger(transport.url, transport.remote_name, clock=clock)
        self._lanes = Lanes(max_shards, name=f"{thread_name}-lane")
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
            waiting = [*self._queue, *((self._replaying,) if self._replaying else ())]
            samples = sum(c.samples for c in waiting)
        return self._ledger.snapshot(pending_samples=samples, pending_collections=len(waiting))

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
        """Queue ``collection`` (spooled first); never waits on the network.  Applies the bounds."""
        for reason, samples in collection.unsendable.items():
            # Dropped for good but never queued: counted, and flush() does not wait on them.
            self._ledger.dropped(samples, reason, None)
        for part, seq in self._disk.write(collection):  # the spool's bound pushed these out
            self._ledger.dropped(part.samples, "spool_full", seq)
        victims: list[Collection] = []
        with self._cond:
            if self._stopping and self._give_up_at is not None:
                self._settle_unsent(collection, "shutdown")
                self._delivered_seq = max(self._delivered_seq, collection.seq)
                return
            collection.held = collection.nbytes
            self._queue.append(collection)
            self._pending_bytes += collection.held
            victims = self._apply_bounds()
            self._cond.notify_all()
        for victim in victims:
            self._ledger.warn_queue_full(victim.samples)

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
                    self._settle_unsent(self._queue.pop(), "shutdown")
            left = self._left_in_spool
        if not self._thread.is_alive():
            self._transport.close()
            self._lanes.close()
        if left:
            logger.info("Remote write to %s: %d samples stay in the spool for the next start", self.url, left)
        self._disk.close()  # a request still in flight acks nothing more: it is sent again
        return drained

    def after_fork_in_child(self) -> None:
        """Forget everything inherited from the parent; the child's copy of the thread is gone."""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue = deque()
        self._pending_bytes = 0
        self._disk.after_fork_in_child()
        self._stopping = True
        self._ledger.after_fork_in_child()
        self._lanes.after_fork_in_child()

    # -- the queue (the caller holds the lock) ---------------------------------------------

    def _apply_bounds(self) -> list[Collection]:
        """Drop the oldest waiting collections beyond the bounds (never the head: it may be in flight)."""
        victims = []
        while len(self._queue) > 1:
            over_count = self._disk.spool is None and len(self._queue) > self._max_collections
            if not over_count and self._pending_bytes <= self._max_bytes:
                break
            # Without a spool the oldest waiting one; with one, the oldest holding bodies in memory.
            at = next((i for i in range(1, len(self._queue)) if over_count or self._queue[i].held), None)
            if at is None:
                break
            victim = self._queue[at]
            del self._queue[at]
            self._settle_unsent(victim, "queue_full")
            victims.append(victim)
            self._advance_delivered()
        return victims

    def _settle_unsent(self, collection: Collection, reason: str) -> None:
        """Give up a collection that will not be sent: its spooled parts stay on disk at shutdown."""
        self._pending_bytes -= collection.held
        collection.held = 0
        keep = reason == "shutdown"
        lost = 0
        for part in collection.all_parts():
            kept = keep and part.record_id is not None
            if self._disk.release(part, keep=kept) and part in collection.parts:
                if kept:
                    self._left_in_spool += part.samples
                else:
                    lost += part.samples
        if lost:
            self._ledger.dropped(lost, reason, collection.seq)

    def _advance_delivered(self) -> None:
        """Everything older than the oldest queued collection is finished."""
        if self._queue:
            self._delivered_seq = max(self._delivered_seq, self._queue[0].seq - 1)

    # -- the delivery thread -------------------------------------------------------------

    def _run(self) -> None:
        if self._disk.spool is not None:
            self._replay()
        while True:
            try:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if not self._queue:
                        return
                    collection = self._queue[0]
                deliver_collection(collection, self, self._lanes)
                with self._cond:
                    if self._queue and self._queue[0] is collection:
                        self._queue.popleft()
                        self._pending_bytes -= collection.held
                    self._delivered_seq = max(self._delivered_seq, collection.seq)
                    self._advance_delivered()
                    self._cond.notify_all()
            except Exception:  # the loop must never die
                logger.error("Remote-write sender for %s failed unexpectedly", self.url, exc_info=True)
                with self._cond:
                    if self._queue:
                        victim = self._queue.popleft()
                        self._settle_unsent(victim, "internal_error")
                        self._delivered_seq = max(self._delivered_seq, victim.seq)
                    self._cond.notify_all()

    def _replay(self) -> None:
        """Send what a previous run left in the spool, collection by collection, before anything new."""
        try:
            for collection in self._disk.replayed():
                with self._lock:
                    self._replaying = collection
                deliver_collection(collection, self, self._lanes)
        except Exception:
            logger.error("Replaying the spool of %s failed; going on with new data", self.url, exc_info=True)
        with self._lock:
            self._replaying = None

    # -- one request (the Courier of deliver_collection), on a lane ----------------------

    def deliver(self, part: Part, collection: Collection) -> Outcome | None:
        """Send ``part`` unless it is gone, too old or too large; settle it; return the outcome.

        None: nothing was sent (so nothing was learnt about the receiver).
        """
        seq = collection.seq
        if not self._disk.take(part):
            return None
        if self._age_limit is not None and self._age(collection) > self._age_limit:
            self._ledger.too_old(part.samples, self._age_limit, seq)
            self._disk.ack(part)
            return None
        body = self._disk.body(part)
        if body is None:
            if not self._stopping:  # the spool's bound dropped it after it was claimed
                self._ledger.dropped(part.samples, "spool_full", seq)
            return None  # (at shutdown the spool is closed: the record waits for the next start)
        if self._max_body is not None and len(body) > self._max_body:
            self._ledger.too_large(part.samples, len(body), self._max_body, seq)
            self._disk.ack(part)
            return None
        delivery = send_with_retries(
            self._transport,
            body,
            protocol=part.protocol,
            deadline=lambda: self._give_up_at,
            expires_at=None if self._age_limit is None else lambda: self._expiry(collection),
            policy=self._policy,
            negotiator=self.negotiator,
            clock=self._clock,
            wait=self._wait_retry,
            hooks=self._ledger.retrying(part.samples),
        )
        if delivery.outcome is Outcome.FALLBACK and collection.fallback is not None:
            return delivery.outcome  # the 1.0 copies replace this collection's requests
        self._settle(part, collection, delivery)
        return delivery.outcome

    def discard(self, parts: Sequence[Part]) -> None:
        """Forget requests that will never be sent (the other protocol's copies of the same data)."""
        for part in parts:
            self._disk.take(part)
            self._disk.ack(part)

    def _settle(self, part: Part, collection: Collection, delivery: Delivery) -> None:
        """Count what delivering ``part`` came to; forget its spool record unless it is kept for later."""
        outcome, seq = delivery.outcome, collection.seq
        if outcome is Outcome.SENT:
            self._ledger.sent(part.samples, part.size, part.protocol, delivery, collection.timestamp_ms)
        elif outcome is Outcome.TOO_OLD:
            self._ledger.too_old(part.samples, self._age_limit or 0.0, seq)
        elif outcome is Outcome.FALLBACK:
            # 2.0 had been confirmed, so no 1.0 copy was kept; the next collection is 1.0.
            self._ledger.dropped(part.samples, "protocol_fallback", seq)
        elif outcome is Outcome.GAVE_UP:
            if part.record_id is not None:  # on disk: sent at the next start
                with self._lock:
                    self._left_in_spool += part.samples
                return
            self._ledger.dropped(part.samples, "shutdown", seq)
        else:
            assert isinstance(delivery.error, ReceiverError)
            self._ledger.rejected(part.samples, delivery.error, seq)
        self._disk.ack(part)

    def _age(self, collection: Collection) -> float:
        return self._wall_clock() - collection.timestamp_ms / 1000.0

    def _expiry(self, collection: Collection) -> float:
        """When (on the monotonic clock) ``collection`` passes the age limit."""
        assert self._age_limit is not None
        return self._clock() + self._age_limit - self._age(collection)

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
