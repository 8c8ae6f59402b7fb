"""Delivering one collection: the 2.0 probe, the 1.0 fallback, then every request through the lanes.

Shared by the background sender and ``push_to_remote_write``; each passes a :class:`Courier`
that sends one request (through the retry loop) and settles what it cost.

While an ``auto`` endpoint has not yet confirmed 2.0, a collection carries 1.0 copies of its
requests.  Its first request then goes out alone: if the receiver shows it does not speak 2.0
(``Outcome.FALLBACK``), the 2.0 requests are discarded and the 1.0 copies sent instead;
otherwise the copies are discarded and the rest follow.  Only after that do several requests
go out at once, so a fallback never finds half a collection sent in the wrong protocol.  A
collection made as 2.0 before the endpoint fell back (a spool replay, say) goes out as its 1.0
copies at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Protocol

from .collection import Collection, Part
from .lanes import Lanes
from .retry import Outcome

__all__ = ["Courier", "deliver_collection"]


class Courier(Protocol):
    """What delivering a collection needs from its caller."""

    def deliver(self, part: Part, collection: Collection) -> Outcome | None:
        """Send ``part`` and settle it (count it, ack its spool record); None if nothing was sent.

        A ``FALLBACK`` while ``collection.fallback`` still holds the 1.0 copies is returned
        unsettled: the copies replace the collection's parts.
        """

    def discard(self, parts: Sequence[Part]) -> None:
        """Forget requests that will never be sent (the other protocol's copies): no loss."""

    def protocol(self) -> str:
        """The protocol the endpoint is known to take now (``"1.0"`` after a fallback)."""


def deliver_collection(collection: Collection, courier: Courier, lanes: Lanes) -> None:
    """Deliver every request of ``collection``, up to ``lanes.count`` at once; return when all are settled."""
    parts = collection.parts
    if collection.fallback is not None and courier.protocol() == "1.0":
        courier.discard(parts)  # made as 2.0 before the endpoint fell back (a replay, say)
        parts = collection.parts = collection.fallback
        collection.fallback = None
    if collection.fallback is not None:
        while parts:  # probe with one request at a time until one is answered
            outcome = courier.deliver(parts[0], collection)
            if outcome is Outcome.FALLBACK:
                courier.discard(parts)
                parts = collection.parts = collection.fallback
                break
            parts = parts[1:]
            if outcome is not None:
                if outcome is not Outcome.GAVE_UP:  # at shutdown the copies wait with the rest
                    courier.discard(collection.fallback)
                break
        else:  # nothing was sent (too old, or gone): nor will the copies be
            courier.discard(collection.fallback)
        collection.fallback = None
    lanes.run([partial(courier.deliver, part, collection) for part in parts])
