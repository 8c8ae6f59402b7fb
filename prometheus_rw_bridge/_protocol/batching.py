"""Cutting encoded collections into requests, and requests into halves: one home for batching.

A remote-write request is only repeated top-level fields, so any run of encoded series is a
valid request body (in 2.0 with the symbol table in front).  :func:`iter_split` cuts a
collection between series, at most ``max_samples`` series and, when given, ``max_bytes``
bytes of series per request; :func:`compress_requests` compresses each request as it is cut, and a
:class:`RequestStream` does so while the encoder is still writing, block by block (the
bridge's pushes); :func:`split_body` halves a request a receiver refused as too large (413).
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from . import snappy as _snappy
from . import tags as _tags
from . import wire as _wire

__all__ = [
    "Cutter",
    "JoinBuffer",
    "Request",
    "RequestStream",
    "compress_requests",
    "iter_split",
    "split_body",
]

# Top-level fields every series of a request refers to: 2.0's symbol table.
_SHARED_TAGS = {"1.0": (), "2.0": (_tags.V2_REQUEST_SYMBOL,)}


@dataclass(frozen=True)
class Request:
    """One compressed request body and what it carries; shared by every endpoint that sends it."""

    body: bytes
    samples: int
    protocol: str = "1.0"


def iter_split(
    collection: Any, max_samples: int, *, max_bytes: int | None = None
) -> Iterator[tuple[bytes, int]]:
    """Cut ``collection`` into uncompressed requests; yield ``(body, series)`` pairs in order.

    Each request holds at most ``max_samples`` series and, with ``max_bytes``, at most that
    many bytes of series (a single larger series still goes, alone).  ``collection.blocks``
    hold ``(data, offsets[, max_refs])`` (see :class:`Cutter`); ``collection.request_head(top)``
    returns what goes before series whose highest reference is ``top``.  Requests are built
    only when asked for, so a caller that compresses as it goes never holds them all.

    Raises:
        ValueError: ``max_samples`` or ``max_bytes`` is less than 1.
    """
    cutter = Cutter(max_samples, max_bytes=max_bytes, head=collection.request_head)
    requests = (request for block in collection.blocks for request in cutter.add(block))
    yield from cast("Iterator[tuple[bytes, int]]", itertools.chain(requests, cutter.finish()))


class Cutter:
    """Cut blocks of encoded series, as they come, into uncompressed requests.

    A block is ``(data, offsets[, max_refs])``: ``offsets`` the start of every entry plus the
    end, ``max_refs`` (2.0) each entry's highest symbol reference.  ``head(top)`` returns what
    goes before series whose highest reference is ``top`` (2.0's symbols; nothing in 1.0).
    A request in the making holds views of its blocks, not copies; a full one is cut only when
    more series come, so the last is still open at :meth:`finish`, which can add a tail to it.
    :meth:`add` and :meth:`finish` yield each request as it is completed and must be consumed
    whole.  With a ``buffer``, each request is written into it and yielded as a view of it,
    valid until the next request is cut; without, as ``bytes``.

    Raises:
        ValueError: ``max_samples`` or ``max_bytes`` is less than 1.
    """

    def __init__(
        self,
        max_samples: int,
        *,
        max_bytes: int | None,
        head: Callable[[int], bytes],
        buffer: JoinBuffer | None = None,
    ) -> None:
        if max_samples < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("max_samples and max_bytes must be at least 1")
        self._max_samples = max_samples
        self._max_bytes = max_bytes
        self._head = head
        self._buffer = buffer
        self._parts: list[bytes | bytearray | memoryview] = []
        self._count = self._size = self._top = 0

    def add(self, block: Sequence[Any]) -> Iterator[tuple[bytes | memoryview, int]]:
        """Take one block; yield the ``(body, series)`` requests it completes."""
        max_samples, max_bytes = self._max_samples, self._max_bytes
        data, offsets = block[0], block[1]
        view = memoryview(data)  # slices of it are joined without a copy of their own
        refs = block[2] if len(block) > 2 else None
        total, start = len(offsets) - 1, 0
        while start < total:
            count, size = self._count, self._size
            if count == max_samples:
                yield self._cut()
                continue
            end = min(start + max_samples - count, total)
            if max_bytes is not None:
                end = min(end, bisect_right(offsets, offsets[start] + max_bytes - size, start, total + 1) - 1)
                end = max(end, start + (count == 0))  # an oversized series goes alone
            if end <= start:  # the byte limit is reached
                yield self._cut()
                continue
            self._parts.append(data if end - start == total else view[offsets[start] : offsets[end]])
            if refs is not None:
                self._top = max(self._top, max(refs[start:end]))
            self._count += end - start
            self._size += offsets[end] - offsets[start]
            start = end

    def finish(self, tail: bytes = b"") -> Iterator[tuple[bytes | memoryview, int]]:
        """Yield the last request, with ``tail`` after its series, if any series wait for one."""
        if self._parts:
            if tail:
                self._parts.append(tail)
            yield self._cut()

    def _cut(self) -> tuple[bytes | memoryview, int]:
        pieces = [self._head(self._top), *self._parts]
        body = b"".join(pieces) if self._buffer is None else self._buffer.fill(pieces)
        request = body, self._count
        self._parts, self._count, self._size, self._top = [], 0, 0, 0
        return request


class JoinBuffer:
    """The memory a stream joins each request into before compressing it, reused push after push.

    Joined into fresh ``bytes``, a request of 10,000 series (1.7 MB in 1.0) is allocated and
    freed once per request, and the compressed bodies allocated in between keep the allocator
    from reusing those holes, so the memory a process keeps grows with the request size.
    """

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = bytearray()

    def fill(self, pieces: Sequence[bytes | bytearray | memoryview]) -> memoryview:
        """Write ``pieces`` one after another; return a view of them, valid until the next fill."""
        size = sum(map(len, pieces))
        if size > len(self._data):
            self._data = bytearray(size + size // 8)  # room for a slightly larger next request
        data = self._data
        at = 0
        for piece in pieces:
            end = at + len(piece)
            data[at:end] = piece  # the same length: the buffer is never resized
            at = end
        return memoryview(data)[:size]


class RequestStream:
    """Compress a collection's requests while its encoder is still writing blocks.

    Give :meth:`bind` to an encoder (``encode(..., stream=...)``): each block it writes is cut
    (:class:`Cutter`) and every completed request compressed at once, so a push never holds
    its whole uncompressed body, only the request in the making (joined into ``buffer``, when
    given, which can then serve the next push too).  In 1.0 the collection's metadata rides
    with the last request, which is still open when :meth:`finish` learns whether it goes.
    """

    def __init__(
        self,
        protocol: str,
        max_samples: int,
        *,
        max_bytes: int | None = None,
        buffer: JoinBuffer | None = None,
    ) -> None:
        self._protocol = protocol
        self._max_samples = max_samples
        self._max_bytes = max_bytes
        self._buffer = buffer
        self._cutter: Cutter | None = None
        self.requests: list[Request] = []

    def bind(self, collection: Any) -> Callable[[Sequence[Any]], None]:
        """Start on ``collection``'s blocks; return what takes each of them."""
        self._cutter = Cutter(
            self._max_samples, max_bytes=self._max_bytes, head=collection.request_head, buffer=self._buffer
        )
        return self.add

    def add(self, block: Sequence[Any]) -> None:
        """Cut one block; compress the requests it completes."""
        assert self._cutter is not None, "bind() first"
        for body, count in self._cutter.add(block):
            self.requests += _compressed(body, count, self._protocol, self._max_bytes)

    def finish(self, metadata: bytes = b"") -> list[Request]:
        """Compress what is left and return every request, ``metadata`` (1.0) with the last."""
        last: list[tuple[bytes | memoryview, int]] = []
        if self._cutter is not None:
            last = list(self._cutter.finish(metadata))
        for body, count in last:
            self.requests += _compressed(body, count, self._protocol, self._max_bytes)
        if metadata and not last:
            self.requests += _compressed(metadata, 0, self._protocol, self._max_bytes)
        return self.requests


def compress_requests(
    collection: Any, protocol: str, max_samples: int, *, metadata: bool, max_bytes: int | None = None
) -> list[Request]:
    """Cut an encoded collection into compressed requests of at most ``max_samples`` series.

    Each request is compressed as soon as it is cut, so no two uncompressed bodies exist at
    once.  With ``metadata`` (1.0 only: 2.0 series carry their own), the collection's
    metadata rides with the last request, or alone when there are no series.  With
    ``max_bytes`` (``max_bytes_per_send``, bytes on the wire) requests are cut at that many
    bytes of series, and a compressed body still larger is halved until it fits; a single
    series that cannot fit stays as it is, for the sender to refuse.
    """
    stream = RequestStream(protocol, max_samples, max_bytes=max_bytes)
    add = stream.bind(collection)
    for block in collection.blocks:
        add(block)
    return stream.finish(collection.metadata if metadata and protocol == "1.0" else b"")


def _compressed(raw: bytes | memoryview, count: int, protocol: str, max_bytes: int | None) -> list[Request]:
    """Compress one request, halving it while the result is larger than ``max_bytes``.

    Both halves of a 2.0 request keep its symbol table; when that alone cannot fit, halving
    cannot help and the request stays whole.
    """
    body = _snappy.compress(raw)
    if max_bytes is None or len(body) <= max_bytes:
        return [Request(body, count, protocol)]
    halves = split_body(bytes(raw), protocol)
    if halves is None:
        return [Request(body, count, protocol)]
    shared = _shared_head(halves[0][0], halves[1][0])
    if shared and len(_snappy.compress(shared)) >= max_bytes:
        return [Request(body, count, protocol)]
    return [request for half, n in halves for request in _compressed(half, n, protocol, max_bytes)]


def _shared_head(left: bytes, right: bytes) -> bytes:
    """The longest common prefix of two halves: what :func:`split_body` copied into both."""
    low, high = 0, min(len(left), len(right))
    view_left, view_right = memoryview(left), memoryview(right)
    while low < high:  # prefixes are equal up to some length, then never again: bisect it
        middle = (low + high + 1) // 2
        if view_left[:middle] == view_right[:middle]:
            low = middle
        else:
            high = middle - 1
    return left[:low]


def split_body(raw: bytes, protocol: str = "1.0") -> tuple[tuple[bytes, int], tuple[bytes, int]] | None:
    """Cut an uncompressed request into two valid requests of about half the series each.

    Returns ``((body, series), (body, series))``, or ``None`` when there are fewer than two
    series.  In 2.0 the symbols table is shared by every series, so both halves carry all of it.
    """
    series_tag = _tags.SERIES_TAG[protocol]
    shared_tags = _SHARED_TAGS[protocol]
    shared: list[bytes] = []
    movable: list[tuple[bytes, bool]] = []  # (field bytes, is a series)
    for tag, start, end in _wire.read_fields(raw):
        if tag in shared_tags:
            shared.append(raw[start:end])
        else:
            movable.append((raw[start:end], tag == series_tag))
    total = sum(is_series for _, is_series in movable)
    if total < 2:
        return None
    head = b"".join(shared)
    left: list[bytes] = []
    taken = 0
    for index, (data, is_series) in enumerate(movable):
        if is_series and taken == total // 2:
            right = [data for data, _ in movable[index:]]
            return (head + b"".join(left), taken), (head + b"".join(right), total - taken)
        left.append(data)
        taken += is_series
    raise AssertionError("unreachable: the series were counted above")
