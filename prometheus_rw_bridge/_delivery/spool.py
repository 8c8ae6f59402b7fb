"""A bounded, checksummed on-disk spool of compressed requests, so a restart loses nothing.

One :class:`Spool` per endpoint directory (:func:`endpoint_directory` names it under
``spool_dir``).  The sender appends every compressed request before it sends it, acks it once
it is answered (2xx, or a 4xx that will never succeed), and on start replays what is still
unacked, in order, before any new data.

The interface the sender calls (through ``spooled``)::

    spool = Spool(endpoint_directory(spool_dir, url, tenant), max_bytes=spool_max_bytes)
    for record in spool.records(through=spool.recovered_through):   # replay, oldest first
        send(record.body, record.protocol, record.samples, record.timestamp_ms)
        spool.ack(record.record_id)
    # each collection, on the collector thread:
    appended = spool.append(body, protocol="2.0", samples=n, seq=seq, timestamp_ms=ts)
    for dropped in appended.dropped:        # the spool was full: the oldest went
        ...                                 # forget it unless in flight; count dropped.samples
    spool.sync()                            # once per collection: fsync (see below)
    # when the request's turn comes, on a sender thread (its body waited only on disk):
    body = spool.read(appended.record_id).body     # None once acked or dropped
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

Where things are: ``spool_format`` lays out the bytes (records of 44 bytes of header and a
crc32, ack-log entries); ``spool_index`` holds what is known of every record without reading it;
``spool_files`` the directory's files (segments, the ack log, the bound: when an append would
exceed ``max_bytes`` the oldest segment goes, whole, and its unacked records are dropped,
returned to the caller and counted); ``spool_recovery`` the opening (the lock, the scan that
truncates a torn tail or skips a corrupt stretch, counted and logged, never raised).

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
from collections.abc import Callable, Generator
from pathlib import Path

from .._config.settings import DEFAULT_SPOOL_MAX_BYTES
from .._exceptions import ConfigurationError
from .._redact import safe_url
from .spool_files import O_CLOEXEC, Log, SpoolFiles
from .spool_format import ACK_BYTES, HEADER_BYTES, PROTOCOL_CODES, parse
from .spool_index import Appended, DroppedRecord, SpoolRecord, SpoolStats
from .spool_recovery import SUPPORTED, recover, take_lock

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

DEFAULT_MAX_BYTES = DEFAULT_SPOOL_MAX_BYTES
"""Default bound of one endpoint's spool (``spool_max_bytes``): a day and more of a 10 k-sample
app every 15 s."""

DEFAULT_FSYNC_INTERVAL = 1.0
"""Default least number of seconds between two fsyncs of :meth:`Spool.sync`."""


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


class Spool:
    """The spool of one endpoint; see the module docstring for the guarantees.

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
        _check_platform_and_bounds(max_bytes, segment_bytes, fsync_interval)
        self.directory = os.fspath(directory)
        self._lock = threading.Lock()
        self._files = SpoolFiles(self.directory, max_bytes, segment_bytes, fsync_interval, clock)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._files.lock_fd = take_lock(self.directory)
        try:
            recover(self._files)
        except BaseException:
            self._files.close_fds()
            raise
        self.recovered_through = self._files.next_id - 1
        """The newest record id found at open: replay ``records(through=recovered_through)``."""
        _live_spools.add(self)
        self._emit(self._files.take_logs())

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
            result = self._files.append(body, body_crc, need, code, samples, seq, timestamp_ms)
            logs = self._files.take_logs()
        self._emit(logs)
        return result

    def ack(self, record_id: int) -> bool:
        """Forget a record that was answered; return whether it was still spooled."""
        with self._lock:
            found = self._files.ack(record_id)
            logs = self._files.take_logs()
        self._emit(logs)
        return found

    def sync(self) -> None:
        """Fsync what was written, unless the previous fsync is less than ``fsync_interval`` old."""
        with self._lock:
            taken = self._files.take_dirty(self._files.clock())
        if taken is None:
            return
        fds, sync_dir, failures = taken
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError as exc:
                failures.append(exc)
            finally:
                os.close(fd)
        if sync_dir:
            try:
                self._files.fsync_directory()
            except OSError as exc:
                failures.append(exc)
        with self._lock:
            self._files.counts["fsyncs"] += len(fds) + sync_dir - len(failures)
            for failure in failures:
                self._files.io_error("fsync", failure)
            logs = self._files.take_logs()
        self._emit(logs)

    def records(self, *, after: int = 0, through: int | None = None) -> Generator[SpoolRecord, None, None]:
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
                    if self._files.closed:
                        return
                    found = self._files.index.next_live(cursor, through)
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
                        fd = os.open(path, os.O_RDONLY | O_CLOEXEC)
                        fd_path = path
                    data = os.pread(fd, HEADER_BYTES + length, offset)
                    header = parse(data, 0)
                except FileNotFoundError:
                    continue  # the segment went (bound or acks) since the lock was released
                except OSError as exc:
                    data = b""
                    with self._lock:
                        self._files.io_error("read", exc)
                with self._lock:
                    located = self._files.index.locate(record_id)
                    live = located is not None and located[0].live[located[1]]
                    if live and (header is None or header.record_id != record_id):
                        self._files.counts["corrupt_records"] += 1
                        self._files.note(
                            "corrupt",
                            "Spool %s: record %d in %s fails its checksum; skipped",
                            self.directory,
                            record_id,
                            path,
                        )
                        self._files.ack(record_id)
                        live = False
                    logs = self._files.take_logs()
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

    def read(self, record_id: int) -> SpoolRecord | None:
        """The record ``record_id`` read back (its checksum checked), or None once acked or dropped."""
        records = self.records(after=record_id - 1, through=record_id)
        try:
            return next(records, None)
        finally:
            records.close()

    def stats(self) -> SpoolStats:
        """A consistent copy of the spool's state and counters."""
        with self._lock:
            return self._files.stats()

    def close(self) -> None:
        """Fsync (unless ``fsync_interval`` is None) and release the directory.  Idempotent."""
        with self._lock:
            if self._files.closed:
                return
            self._files.close()
            logs = self._files.take_logs()
        _live_spools.discard(self)
        self._emit(logs)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        index = self._files.index
        state = "closed" if self._files.closed else f"{index.live_records} records, {index.disk_bytes} bytes"
        return f"<Spool {self.directory!r} {state}>"

    def _after_fork_in_child(self) -> None:
        """Turn this spool off in a forked child: close the inherited descriptors, keep the files."""
        self._lock = threading.Lock()  # may have been held by a parent thread at the fork
        self._files.closed = True
        self._files.logs = []
        try:
            self._files.close_fds()
        except OSError:
            pass

    @staticmethod
    def _emit(logs: list[Log]) -> None:
        for level, message, args in logs:
            logger.log(level, message, *args)


def _check_platform_and_bounds(
    max_bytes: int, segment_bytes: int | None, fsync_interval: float | None
) -> None:
    """Refuse a platform without flock and writev, and bounds that make no sense."""
    if not SUPPORTED:
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


# Spools open in this process, closed in a forked child (see the module docstring).
_live_spools: weakref.WeakSet[Spool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for spool in list(_live_spools):
        spool._after_fork_in_child()
    _live_spools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
