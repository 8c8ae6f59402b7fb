"""What a spool knows of its records without reading them (the index), and the values it hands out.

Per segment file, for every record: its id, offset, body length, samples and whether it is
still unacked (about 25 bytes per record).  Ids grow through the segments, so a record is found
by two bisections.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import NamedTuple

from .spool_format import HEADER_BYTES

__all__ = ["Appended", "DroppedRecord", "Index", "Segment", "SpoolRecord", "SpoolStats"]


@dataclass(frozen=True)
class SpoolRecord:
    """One spooled request, as :meth:`Spool.records` yields it."""

    record_id: int
    body: bytes
    protocol: str
    samples: int
    seq: int
    timestamp_ms: int


class DroppedRecord(NamedTuple):
    """A record the bound pushed out: the caller counts ``samples`` as dropped unless it is in flight."""

    record_id: int
    samples: int


@dataclass(frozen=True)
class Appended:
    """What :meth:`Spool.append` did.

    ``record_id`` is ``None`` when the record was not written; ``reason`` is then
    ``"too_large"`` (larger than ``max_bytes``), ``"write_error"`` or ``"closed"``.  ``dropped``
    lists the records the bound pushed out to make room, oldest first.
    """

    record_id: int | None
    dropped: tuple[DroppedRecord, ...] = ()
    reason: str | None = None

    @property
    def dropped_samples(self) -> int:
        return sum(d.samples for d in self.dropped)


@dataclass(frozen=True)
class SpoolStats:
    """A spool's state and counters since it was opened (see :meth:`Spool.stats`)."""

    records: int  # unacked records
    samples: int  # their samples
    bytes: int  # of segment files on disk
    segments: int
    appended: int = 0
    acked: int = 0
    dropped_records: int = 0  # pushed out by the bound
    dropped_samples: int = 0
    rejected_too_large: int = 0  # records larger than max_bytes, never written
    truncated_tails: int = 0  # invalid segment tails cut off at open (torn writes)
    truncated_bytes: int = 0
    corrupt_regions: int = 0  # invalid stretches between valid records, skipped at open
    corrupt_bytes: int = 0
    corrupt_records: int = 0  # records that failed their checksum when read back
    io_errors: int = 0  # failed writes, truncations, fsyncs or unlinks (logged)
    fsyncs: int = 0


class Segment:
    """The index of one segment file: per record its id, offset, body length, samples and liveness."""

    __slots__ = (
        "acked",
        "fd",
        "first_id",
        "ids",
        "lengths",
        "live",
        "live_count",
        "live_samples",
        "offsets",
        "path",
        "samples",
        "size",
    )

    def __init__(self, first_id: int, path: str) -> None:
        self.first_id = first_id
        self.path = path
        self.ids = array("Q")
        self.offsets = array("Q")
        self.lengths = array("I")
        self.samples = array("I")
        self.live = bytearray()
        self.live_count = 0
        self.live_samples = 0
        self.acked = 0  # entries of this segment in the ack log
        self.size = 0  # bytes of the file
        self.fd = -1  # open for appending while this is the active segment

    def add(self, record_id: int, offset: int, length: int, samples: int) -> None:
        self.ids.append(record_id)
        self.offsets.append(offset)
        self.lengths.append(length)
        self.samples.append(samples)
        self.live.append(1)
        self.live_count += 1
        self.live_samples += samples

    def live_records(self) -> list[DroppedRecord]:
        """The unacked records of this segment, oldest first."""
        return [DroppedRecord(self.ids[i], self.samples[i]) for i in range(len(self.ids)) if self.live[i]]


class Index:
    """The segments of a spool, oldest first, and the totals of what they hold."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.firsts: list[int] = []  # first_id of each segment, for bisect
        self.disk_bytes = 0  # of the segment files
        self.live_records = 0
        self.live_samples = 0

    def add(self, segment: Segment) -> None:
        """Add a newest segment (opened, or read at recovery) with what it holds."""
        self.segments.append(segment)
        self.firsts.append(segment.first_id)
        self.disk_bytes += segment.size
        self.live_records += segment.live_count
        self.live_samples += segment.live_samples

    def remove(self, segment: Segment) -> None:
        """Forget a segment whose file is gone."""
        at = self.segments.index(segment)
        del self.segments[at]
        del self.firsts[at]
        self.disk_bytes -= segment.size
        self.live_records -= segment.live_count
        self.live_samples -= segment.live_samples

    def add_record(self, segment: Segment, record_id: int, offset: int, length: int, samples: int) -> None:
        """Index a record just written at ``offset`` of ``segment`` (the newest)."""
        size = HEADER_BYTES + length
        segment.add(record_id, offset, length, samples)
        segment.size = offset + size
        self.disk_bytes += size
        self.live_records += 1
        self.live_samples += samples

    def mark_dead(self, segment: Segment, index: int) -> None:
        segment.live[index] = 0
        segment.live_count -= 1
        segment.live_samples -= segment.samples[index]
        self.live_records -= 1
        self.live_samples -= segment.samples[index]

    def locate(self, record_id: int) -> tuple[Segment, int] | None:
        """The segment of ``record_id`` and its index there, acked or not; None if gone."""
        at = bisect_right(self.firsts, record_id) - 1
        if at < 0:
            return None
        segment = self.segments[at]
        index = bisect_left(segment.ids, record_id)
        if index < len(segment.ids) and segment.ids[index] == record_id:
            return segment, index
        return None

    def is_live(self, record_id: int) -> bool:
        located = self.locate(record_id)
        return located is not None and bool(located[0].live[located[1]])

    def next_live(self, cursor: int, through: int | None) -> tuple[Segment, int] | None:
        """The first live record after ``cursor`` and not after ``through``."""
        for segment in self.segments[max(0, bisect_right(self.firsts, cursor) - 1) :]:
            index = segment.live.find(1, bisect_right(segment.ids, cursor))
            if index >= 0:
                if through is not None and segment.ids[index] > through:
                    return None
                return segment, index
        return None
