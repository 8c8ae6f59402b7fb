"""The spool's bytes on disk: records in segment files, entries of the ack log.  No state, no locks.

Record (little-endian; 44 bytes of header, then the body)::

    magic b"\\x93RWS" | crc32 u32 | body length u32 | samples u32 | record id u64
    | collection seq u64 | collection timestamp ms i64 | protocol u8 (1 = "1.0", 2 = "2.0")
    | format version u8 | reserved u16 | body

The crc32 (``zlib``: in the standard library, C speed, catches every burst of up to 32 bits and
all but 2**-32 of random damage; torn writes and bit rot are what it has to find, not an
adversary) covers the body and then the 36 header bytes after it, so the body's share can be
computed before the record id is known.  :func:`scan` finds the valid records of a segment file:
after an invalid stretch it resumes at the next magic that starts a record with a valid crc
and a newer id; an invalid stretch that no valid record follows is the file's invalid tail.

Ack-log entry (12 bytes): record id u64, crc32 of those 8 bytes.  An entry with the top bit of
the id set is a watermark, the newest id used, not an ack.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import NamedTuple

__all__ = [
    "ACK_BYTES",
    "HEADER_BYTES",
    "MAGIC",
    "PROTOCOL_CODES",
    "WATERMARK",
    "Header",
    "Scan",
    "ack_entry",
    "encode_header",
    "parse",
    "parse_acks",
    "read_file",
    "scan",
    "write_all",
]

MAGIC = b"\x93RWS"
_REST = struct.Struct("<IIQQqBBH")  # length, samples, id, seq, timestamp ms, protocol, version, reserved
_CRC = struct.Struct("<I")
HEADER_BYTES = len(MAGIC) + _CRC.size + _REST.size
"""Bytes of header before each record's body."""
_ACK = struct.Struct("<QI")
ACK_BYTES = _ACK.size
"""Bytes of one ack-log entry."""
WATERMARK = 1 << 63
"""Set in the id of an ack-log entry that records the newest id used rather than an ack."""
_VERSION = 1
PROTOCOL_CODES = {"1.0": 1, "2.0": 2}
_PROTOCOL_NAMES = {code: name for name, code in PROTOCOL_CODES.items()}


class Header(NamedTuple):
    """A valid record's header, decoded."""

    length: int
    samples: int
    record_id: int
    seq: int
    timestamp_ms: int
    protocol: str


class Scan(NamedTuple):
    """What :func:`scan` found in one segment file's bytes."""

    records: list[tuple[int, Header]]  # (offset, header), in file order
    skipped: list[tuple[int, int]]  # (start, end) of invalid stretches between valid records
    end: int  # where the valid data ends: less than the length when the tail is invalid


def encode_header(
    body_crc: int, length: int, samples: int, record_id: int, seq: int, timestamp_ms: int, protocol: int
) -> bytes:
    """The header of a record whose body has crc32 ``body_crc``."""
    rest = _REST.pack(length, samples, record_id, seq, timestamp_ms, protocol, _VERSION, 0)
    return MAGIC + _CRC.pack(zlib.crc32(rest, body_crc)) + rest


def parse(data: bytes | memoryview, pos: int) -> Header | None:
    """The header of the valid record at ``pos`` (whole, checksum right), or None."""
    end = pos + HEADER_BYTES
    if end > len(data) or data[pos : pos + 4] != MAGIC:
        return None
    length, samples, record_id, seq, ts, protocol, version, _ = _REST.unpack_from(data, pos + 8)
    if version != _VERSION or protocol not in _PROTOCOL_NAMES or end + length > len(data):
        return None
    view = memoryview(data)
    if (
        zlib.crc32(view[pos + 8 : end], zlib.crc32(view[end : end + length]))
        != _CRC.unpack_from(data, pos + 4)[0]
    ):
        return None
    return Header(length, samples, record_id, seq, ts, _PROTOCOL_NAMES[protocol])


def scan(data: bytes, first_id: int) -> Scan:
    """Find the valid records, with strictly growing ids from ``first_id``, in a segment's bytes."""
    records: list[tuple[int, Header]] = []
    skipped: list[tuple[int, int]] = []
    pos, last_id = 0, first_id - 1
    while pos < len(data):
        header = parse(data, pos)
        if header is not None and header.record_id > last_id:
            records.append((pos, header))
            last_id = header.record_id
            pos += HEADER_BYTES + header.length
            continue
        resume = _resync(data, pos + 1, last_id)
        if resume is None:
            break
        skipped.append((pos, resume))
        pos = resume
    return Scan(records, skipped, pos)


def _resync(data: bytes, start: int, last_id: int) -> int | None:
    """The offset of the next valid record newer than ``last_id`` at or after ``start``, or None."""
    pos = data.find(MAGIC, start)
    while pos >= 0:
        header = parse(data, pos)
        if header is not None and header.record_id > last_id:
            return pos
        pos = data.find(MAGIC, pos + 1)
    return None


def ack_entry(record_id: int) -> bytes:
    """The ack-log entry of ``record_id`` (or of a watermark: ``WATERMARK | id``)."""
    return _ACK.pack(record_id, zlib.crc32(record_id.to_bytes(8, "little")))


def parse_acks(data: bytes) -> tuple[list[int], int]:
    """The ids of the valid entries of an ack log, and how many bytes were invalid (a torn end)."""
    whole = len(data) - len(data) % ACK_BYTES
    ids = [
        record_id
        for record_id, crc in _ACK.iter_unpack(data[:whole])
        if crc == zlib.crc32(record_id.to_bytes(8, "little"))
    ]
    return ids, len(data) - len(ids) * ACK_BYTES


def write_all(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` with one ``writev`` where the kernel allows, finishing a short write."""
    written = os.writev(fd, parts)
    rest = memoryview(b"".join(parts))[written:] if written < sum(map(len, parts)) else None
    while rest:
        rest = rest[os.write(fd, rest) :]


def read_file(fd: int) -> bytes:
    """All of a file, from the descriptor's position."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
