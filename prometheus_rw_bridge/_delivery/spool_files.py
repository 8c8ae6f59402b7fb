"""A spool directory's files and their index: what the :class:`~.spool.Spool` changes under its lock.

:class:`SpoolFiles` is single-threaded: the spool calls it with its lock held (the module
docstring of ``spool`` says what runs outside).  It owns every descriptor of the directory, the
in-memory index of every record (per segment: ids, offsets, lengths, samples, liveness) and the
counters of :class:`SpoolStats`; its warnings are queued (:meth:`SpoolFiles.note`) and written by
the spool once the lock is released.

Layout of a spool directory: ``lock`` (the ``flock`` lock file, holding the owner's pid),
``<first record id, 20 digits>.seg`` segment files, and ``acks``, the ack log.  Record ids grow
by one per append for the life of the directory, so file order, id order and append order are
one order.

Acks may come in any order.  Each is a 12-byte entry appended to ``acks``; a segment file is
deleted as soon as every record in it is acked (acking the last one writes no entry at all), so
the entries of deleted segments are obsolete.  The log is rewritten with only the live entries,
through a temporary file, fsync and ``rename``, on open and whenever obsolete entries outnumber
live ones (and at least 4096).  Its first entry, and one written whenever the last segment goes,
is a watermark (the newest id used) that keeps ids growing with no segment left.

Bound: segment files together stay within ``max_bytes``.  When an append would exceed it the
oldest segment goes, whole: its unacked records are dropped, returned to the caller and counted.
Segments rotate at ``segment_bytes``, so a drop frees at most about a sixteenth of the spool.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from .spool_format import ACK_BYTES, WATERMARK, ack_entry, encode_header, write_all
from .spool_index import Appended, DroppedRecord, Index, Segment, SpoolStats

__all__ = ["ACK_FILE", "O_CLOEXEC", "Log", "SpoolFiles"]

ACK_FILE = "acks"
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_LOG_INTERVAL = 60.0  # seconds between two log lines of one kind
_MIN_SEGMENT, _MAX_SEGMENT = 64 * 1024, 16 * 1024 * 1024

Log = tuple[int, str, tuple[Any, ...]]


class SpoolFiles:
    """The open files and the index of one spool directory, and its counters.

    Args:
        directory: the spool directory (it exists).
        max_bytes: bound of the segment files together.
        segment_bytes: size at which the active segment is rotated; default ``max_bytes / 16``
            within 64 KiB and 16 MiB.
        fsync_interval: ``None`` never fsyncs; otherwise rotation and ack-log rewrites do.
        clock: monotonic clock for the log rate limits.
    """

    def __init__(
        self,
        directory: str,
        max_bytes: int,
        segment_bytes: int | None,
        fsync_interval: float | None,
        clock: Callable[[], float],
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or min(_MAX_SEGMENT, max(_MIN_SEGMENT, max_bytes // 16))
        self.fsync_interval = fsync_interval
        self.clock = clock
        self.closed = False
        self.index = Index()
        self.active: Segment | None = None
        self.next_id = 1
        self.lock_fd = -1
        self.ack_fd = -1
        self.ack_entries = 0  # entries in the ack log file
        self.ack_live = 0  # of them, entries for records of live segments
        self.dirty: set[int] = set()  # fds written since the last fsync
        self.dir_dirty = False
        self.last_fsync = float("-inf")
        self.counts = {f.name: 0 for f in fields(SpoolStats) if f.default == 0}
        self.last_log: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}
        self.logs: list[Log] = []

    def stats(self) -> SpoolStats:
        index = self.index
        return SpoolStats(
            index.live_records, index.live_samples, index.disk_bytes, len(index.segments), **self.counts
        )

    # -- appends and acks -------------------------------------------------------------------

    def append(
        self, body: bytes, body_crc: int, need: int, protocol: int, samples: int, seq: int, timestamp_ms: int
    ) -> Appended:
        """Write one record (``need`` bytes with its header), making room first; see ``Appended``."""
        if self.closed:
            return Appended(None, reason="closed")
        if need > self.max_bytes or len(body) >= 1 << 32:
            self.counts["rejected_too_large"] += 1
            self.note(
                "too_large",
                "Spool %s: a %d-byte request is larger than spool_max_bytes=%d; sent without spooling",
                self.directory,
                len(body),
                self.max_bytes,
            )
            return Appended(None, reason="too_large")
        dropped = self._make_room(need)
        record_id = self.next_id
        try:
            if self.active is None:
                self.open_segment(record_id)
            segment = self.active
            assert segment is not None
            header = encode_header(body_crc, len(body), samples, record_id, seq, timestamp_ms, protocol)
            offset = segment.size
            try:
                write_all(segment.fd, [header, body])
            except OSError:
                try:
                    os.ftruncate(segment.fd, offset)
                except OSError:
                    self.retire_active()  # its torn tail is cut at the next open
                raise
        except OSError as exc:
            self.io_error("write", exc)
            return Appended(None, dropped, "write_error")
        self.next_id += 1
        self.index.add_record(segment, record_id, offset, len(body), samples)
        self.counts["appended"] += 1
        self.dirty.add(segment.fd)
        return Appended(record_id, dropped)

    def _make_room(self, need: int) -> tuple[DroppedRecord, ...]:
        """Rotate the active segment if ``need`` more bytes overflow it; drop the oldest beyond the bound."""
        active = self.active
        if active is not None and active.size and active.size + need > self.segment_bytes:
            self.retire_active()
        dropped: list[DroppedRecord] = []
        segments = self.index.segments
        while self.index.disk_bytes + need > self.max_bytes:
            oldest = segments[0]
            if oldest is self.active:
                self.retire_active()  # deletes it if every record in it is acked
                if not segments or segments[0] is not oldest:
                    continue
            dropped += oldest.live_records()
            self.delete_segment(oldest)
        if dropped:
            self.counts["dropped_records"] += len(dropped)
            self.counts["dropped_samples"] += sum(d.samples for d in dropped)
            self.note(
                "full",
                "Spool %s is full (spool_max_bytes=%d); dropped the oldest %d requests",
                self.directory,
                self.max_bytes,
                len(dropped),
            )
        return tuple(dropped)

    def ack(self, record_id: int) -> bool:
        """Forget an answered record; False if it was not spooled (any more)."""
        if self.closed:
            return False
        located = self.index.locate(record_id)
        if located is None or not located[0].live[located[1]]:
            return False
        segment, index = located
        self.index.mark_dead(segment, index)
        self.counts["acked"] += 1
        if segment.live_count == 0 and segment is not self.active:
            self.delete_segment(segment)  # no ack entry needed: the file is gone
            return True
        try:
            write_all(self.ack_fd, [ack_entry(record_id)])
        except OSError as exc:
            self.io_error("write", exc)  # replayed once more after a restart
            return True
        segment.acked += 1
        self.ack_entries += 1
        self.ack_live += 1
        self.dirty.add(self.ack_fd)
        if self.ack_entries - self.ack_live > max(4096, self.ack_live):
            try:
                self.rewrite_acks()
            except OSError as exc:
                self.io_error("write", exc)
        return True

    def rewrite_acks(self) -> None:
        """Replace the ack log by the entries of live segments: write, fsync, rename."""
        path = os.path.join(self.directory, ACK_FILE)
        entries = bytearray(ack_entry(WATERMARK | (self.next_id - 1)))
        for segment in self.index.segments:
            for index, record_id in enumerate(segment.ids):
                if not segment.live[index]:
                    entries += ack_entry(record_id)
            segment.acked = segment.live.count(0)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | O_CLOEXEC, 0o600)
        try:
            write_all(fd, [bytes(entries)])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self.fsync_directory()
        if self.ack_fd >= 0:
            os.close(self.ack_fd)
            self.dirty.discard(self.ack_fd)
        self.ack_fd = os.open(path, os.O_WRONLY | os.O_APPEND | O_CLOEXEC)
        self.ack_entries = len(entries) // ACK_BYTES
        self.ack_live = self.ack_entries - 1

    # -- segment files ----------------------------------------------------------------------

    def open_segment(self, first_id: int) -> None:
        path = os.path.join(self.directory, f"{first_id:020d}.seg")
        segment = Segment(first_id, path)
        segment.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | O_CLOEXEC, 0o600)
        self.index.add(segment)
        self.active = segment
        self.dir_dirty = True

    def retire_active(self) -> None:
        """Stop appending to the active segment: fsync it (rotation is rare) and close it."""
        segment, self.active = self.active, None
        if segment is None:
            return
        if segment.fd in self.dirty and self.fsync_interval is not None:
            try:
                os.fsync(segment.fd)
                self.counts["fsyncs"] += 1
            except OSError as exc:
                self.io_error("fsync", exc)
        self.close_segment_fd(segment)
        if segment.live_count == 0:
            self.delete_segment(segment)

    def close_segment_fd(self, segment: Segment) -> None:
        if segment.fd >= 0:
            self.dirty.discard(segment.fd)
            os.close(segment.fd)
            segment.fd = -1

    def delete_segment(self, segment: Segment) -> None:
        if segment is self.active:
            self.active = None
        self.close_segment_fd(segment)
        try:
            os.unlink(segment.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.io_error("unlink", exc)
        self.index.remove(segment)
        self.ack_live -= segment.acked
        if not self.index.segments and self.ack_fd >= 0:
            self.write_watermark()

    def write_watermark(self) -> None:
        """Record the newest id ever used, so that ids keep growing when no segment is left."""
        try:
            write_all(self.ack_fd, [ack_entry(WATERMARK | (self.next_id - 1))])
        except OSError as exc:
            self.io_error("write", exc)
            return
        self.ack_entries += 1
        self.dirty.add(self.ack_fd)

    # -- fsync and close --------------------------------------------------------------------

    def take_dirty(self, now: float) -> tuple[list[int], bool, list[OSError]] | None:
        """What to fsync now: duplicated descriptors, whether the directory, failures; None: not now."""
        if self.closed or self.fsync_interval is None or not (self.dirty or self.dir_dirty):
            return None
        if now - self.last_fsync < self.fsync_interval:
            return None  # deferred to the next sync() or close()
        self.last_fsync = now
        failures: list[OSError] = []
        fds = []
        for fd in self.dirty:  # dup: the segment may be retired and its fd closed meanwhile
            try:
                fds.append(os.dup(fd))
            except OSError as exc:
                failures.append(exc)
        sync_dir, self.dirty, self.dir_dirty = self.dir_dirty, set(), False
        return fds, sync_dir, failures

    def fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Fsync what is dirty (unless fsync_interval is None) and close every descriptor."""
        self.closed = True
        if self.fsync_interval is not None:
            for fd in self.dirty:
                try:
                    os.fsync(fd)
                except OSError as exc:
                    self.io_error("fsync", exc)
            if self.dir_dirty:
                try:
                    self.fsync_directory()
                except OSError as exc:
                    self.io_error("fsync", exc)
        self.close_fds()

    def close_fds(self) -> None:
        """Close every descriptor; closing the lock file's releases the flock (never LOCK_UN)."""
        for segment in self.index.segments:
            if segment.fd >= 0:
                os.close(segment.fd)
                segment.fd = -1
        self.active = None
        self.dirty = set()
        for fd in (self.ack_fd, self.lock_fd):
            if fd >= 0:
                os.close(fd)
        self.ack_fd = self.lock_fd = -1

    # -- counting and logging ---------------------------------------------------------------

    def io_error(self, what: str, exc: OSError) -> None:
        self.counts["io_errors"] += 1
        self.note("io", "Spool %s: %s failed: %s", self.directory, what, exc)

    def note(self, kind: str, message: str, *args: Any) -> None:
        """Queue a warning, at most one per ``kind`` a minute; emitted once the lock is released."""
        now = self.clock()
        if now - self.last_log.get(kind, float("-inf")) < _LOG_INTERVAL:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return
        self.last_log[kind] = now
        suppressed = self.suppressed.pop(kind, 0)
        if suppressed:
            message += " (%d similar messages not logged)"
            args = (*args, suppressed)
        self.logs.append((logging.WARNING, message, args))

    def take_logs(self) -> list[Log]:
        logs, self.logs = self.logs, []
        return logs
