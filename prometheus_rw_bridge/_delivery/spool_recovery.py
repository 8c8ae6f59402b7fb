"""Opening a spool directory: take its lock, read every segment back, apply the ack log.

On open every segment is read and checked: an invalid tail (a torn write) is truncated, invalid
bytes between valid records are skipped; both are counted and logged (at most once a minute per
kind), never raised.  The samples of a damaged record cannot be known, so those counts are in
records and bytes.  Then the ack log is applied, fully acked segments are deleted and the log
is rewritten with the live entries only.
"""

from __future__ import annotations

import os
import re

from .._exceptions import SpoolLockedError
from .spool_files import ACK_FILE, O_CLOEXEC, SpoolFiles
from .spool_format import WATERMARK, parse_acks, read_file, scan
from .spool_index import Segment

try:
    import fcntl
except ImportError:  # Windows: Spool refuses to open there
    fcntl = None  # type: ignore[assignment]

__all__ = ["SUPPORTED", "recover", "take_lock"]

SUPPORTED = fcntl is not None and hasattr(os, "writev")
"""Whether this platform has what a spool needs: POSIX ``flock`` and ``writev`` (Windows has neither)."""

_SEGMENT_RE = re.compile(r"^(\d{20})\.seg$")
_LOCK_FILE = "lock"


def take_lock(directory: str) -> int:
    """Own ``directory``: an exclusive ``flock`` on its lock file, taken without waiting.

    Returns the lock file's descriptor (closing it releases the lock), with this pid written in.

    Raises:
        SpoolLockedError: another process (or another spool of this one) holds it.
    """
    assert fcntl is not None
    fd = os.open(os.path.join(directory, _LOCK_FILE), os.O_RDWR | os.O_CREAT | O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).split(b"\n")[0]
        os.close(fd)
        raise SpoolLockedError(directory, int(holder) if holder.isdigit() else None) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def recover(files: SpoolFiles) -> None:
    """Index every valid record, cut invalid tails, apply the ack log, rewrite it."""
    for name in sorted(os.listdir(files.directory)):
        match = _SEGMENT_RE.match(name)
        if match is None:
            if name.endswith(".tmp"):  # an ack-log rewrite that did not finish
                os.unlink(os.path.join(files.directory, name))
            continue
        first_id = int(match.group(1))
        files.next_id = max(files.next_id, first_id)
        segment = _scan(files, first_id, os.path.join(files.directory, name))
        if segment.ids:
            files.next_id = max(files.next_id, segment.ids[-1] + 1)
        files.index.add(segment)
    for record_id in _read_acks(files):
        files.next_id = max(files.next_id, (record_id & ~WATERMARK) + 1)
        if record_id & WATERMARK:
            continue
        located = files.index.locate(record_id)
        if located is not None and located[0].live[located[1]]:
            files.index.mark_dead(*located)
    for segment in list(files.index.segments):
        if segment.live_count == 0:
            files.delete_segment(segment)
    files.rewrite_acks()


def _scan(files: SpoolFiles, first_id: int, path: str) -> Segment:
    """Read one segment file into an index, skipping invalid stretches and truncating its tail."""
    segment = Segment(first_id, path)
    fd = os.open(path, os.O_RDWR | O_CLOEXEC)
    try:
        data = read_file(fd)
        found = scan(data, first_id)
        for offset, header in found.records:
            segment.add(header.record_id, offset, header.length, header.samples)
        for start, end in found.skipped:
            files.counts["corrupt_regions"] += 1
            files.counts["corrupt_bytes"] += end - start
            files.note(
                "corrupt",
                "Spool %s: skipped %d corrupt bytes at offset %d of %s",
                files.directory,
                end - start,
                start,
                path,
            )
        if found.end < len(data):
            files.counts["truncated_tails"] += 1
            files.counts["truncated_bytes"] += len(data) - found.end
            files.note(
                "truncated",
                "Spool %s: truncated %d invalid bytes at the end of %s (a write torn by a crash)",
                files.directory,
                len(data) - found.end,
                path,
            )
            os.ftruncate(fd, found.end)
            if files.fsync_interval is not None:
                os.fsync(fd)
        segment.size = found.end
    finally:
        os.close(fd)
    return segment


def _read_acks(files: SpoolFiles) -> list[int]:
    path = os.path.join(files.directory, ACK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        data = read_file(fd)
    finally:
        os.close(fd)
    ids, invalid = parse_acks(data)
    if invalid:
        files.note(
            "corrupt",
            "Spool %s: ignored %d invalid bytes of the ack log (those requests may be sent again)",
            files.directory,
            invalid,
        )
    return ids
