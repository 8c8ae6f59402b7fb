"""A bounded, checksummed on-disk spool of compressed requests, so a restart loses nothing.

One :class:`Spool` per endpoint directory (:func:`endpoint_directory` names it under
``spool_dir``).  The sender appends every compressed request before it sends it, acks it once
it is answered (2xx, or a 4xx that will never succeed), and on start replays what is still
unacked, in order, before any new data.

The interface the sender calls::

    spool = Spool(endpoint_directory(spool_dir, url, tenant), max_bytes=spool_max_bytes)
    for record in spool.records(through=spool.recovered_through):   # replay, oldest first
        send(record.body, record.protocol, record.samples, record.timestamp_ms)
        spool.ack(record.record_id)
    # each collection, on the collector thread:
    appended = spool.append(body, protocol="2.0", samples=n, seq=seq, timestamp_ms=ts)
    for dropped in appended.dropped:        # the spool was full: the oldest went
        ...                                 # forget it unless in flight; count dropped.samples
    spool.sync()                            # once per collection: fsync (see below)
    # each answered request, on a sender thread, in any order:
    spool.ack(appended.record_id)
    spool.close()                           # at shutdown; also fsyncs

``push_to_remote_write(..., spool_dir=...)`` is the same in one call: open, send and ack what
``records()`` yields, append the new requests and ``sync()``, send and ack them, close; what
failed stays for the next call (which raises ``SpoolLockedError`` while another still runs).

``append()`` never raises for I/O trouble: when a record cannot be written (disk full, too
large for ``max_bytes``, spool closed) ``record_id`` is ``None``, ``reason`` says why, and the
caller still sends the request from memory, it is just not crash-safe.  ``ack()`` of an id
that is unknown, already acked or dropped is a harmless ``False``.  Only opening can fail:
:class:`~prometheus_rw_bridge.SpoolLockedError` when another process owns the directory,
``ConfigurationError`` on Windows or for bad bounds, ``OSError`` when the directory cannot
be created or read.

Layout of a spool directory: ``lock`` (the ``flock`` lock file, holding the owner's pid),
``<first record id, 20 digits>.seg`` segment files, and ``acks``, the ack log.  Record ids grow
by one per append for the life of the directory, so file order, id order and append order are
one order.

Records (44 bytes of header, a crc32 over all of it) and ack-log entries are laid out in
``spool_format``.  On open every segment is read and checked: an invalid tail (a torn write)
is truncated, invalid bytes between valid records are skipped; both are counted in
:class:`SpoolStats` and logged at most once a minute per kind, never raised.  The samples of a
damaged record cannot be known, so those counts are in records and bytes.

Acks may come in any order (several requests in flight per endpoint).  Each is a 12-byte entry
(record id u64, crc32 of those 8 bytes) appended to ``acks``; a segment file is deleted as soon
as every record in it is acked (acking the last one writes no entry at all), so the entries of
deleted segments are obsolete.  The log is rewritten with only the live entries, through a
temporary file, fsync and ``rename``, on open and whenever obsolete entries outnumber live ones
(and at least 4096).  Its first entry, and one written whenever the last segment goes, is a
watermark (the newest id used, with the top bit set) that keeps ids growing with no segment left.

Bound: segment files together stay within ``max_bytes``.  When an append would exceed it the
oldest segment goes, whole: its unacked records are dropped, returned to the caller and
counted.  Segments rotate at ``segment_bytes`` (default ``max_bytes / 16``, 64 KiB to 16 MiB),
so a drop frees at most about a sixteenth of the spool.  The ack log (12 bytes per acked
record in a live segment) and the lock file are not counted.

Durability (``fsync_interval``): every record is written with one ``writev`` before
``append()`` returns, so a SIGKILL loses at most the record being written (its torn tail is
truncated on the next open).  Power loss also needs ``fsync``: :meth:`Spool.sync`, which the
sender calls once per collection, fsyncs the written segments, the ack log and, after a new
file, the directory, unless the previous fsync was less than ``fsync_interval`` seconds ago
(default 1 s; ``0`` fsyncs at every ``sync()``, ``None`` never fsyncs, not even on close).
A deferred fsync happens at the next ``sync()`` or at ``close()``, so with the default 15 s
interval every collection is fsynced.  Acks are fsynced the same way; an ack lost to power loss
replays its request once more (delivery is at least once).  Measured here (ext4 on a virtual
disk): an fsync after a 1 KiB write costs about 0.13 ms, after 1 MiB about 0.6 ms; see
``benchmarks/bench_spool.py``.

Threads: one ``threading.Lock`` guards the index and every file descriptor.  Under it run only
the index updates and local file calls that touch the page cache (``writev``, ``ftruncate``,
``unlink``, the rare ack-log rewrite and an fsync at segment rotation).  The body's crc, the
``fsync`` of :meth:`~Spool.sync` (on ``dup``-ed descriptors) and the reads of
:meth:`~Spool.records` run outside it; so does logging (a handler is user code).  The collector
thread appends while sender threads ack and a replay reads.

Processes: one process owns a spool at a time, by an exclusive ``flock`` on ``lock`` taken
without waiting; a second process (or a second ``Spool`` on the directory in this process) gets
``SpoolLockedError`` naming the directory and the owner's pid.  A ``flock`` belongs to the open
file description, which a forked child shares through the inherited descriptor: the child would
keep the lock after the parent exits.  So an ``os.register_at_fork`` hook closes, in the child,
every descriptor of every spool (``close`` without ``LOCK_UN``, which would release the
parent's lock too) and turns those spools off, as the bridge turns itself off in a child.
Descriptors are opened ``O_CLOEXEC``, so an ``exec``-ed program never holds one.  ``flock`` on
NFS is emulated with byte-range locks by Linux; a spool on a network filesystem is not
recommended.

Windows has no ``flock``/``writev`` and different rename semantics: ``Spool`` refuses to open
there with a ``ConfigurationError`` naming ``spool_dir``.

Costs: 44 bytes per record on disk (0.14 % of a 2,000-sample request), 12 more per acked
record while its segment lives, about 25 bytes of memory per record of the index.  The CPU of
an append is the crc32 of the body plus one ``writev``: measured here, spooling a collection
costs about 0.3 times the snappy compression the sender does anyway (0.4 with its fsync), and
an append plus its ack of a tiny request about 6 us (``benchmarks/bench_spool.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import urllib.parse
import weakref
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from .._exceptions import ConfigurationError, SpoolLockedError
from .._redact import safe_url
from .spool_format import (
    ACK_BYTES,
    HEADER_BYTES,
    PROTOCOL_CODES,
    WATERMARK,
    ack_entry,
    encode_header,
    parse,
    parse_acks,
    read_file,
    scan,
    write_all,
)

try:
    import fcntl
except ImportError:  # Windows: refused in Spool.__init__
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = [
    "ACK_BYTES",
    "DEFAULT_FSYNC_INTERVAL",
    "DEFAULT_MAX_BYTES",
    "HEADER_BYTES",
    "Appended",
    "DroppedRecord",
    "Spool",
    "SpoolRecord",
    "SpoolStats",
    "endpoint_directory",
]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Default bound of one endpoint's spool: a day and more of a 10 k-sample app every 15 s."""

