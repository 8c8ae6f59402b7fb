"""``push_to_remote_write()`` for one endpoint: one collection, its deadline, and the cron hand-over.

The same delivery as the background sender (:func:`~.deliver.deliver_collection`: the 2.0 probe,
the 1.0 fallback, ``max_shards`` requests at once, the one retry loop), within ``timeout`` seconds
in all, raising instead of counting.  With ``spool_dir`` the push is written to the endpoint's
spool before anything is sent; what an earlier call left there goes first, oldest first, and
whatever this call cannot deliver before its deadline stays for the next one, which delivers it
first (the cron hand-over).  A 4xx answer (never retried) and data past ``sample_age_limit`` are
forgotten once logged; the first error of the push is raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._exceptions import ReceiverError, SendError
from .collection import Collection, Part
from .deliver import deliver_collection
from .lanes import Lanes
from .ledger import Ledger
from .negotiate import Negotiator
from .retry import Outcome, send_with_retries
from .spooled import read_body, replayed, spool_collection

if TYPE_CHECKING:
    from .._config.settings import EndpointSettings
    from .._http.transport import Transport
    from .._protocol.batching import Request
    from .spool import Spool

__all__ = ["push_once"]


def push_once(
    endpoint: EndpointSettings,
    transport: Transport,
    *,
    mode: str,
    timestamp_ms: int,
    requests: Mapping[str, Sequence[Request]],
    max_bytes_per_send: int | None,
    spool: Spool | None,
) -> SendError | None:
    """Push one collection (``requests`` by protocol) to one endpoint; return the error that ended it.

    Closes ``transport`` and ``spool``.
    """
    negotiator = Negotiator(mode)
    protocol = negotiator.protocol()
    fallback = [Part.of(r) for r in requests["1.0"]] if protocol == "2.0" and mode == "auto" else None
    seq = 0 if spool is None else spool.recovered_through + 1  # unique in the spool: ids only grow
    collection = Collection(seq, timestamp_ms, [Part.of(r) for r in requests[protocol]], fallback or None)
    courier = _OneShot(endpoint, transport, negotiator, max_bytes_per_send, spool)
    lanes = Lanes(endpoint.max_shards, name="prometheus-rw-bridge-push-lane")
    try:
        if spool is not None:
            spool_collection(spool, collection)  # kept, should this push fail
            for old in replayed(spool):
                deliver_collection(old, courier, lanes)
                if courier.gave_up:
                    return courier.error  # newer data must not overtake it: it all waits
        deliver_collection(collection, courier, lanes)
    finally:
        lanes.close()
        transport.close()
        if spool is not None:
            spool.close()
    return courier.error


class _OneShot:
    """The :class:`~.deliver.Courier` of one push: the first error is kept for the caller."""

    def __init__(
        self,
        endpoint: EndpointSettings,
        transport: Transport,
        negotiator: Negotiator,
        max_bytes: int | None,
        spool: Spool | None,
    ) -> None:
        self._transport = transport
        self._negotiator = negotiator
        self._deadline = time.monotonic() + endpoint.timeout
        self._age_limit = endpoint.sample_age_limit or None
        self._max_bytes = max_bytes
        self._spool = spool
        self._ledger = Ledger(transport.url, transport.remote_name)  # for its log lines
        self._lock = threading.Lock()
        self.error: SendError | None = None
        self.gave_up = False

    def deliver(self, part: Part, collection: Collection) -> Outcome | None:
        age = time.time() - collection.timestamp_ms / 1000.0
        if self._age_limit is not None and age > self._age_limit:
            self._ledger.too_old(part.samples, self._age_limit, collection.seq)
            self._ack(part)
            return None
        body = read_body(self._spool, part) if self._spool is not None else part.body
        if body is None:
            return None  # the spool's bound dropped it (logged there)
        if self._max_bytes is not None and len(body) > self._max_bytes:
            self._ledger.too_large(part.samples, len(body), self._max_bytes, collection.seq)
            self._fail(SendError(f"a {len(body)}-byte request is larger than max_bytes_per_send"))
            self._ack(part)
            return None
        expiry = None if self._age_limit is None else time.monotonic() + self._age_limit - age
        delivery = send_with_retries(
            self._transport,
            body,
            protocol=part.protocol,
            deadline=self._deadline,
            expires_at=expiry,
            negotiator=self._negotiator,
        )
        outcome = delivery.outcome
        if outcome is Outcome.FALLBACK and collection.fallback is not None:
            return outcome  # the 1.0 copies replace this collection's requests
        if outcome is Outcome.GAVE_UP:
            self.gave_up = True  # its record stays in the spool
            self._fail(delivery.error)
            return outcome
        if outcome is Outcome.TOO_OLD:
            self._ledger.too_old(part.samples, self._age_limit or 0.0, collection.seq)
        elif outcome is not Outcome.SENT:  # refused for good: a 4xx, or 2.0 after it was confirmed
            if isinstance(delivery.error, ReceiverError):
                self._ledger.rejected(part.samples, delivery.error, collection.seq)
            self._fail(delivery.error or SendError(f"{self._transport.url} does not take remote-write 2.0"))
        self._ack(part)
        return outcome

    def discard(self, parts: Sequence[Part]) -> None:
        for part in parts:
            self._ack(part)

    def protocol(self) -> str:
        return self._negotiator.protocol()

    def _ack(self, part: Part) -> None:
        if self._spool is not None and part.record_id is not None:
            self._spool.ack(part.record_id)

    def _fail(self, error: SendError | None) -> None:
        with self._lock:
            if self.error is None and error is not None:
                self.error = error
