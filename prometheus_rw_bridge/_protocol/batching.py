"""Cutting encoded collections into requests, and requests into halves: one home for batching.

A remote-write request is only repeated top-level fields, so any run of encoded series is a
valid request body (in 2.0 with the symbol table in front).  :func:`iter_split` cuts a
collection between series, at most ``max_samples`` series and, when given, ``max_bytes``
bytes of series per request; :func:`compress_requests` compresses each request as it is cut, and a
:class:`RequestStream` does so while the encoder is still writing, block by block (the
bridge's pushes); :func:`split_body` halves a request a receiver refused as too large (413).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import snappy as _snappy
from . import tags as _tags
from . import wire as _wire

__all__ = ["Cutter", "Request", "RequestStream", "compress_requests", "iter_split", "split_body"]

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
    for block in collection.blocks:
        yield from cutter.add(block)
    yield from cutter.finish()


class Cutter:
    """Cut blocks of encoded series, as they come, into uncompressed requests.

    A block is ``(data, offsets[, max_refs])``: ``offsets`` the start of every entry plus the
    end, ``max_refs`` (2.0) each entry's highest symbol reference.  ``head(top)`` returns what
    goes before series whose highest reference is ``top`` (2.0's symbols; nothing in 1.0).
    A request in the making holds views of its blocks, not copies; :meth:`add` and
    :meth:`finish` yield each request as it is completed and must be consumed whole.

    Raises:
        ValueError: ``max_samples`` or ``max_bytes`` is less than 1.
    """

    def __init__(self, max_samples: int, *, max_bytes: int | None, head: Callable[[int], bytes]) -> None:
        if max_samples < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("max_samples and max_bytes must be at least 1")
        self._max_samples = max_samples
        self._max_bytes = max_bytes
        self._head = head
        self._parts: list[bytes | memoryview] = []
        self._count = self._size = self._top = 0

    def add(self, block: Sequence[Any]) -> Iterator[tuple[bytes, int]]:
        """Take one block; yield the ``(body, series)`` requests it completes."""
        max_samples, max_bytes = self._max_samples, self._max_bytes
        data, offsets = block[0], block[1]
        view = memoryview(data)  # slices of it are joined without a copy of their own
        refs = block[2] if len(block) > 2 else None
        total, start = len(offsets) - 1, 0
        while start < total:
            count, size = self._count, self._size
            end = min(start + max_samples - count, total)
            if max_bytes is not None:
                end = min(end, bisect_right(offsets, offsets[start] + max_bytes - size, start, total + 1) - 1)
                end = max(end, start + (count == 0))  # an oversized series goes alone
            fits = end > start
            if fits:
                self._parts.append(data if end - start == total else view[offsets[start] : offsets[end]])
                if refs is not None:
                    self._top = max(self._top, max(refs[start:end]))
                self._count += end - start
                self._size += offsets[end] - offsets[start]
                start = end
            if self._count == max_samples or not fits:
                yield self._cut()

    def finish(self) -> Iterator[tuple[bytes, int]]:
        """Yield the last request, if any series wait for one."""
        if self._parts:
            yield self._cut()

    def _cut(self) -> tuple[bytes, int]:
        request = self._head(self._top) + b"".join(self._parts), self._count
        self._parts, self._count, self._size, self._top = [], 0, 0, 0
        return request


class RequestStream:
    """Compress a collection's requests while its encoder is still writing blocks.

    Give :meth:`bind` to an encoder (``encode(..., stream=...)``): each block it writes is cut
    (:class:`Cutter`) and every completed request compressed at once, so a push never holds
    its whole uncompressed body, only the request in the making.  In 1.0 the first request
    waits, uncompressed, for :meth:`finish`: the collection's metadata rides with it, and
    whether it is sent is known only once every family is encoded.
    """

    def __init__(self, protocol: str, max_samples: int, *, max_bytes: int | None = None) -> None:
        self._protocol = protocol
        self._max_samples = max_samples
        self._max_bytes = max_bytes
        self._cutter: Cutter | None = None
        self._first: tuple[bytes, int] | None = None
        self.requests: list[Request] = []

    def bind(self, collection: Any) -> Callable[[Sequence[Any]], None]:
        """Start on ``collection``'s blocks; return what takes each of them."""
        self._cutter = Cutter(self._max_samples, max_bytes=self._max_bytes, head=collection.request_head)
        return self.add

    def add(self, block: Sequence[Any]) -> None:
        """Cut one block; compress the requests it completes."""
        assert self._cutter is not None, "bind() first"
        for body, count in self._cutter.add(block):
            self._take(body, count)

    def finish(self, metadata: bytes = b"") -> list[Request]:
        """Compress what is left and return every request, ``metadata`` (1.0) with the first."""
        if self._cutter is not None:
            for body, count in self._cutter.finish():
                self._take(body, count)
        if self._first is not None:
            body, count = self._first
            self._first = None
            self.requests[0:0] = _compressed(body + metadata, count, self._protocol, self._max_bytes)
        elif metadata:
            self.requests += _compressed(metadata, 0, self._protocol, self._max_bytes)
        return self.requests

    def _take(self, body: bytes, count: int) -> None:
        if self._protocol == "1.0" and not self.requests and self._first is None:
            self._first = (body, count)
        else:
            self.requests += _compressed(body, count, self._protocol, self._max_bytes)


def compress_requests(
    collection: Any, protocol: str, max_samples: int, *, metadata: bool, max_bytes: int | None = None
) -> list[Request]:
    """Cut an encoded collection into compressed requests of at most ``max_samples`` series.

    Each request is compressed as soon as it is cut, so no two uncompressed bodies exist at
    once.  With ``metadata`` (1.0 only: 2.0 series carry their own), the collection's
    metadata rides with the first request, or alone when there are no series.  With
    ``max_bytes`` (``max_bytes_per_send``, bytes on the wire) requests are cut at that many
    bytes of series, and a compressed body still larger is halved until it fits; a single
    series that cannot fit stays as it is, for the sender to refuse.
    """
    stream = RequestStream(protocol, max_samples, max_bytes=max_bytes)
    add = stream.bind(collection)
    for block in collection.blocks:
        add(block)
    return stream.finish(collection.metadata if metadata and protocol == "1.0" else b"")


def _compressed(raw: bytes, count: int, protocol: str, max_bytes: int | None) -> list[Request]:
    """Compress one request, halving it while the result is larger than ``max_bytes``.

    Both halves of a 2.0 request keep its symbol table; when that alone cannot fit, halving
    cannot help and the request stays whole.
    """
    body = _snappy.compress(raw)
    halves = split_body(raw, protocol) if max_bytes is not None and len(body) > max_bytes else None
    if halves is None:
        return [Request(body, count, protocol)]
    shared = _shared_head(halves[0][0], halves[1][0])
    if max_bytes is not None and shared and len(_snappy.compress(shared)) >= max_bytes:
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