DEFAULT_FSYNC_INTERVAL = 1.0
"""Default least number of seconds between two fsyncs of :meth:`Spool.sync`."""

_SEGMENT_RE = re.compile(r"^(\d{20})\.seg$")
_LOCK_FILE = "lock"
_ACK_FILE = "acks"
_LOG_INTERVAL = 60.0  # seconds between two log lines of one kind
_MIN_SEGMENT, _MAX_SEGMENT = 64 * 1024, 16 * 1024 * 1024
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


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


def endpoint_directory(root: str | os.PathLike[str], url: str, tenant: str | None = None) -> Path:
    """The spool directory of one endpoint under ``spool_dir``.

    Readable host and port, then a hash of the URL with credentials masked (so rotating a
    password or token keeps the spool) and of the tenant: ``<root>/<host>_<port>-<16 hex>``.
    """
    masked = safe_url(url)
    parts = urllib.parse.urlsplit(masked)
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parts.hostname or 'endpoint'}_{parts.port or ''}")
    digest = hashlib.sha256(f"{masked}\n{tenant or ''}".encode()).hexdigest()[:16]
    return Path(root) / f"{readable.strip('_')[:64]}-{digest}"


class _Segment:
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


class Spool:
    """The spool of one endpoint; see the module docstring for the format and the guarantees.

    Args:
        directory: this endpoint's spool directory; created (mode 0700) if missing.
        max_bytes: bound of the segment files together.
        segment_bytes: size at which a segment file is rotated; default ``max_bytes / 16``
            within 64 KiB and 16 MiB.
        fsync_interval: least seconds between two fsyncs of :meth:`sync`; ``0`` fsyncs at
            every call, ``None`` never.
        clock: monotonic clock for the fsync interval and log rate limits, injectable.

    Raises:
        SpoolLockedError: another process (or spool) owns ``directory``.
        ConfigurationError: a bound is not positive, or the platform has no ``flock``.
        OSError: the directory cannot be created or its files read.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int | None = None,
        fsync_interval: float | None = DEFAULT_FSYNC_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fcntl is None or not hasattr(os, "writev"):
            raise ConfigurationError(
                "spool_dir is not supported on this platform (it needs POSIX flock and writev; "
                "Windows has neither): leave spool_dir unset"
            )
        if max_bytes < 1024:
            raise ConfigurationError(f"spool_max_bytes={max_bytes!r} is too small: allowed is at least 1 KiB")
        if segment_bytes is not None and segment_bytes <= 0:
            raise ConfigurationError(f"segment_bytes={segment_bytes!r} must be positive")
        if fsync_interval is not None and fsync_interval < 0:
            raise ConfigurationError(f"fsync_interval={fsync_interval!r} must be >= 0 or None")
        self.directory = os.fspath(directory)
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes or min(_MAX_SEGMENT, max(_MIN_SEGMENT, max_bytes // 16))
        self._fsync_interval = fsync_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._segments: list[_Segment] = []
        self._firsts: list[int] = []  # first_id of each segment, for bisect
        self._active: _Segment | None = None
        self._next_id = 1
        self._disk_bytes = 0
        self._live_records = 0
        self._live_samples = 0
        self._ack_fd = -1
        self._ack_entries = 0  # entries in the ack log file
        self._ack_live = 0  # of them, entries for records of live segments
        self._dirty: set[int] = set()  # fds written since the last fsync
        self._dir_dirty = False
        self._last_fsync = float("-inf")
        self._counts = {f.name: 0 for f in fields(SpoolStats) if f.default == 0}
        self._last_log: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._logs: list[tuple[int, str, tuple[Any, ...]]] = []
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._lock_fd = self._take_lock()
        try:
            self._recover()
        except BaseException:
            self._close_fds()
            raise
        self.recovered_through = self._next_id - 1
        """The newest record id found at open: replay ``records(through=recovered_through)``."""
        _live_spools.add(self)
        self._emit(self._take_logs())

    # -- public API ------------------------------------------------------------------------

    def append(self, body: bytes, *, protocol: str, samples: int, seq: int, timestamp_ms: int) -> Appended:
        """Write one compressed request and its metadata; see :class:`Appended` for the outcome."""
        code = PROTOCOL_CODES.get(protocol)
        if code is None:
            raise ValueError(f"protocol must be '1.0' or '2.0', not {protocol!r}")
        if not (0 <= samples < 1 << 32 and 0 <= seq < 1 << 64 and -(1 << 63) <= timestamp_ms < 1 << 63):
            raise ValueError(f"samples={samples}, seq={seq} or timestamp_ms={timestamp_ms} is out of range")
        body_crc = zlib.crc32(body)  # outside the lock: the one cost that grows with the body
        need = HEADER_BYTES + len(body)
        with self._lock:
            result = self._append_locked(body, body_crc, need, code, samples, seq, timestamp_ms)
            logs = self._take_logs()
        self._emit(logs)
        return result

    def ack(self, record_id: int) -> bool:
        """Forget a record that was answered; return whether it was still spooled."""
        with self._lock:
            found = self._ack_locked(record_id)
            logs = self._take_logs()
        self._emit(logs)
        return found

    def sync(self) -> None:
        """Fsync what was written, unless the previous fsync is less than ``fsync_interval`` old."""
        with self._lock:
            if self._closed or self._fsync_interval is None or not (self._dirty or self._dir_dirty):
                return
            now = self._clock()
            if now - self._last_fsync < self._fsync_interval:
                return  # deferred to the next sync() or close()
            self._last_fsync = now
            failures: list[OSError] = []
            fds = []
            for fd in self._dirty:  # dup: the segment may be retired and its fd closed meanwhile
                try:
                    fds.append(os.dup(fd))
                except OSError as exc:
                    failures.append(exc)
            sync_dir, self._dirty, self._dir_dirty = self._dir_dirty, set(), False
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError as exc:
                failures.append(exc)
            finally:
                os.close(fd)
        if sync_dir:
            try:
                self._fsync_directory()
            except OSError as exc:
                failures.append(exc)
        with self._lock:
            self._counts["fsyncs"] += len(fds) + sync_dir - len(failures)
            for failure in failures:
                self._io_error("fsync", failure)
            logs = self._take_logs()
        self._emit(logs)

    def records(self, *, after: int = 0, through: int | None = None) -> Iterator[SpoolRecord]:
        """Yield the unacked records with ``after < record_id <= through``, oldest first.

        Records appended or acked while iterating are seen or skipped as they come.  The
        reads run outside the lock; a record that fails its checksum now (changed on disk
        since it was opened) is skipped, counted as ``corrupt_records`` and forgotten.
        """
        fd, fd_path = -1, ""
        cursor = after
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    found = self._next_live(cursor, through)
                    if found is None:
                        return
                    segment, index = found
                    record_id = segment.ids[index]
                    offset, length = segment.offsets[index], segment.lengths[index]
                    path = segment.path
                cursor = record_id
                header = None
                try:
                    if path != fd_path:
                        if fd >= 0:
                            os.close(fd)
                        fd, fd_path = -1, ""
                        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
                        fd_path = path
                    data = os.pread(fd, HEADER_BYTES + length, offset)
                    header = parse(data, 0)
                except FileNotFoundError:
                    continue  # the segment went (bound or acks) since the lock was released
                except OSError as exc:
                    data = b""
                    with self._lock:
                        self._io_error("read", exc)
                with self._lock:
                    located = self._locate(record_id)
                    live = located is not None and located[0].live[located[1]]
                    if live and (header is None or header.record_id != record_id):
                        self._counts["corrupt_records"] += 1
                        self._note(
                            "corrupt",
                            "Spool %s: record %d in %s fails its checksum; skipped",
                            self.directory,
                            record_id,
                            path,
                        )
                        self._ack_locked(record_id)
                        live = False
                    logs = self._take_logs()
                self._emit(logs)
                if live and header is not None:
                    yield SpoolRecord(
                        record_id,
                        bytes(data[HEADER_BYTES:]),
                        header.protocol,
                        header.samples,
                        header.seq,
                        header.timestamp_ms,
                    )
        finally:
            if fd >= 0:
                os.close(fd)

    def stats(self) -> SpoolStats:
        """A consistent copy of the spool's state and counters."""
        with self._lock:
            return SpoolStats(
                self._live_records, self._live_samples, self._disk_bytes, len(self._segments), **self._counts
            )

    def close(self) -> None:
        """Fsync (unless ``fsync_interval`` is None) and release the directory.  Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._fsync_interval is not None:
                for fd in self._dirty:
                    try:
                        os.fsync(fd)
                    except OSError as exc:
                        self._io_error("fsync", exc)
                if self._dir_dirty:
                    try:
                        self._fsync_directory()
                    except OSError as exc:
                        self._io_error("fsync", exc)
            self._close_fds()
            logs = self._take_logs()
        _live_spools.discard(self)
        self._emit(logs)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._live_records} records, {self._disk_bytes} bytes"
        return f"<Spool {self.directory!r} {state}>"

    # -- opening ---------------------------------------------------------------------------

    def _take_lock(self) -> int:
        assert fcntl is not None
        fd = os.open(os.path.join(self.directory, _LOCK_FILE), os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).split(b"\n")[0]
            os.close(fd)
            raise SpoolLockedError(self.directory, int(holder) if holder.isdigit() else None) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _recover(self) -> None:
        """Index every valid record, cut invalid tails, apply the ack log, rewrite it."""
        names = sorted(os.listdir(self.directory))
        for name in names:
            match = _SEGMENT_RE.match(name)
            if match is None:
                if name.endswith(".tmp"):  # an ack-log rewrite that did not finish
                    os.unlink(os.path.join(self.directory, name))
                continue
            first_id = int(match.group(1))
            self._next_id = max(self._next_id, first_id)
            segment = self._scan(first_id, os.path.join(self.directory, name))
            if segment.ids:
                self._next_id = max(self._next_id, segment.ids[-1] + 1)
            self._segments.append(segment)
            self._firsts.append(first_id)
            self._disk_bytes += segment.size
            self._live_records += segment.live_count
            self._live_samples += segment.live_samples
        for record_id in self._read_acks():
            self._next_id = max(self._next_id, (record_id & ~WATERMARK) + 1)
            if record_id & WATERMARK:
                continue
            located = self._locate(record_id)
            if located is not None and located[0].live[located[1]]:
                self._mark_dead(*located)
        for segment in list(self._segments):
            if segment.live_count == 0:
                self._delete_segment(segment)
        self._rewrite_acks()

    def _scan(self, first_id: int, path: str) -> _Segment:
        """Read one segment file into an index, skipping invalid stretches and truncating its tail."""
        segment = _Segment(first_id, path)
        fd = os.open(path, os.O_RDWR | _O_CLOEXEC)
        try:
            data = read_file(fd)
            found = scan(data, first_id)
            for offset, header in found.records:
                segment.add(header.record_id, offset, header.length, header.samples)
            for start, end in found.skipped:
                self._counts["corrupt_regions"] += 1
                self._counts["corrupt_bytes"] += end - start
                self._note(
                    "corrupt",
                    "Spool %s: skipped %d corrupt bytes at offset %d of %s",
                    self.directory,
                    end - start,
                    start,
                    path,
                )
            if found.end < len(data):
                self._counts["truncated_tails"] += 1
                self._counts["truncated_bytes"] += len(data) - found.end
                self._note(
                    "truncated",
                    "Spool %s: truncated %d invalid bytes at the end of %s (a write torn by a crash)",
                    self.directory,
                    len(data) - found.end,
                    path,
                )
                os.ftruncate(fd, found.end)
                if self._fsync_interval is not None:
                    os.fsync(fd)
            segment.size = found.end
        finally:
            os.close(fd)
        return segment

    def _read_acks(self) -> list[int]:
        path = os.path.join(self.directory, _ACK_FILE)
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            return []
        try:
            data = read_file(fd)
        finally:
            os.close(fd)
        ids, invalid = parse_acks(data)
        if invalid:
            self._note(
                "corrupt",
                "Spool %s: ignored %d invalid bytes of the ack log (those requests may be sent again)",
                self.directory,
                invalid,
            )
        return ids

    def _rewrite_acks(self) -> None:
        """Replace the ack log by the entries of live segments: write, fsync, rename."""
        path = os.path.join(self.directory, _ACK_FILE)
        entries = bytearray(ack_entry(WATERMARK | (self._next_id - 1)))
        for segment in self._segments:
            for index, record_id in enumerate(segment.ids):
                if not segment.live[index]:
                    entries += ack_entry(record_id)
            segment.acked = segment.live.count(0)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC, 0o600)
        try:
            write_all(fd, [bytes(entries)])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._fsync_directory()
        if self._ack_fd >= 0:
            os.close(self._ack_fd)
            self._dirty.discard(self._ack_fd)
        self._ack_fd = os.open(path, os.O_WRONLY | os.O_APPEND | _O_CLOEXEC)
        self._ack_entries = len(entries) // ACK_BYTES
        self._ack_live = self._ack_entries - 1

    # -- under the lock ----------------------------------------------------------------------

    def _append_locked(
        self, body: bytes, body_crc: int, need: int, protocol: int, samples: int, seq: int, timestamp_ms: int
    ) -> Appended:
        if self._closed:
            return Appended(None, reason="closed")
        if need > self._max_bytes or len(body) >= 1 << 32:
            self._counts["rejected_too_large"] += 1
            self._note(
                "too_large",
                "Spool %s: a %d-byte request is larger than spool_max_bytes=%d; sent without spooling",
                self.directory,
                len(body),
                self._max_bytes,
            )
            return Appended(None, reason="too_large")
        active = self._active
        if active is not None and active.size and active.size + need > self._segment_bytes:
            self._retire_active()
        dropped: list[DroppedRecord] = []
        while self._disk_bytes + need > self._max_bytes:
            oldest = self._segments[0]
            if oldest is self._active:
                self._retire_active()  # deletes it if every record in it is acked
                if not self._segments or self._segments[0] is not oldest:
                    continue
            dropped += [
                DroppedRecord(oldest.ids[i], oldest.samples[i])
                for i in range(len(oldest.ids))
                if oldest.live[i]
            ]
            self._delete_segment(oldest)
        if dropped:
            self._counts["dropped_records"] += len(dropped)
            self._counts["dropped_samples"] += sum(d.samples for d in dropped)
            self._note(
                "full",
                "Spool %s is full (spool_max_bytes=%d); dropped the oldest %d requests",
                self.directory,
                self._max_bytes,
                len(dropped),
            )
        record_id = self._next_id
        try:
            if self._active is None:
                self._open_segment(record_id)
            segment = self._active
            assert segment is not None
            header = encode_header(body_crc, len(body), samples, record_id, seq, timestamp_ms, protocol)
            offset = segment.size
            try:
                write_all(segment.fd, [header, body])
            except OSError:
                try:
                    os.ftruncate(segment.fd, offset)
                except OSError:
                    self._retire_active()  # its torn tail is cut at the next open
                raise
        except OSError as exc:
            self._io_error("write", exc)
            return Appended(None, tuple(dropped), "write_error")
        self._next_id += 1
        segment.add(record_id, offset, len(body), samples)
        segment.size += need
        self._disk_bytes += need
        self._live_records += 1
        self._live_samples += samples
        self._counts["appended"] += 1
        self._dirty.add(segment.fd)
        return Appended(record_id, tuple(dropped))

    def _ack_locked(self, record_id: int) -> bool:
        if self._closed:
            return False
        located = self._locate(record_id)
        if located is None or not located[0].live[located[1]]:
            return False
        segment, index = located
        self._mark_dead(segment, index)
        self._counts["acked"] += 1
        if segment.live_count == 0 and segment is not self._active:
            self._delete_segment(segment)  # no ack entry needed: the file is gone
            return True
        try:
            write_all(self._ack_fd, [ack_entry(record_id)])
        except OSError as exc:
            self._io_error("write", exc)  # replayed once more after a restart
            return True
        segment.acked += 1
        self._ack_entries += 1
        self._ack_live += 1
        self._dirty.add(self._ack_fd)
        if self._ack_entries - self._ack_live > max(4096, self._ack_live):
            try:
                self._rewrite_acks()
            except OSError as exc:
                self._io_error("write", exc)
        return True

    def _mark_dead(self, segment: _Segment, index: int) -> None:
        segment.live[index] = 0
        segment.live_count -= 1
        segment.live_samples -= segment.samples[index]
        self._live_records -= 1
        self._live_samples -= segment.samples[index]

    def _locate(self, record_id: int) -> tuple[_Segment, int] | None:
        at = bisect_right(self._firsts, record_id) - 1
        if at < 0:
            return None
        segment = self._segments[at]
        index = bisect_left(segment.ids, record_id)
        if index < len(segment.ids) and segment.ids[index] == record_id:
            return segment, index
        return None

    def _next_live(self, cursor: int, through: int | None) -> tuple[_Segment, int] | None:
        """The first live record after ``cursor`` and not after ``through``."""
        for segment in self._segments[max(0, bisect_right(self._firsts, cursor) - 1) :]:
            index = segment.live.find(1, bisect_right(segment.ids, cursor))
            if index >= 0:
                if through is not None and segment.ids[index] > through:
                    return None
                return segment, index
        return None

    def _open_segment(self, first_id: int) -> None:
        path = os.path.join(self.directory, f"{first_id:020d}.seg")
        segment = _Segment(first_id, path)
        segment.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _O_CLOEXEC, 0o600)
        self._segments.append(segment)
        self._firsts.append(first_id)
        self._active = segment
        self._dir_dirty = True

    def _retire_active(self) -> None:
        """Stop appending to the active segment: fsync it (rotation is rare) and close it."""
        segment, self._active = self._active, None
        if segment is None:
            return
        if segment.fd in self._dirty and self._fsync_interval is not None:
            try:
                os.fsync(segment.fd)
                self._counts["fsyncs"] += 1
            except OSError as exc:
                self._io_error("fsync", exc)
        self._close_segment_fd(segment)
        if segment.live_count == 0:
            self._delete_segment(segment)

    def _close_segment_fd(self, segment: _Segment) -> None:
        if segment.fd >= 0:
            self._dirty.discard(segment.fd)
            os.close(segment.fd)
            segment.fd = -1

    def _delete_segment(self, segment: _Segment) -> None:
        if segment is self._active:
            self._active = None
        self._close_segment_fd(segment)
        try:
            os.unlink(segment.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._io_error("unlink", exc)
        at = self._segments.index(segment)
        del self._segments[at]
        del self._firsts[at]
        self._disk_bytes -= segment.size
        self._live_records -= segment.live_count
        self._live_samples -= segment.live_samples
        self._ack_live -= segment.acked
        if not self._segments and self._ack_fd >= 0:
            self._write_watermark()

    def _write_watermark(self) -> None:
        """Record the newest id ever used, so that ids keep growing when no segment is left."""
        try:
            write_all(self._ack_fd, [ack_entry(WATERMARK | (self._next_id - 1))])
        except OSError as exc:
            self._io_error("write", exc)
            return
        self._ack_entries += 1
        self._dirty.add(self._ack_fd)

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _close_fds(self) -> None:
        """Close every descriptor; closing the lock file's releases the flock (never LOCK_UN)."""
        for segment in self._segments:
            if segment.fd >= 0:
                os.close(segment.fd)
                segment.fd = -1
        self._active = None
        self._dirty = set()
        for fd in (self._ack_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._ack_fd = self._lock_fd = -1

    def _after_fork_in_child(self) -> None:
        """Turn this spool off in a forked child: close the inherited descriptors, keep the files."""
        self._lock = threading.Lock()  # may have been held by a parent thread at the fork
        self._closed = True
        self._logs = []
        try:
            self._close_fds()
        except OSError:
            pass

    # -- counting and logging --------------------------------------------------------------

    def _io_error(self, what: str, exc: OSError) -> None:
        self._counts["io_errors"] += 1
        self._note("io", "Spool %s: %s failed: %s", self.directory, what, exc)

    def _note(self, kind: str, message: str, *args: Any) -> None:
        """Queue a warning, at most one per ``kind`` a minute; emitted once the lock is released."""
        now = self._clock()
        if now - self._last_log.get(kind, float("-inf")) < _LOG_INTERVAL:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last_log[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += " (%d similar messages not logged)"
            args = (*args, suppressed)
        self._logs.append((logging.WARNING, message, args))

    def _take_logs(self) -> list[tuple[int, str, tuple[Any, ...]]]:
        logs, self._logs = self._logs, []
        return logs

    @staticmethod
    def _emit(logs: list[tuple[int, str, tuple[Any, ...]]]) -> None:
        for level, message, args in logs:
            logger.log(level, message, *args)


# Spools open in this process, closed in a forked child (see the module docstring).
_live_spools: weakref.WeakSet[Spool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for spool in list(_live_spools):
        spool._after_fork_in_child()
    _live_spools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
