"""Between the queue and the disk spool: spool a collection's requests, read them back, replay a spool.

:class:`SpooledParts` is a sender's side of it: the parts that wait only on disk, by record id,
so that a record the spool's bound drops is counted once, and never read back once taken.

A spooled request is written before it is sent and forgotten in memory: its :class:`Part`
keeps the record id, and the body is read back from the spool when its turn comes, so the
spool, not memory, bounds what an outage can hold.  On start the spool's records are replayed
as the collections they were, in order: consecutive records with the same collection sequence
number and timestamp are one collection, 2.0 requests with their 1.0 copies as its fallback.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

from .collection import Collection, Part
from .spool import DroppedRecord, Spool, SpoolRecord, endpoint_directory

__all__ = ["SpooledParts", "open_spool", "read_body", "replayed", "spool_collection"]


def open_spool(spool_dir: str | os.PathLike[str], url: str, tenant: str | None, max_bytes: int) -> Spool:
    """Open (and own) the spool of one endpoint under ``spool_dir``; see ``Spool`` for what it raises."""
    return Spool(endpoint_directory(spool_dir, url, tenant), max_bytes=max_bytes)


def spool_collection(spool: Spool, collection: Collection) -> list[DroppedRecord]:
    """Append every request of ``collection`` (its 1.0 copies too) and sync; return what the bound dropped.

    A part that could not be written (disk full, larger than the spool) keeps its body in
    memory and is sent from there; it is then not crash-safe.
    """
    dropped: list[DroppedRecord] = []
    for part in collection.all_parts():
        if part.body is None:
            continue
        appended = spool.append(
            part.body,
            protocol=part.protocol,
            samples=part.samples,
            seq=collection.seq,
            timestamp_ms=collection.timestamp_ms,
        )
        dropped += appended.dropped
        if appended.record_id is not None:
            part.record_id, part.body = appended.record_id, None
    spool.sync()
    return dropped


def read_body(spool: Spool, part: Part) -> bytes | None:
    """The body of ``part``, from memory or from the spool; None if the spool no longer has it."""
    if part.body is not None or part.record_id is None:
        return part.body
    record = spool.read(part.record_id)
    return None if record is None else record.body


def replayed(spool: Spool) -> Iterator[Collection]:
    """The collections a previous run left in ``spool``, oldest first, one at a time.

    Their ``seq`` is 0: they belong to no collection of this run.
    """
    group: list[SpoolRecord] = []
    for record in spool.records(through=spool.recovered_through):
        if group and (record.seq, record.timestamp_ms) != (group[0].seq, group[0].timestamp_ms):
            yield _collection_of(group)
            group = []
        group.append(record)
    if group:
        yield _collection_of(group)


def _collection_of(records: list[SpoolRecord]) -> Collection:
    parts = [Part(r.samples, r.protocol, r.body, len(r.body), r.record_id) for r in records]
    v2 = [part for part in parts if part.protocol == "2.0"]
    v1 = [part for part in parts if part.protocol == "1.0"]
    if v2 and v1:  # written while 2.0 was not yet confirmed: the 1.0 requests are its copies
        return Collection(0, records[0].timestamp_ms, v2, v1)
    return Collection(0, records[0].timestamp_ms, parts)


class SpooledParts:
    """One sender's spool (or none: then every method is a no-op) and its parts waiting on disk.

    A part is *waiting* from :meth:`write` until :meth:`take`; a record the spool's bound drops
    while its part waits is returned by :meth:`write` (to be counted) and the part emptied; one
    dropped after it was taken reads back as None (count it then).  Thread-safe.
    """

    def __init__(self, spool: Spool | None) -> None:
        self.spool = spool
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[Part, int]] = {}  # record id: (part, collection seq)

    def write(self, collection: Collection) -> list[tuple[Part, int]]:
        """Spool ``collection``; return the waiting parts (and their seqs) the spool's bound dropped."""
        if self.spool is None:
            return []
        dropped = spool_collection(self.spool, collection)
        with self._lock:
            for part in collection.all_parts():
                if part.body is None and part.record_id is not None:
                    self._waiting[part.record_id] = (part, collection.seq)
            gone = [found for d in dropped if (found := self._waiting.pop(d.record_id, None))]
        for part, _ in gone:
            part.record_id = None  # nothing left to send: body and record are gone
        return gone

    def take(self, part: Part) -> bool:
        """Claim ``part`` for sending; False if the spool's bound dropped it (it was counted then)."""
        with self._lock:
            if part.record_id is None:
                return part.body is not None
            return self._waiting.pop(part.record_id, None) is not None or part.body is not None

    def body(self, part: Part) -> bytes | None:
        """The body of a claimed ``part``; None if the bound dropped it after the claim."""
        return part.body if self.spool is None else read_body(self.spool, part)

    def release(self, part: Part, *, keep: bool) -> bool:
        """Give ``part`` up unsent: forget it on disk too, unless ``keep`` (sent at the next start).

        Returns whether it still held data (not already counted as dropped).
        """
        with self._lock:
            if part.record_id is not None:
                self._waiting.pop(part.record_id, None)
        live = part.record_id is not None or part.body is not None
        if not keep:
            self.ack(part)
        return live

    def ack(self, part: Part) -> None:
        """Forget ``part``: answered, or never to be sent."""
        if self.spool is not None and part.record_id is not None:
            self.spool.ack(part.record_id)
            part.record_id = None
        part.body = None

    def replayed(self) -> Iterator[Collection]:
        """What a previous run left in the spool, oldest first (see :func:`replayed`)."""
        return iter(()) if self.spool is None else replayed(self.spool)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._waiting = {}
