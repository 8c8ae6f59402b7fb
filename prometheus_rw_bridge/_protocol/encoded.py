"""Encoded collections, not yet compressed: what an encoder returns and batching cuts.

An :class:`EncodedCollection` (1.0) or :class:`EncodedCollectionV2` (2.0) holds blocks of
encoded series with the offset of every entry, so batching can cut between any two series;
2.0 adds each entry's highest symbol reference and the :class:`Symbols` table.  A
:class:`BlockBuilder` collects the entries an encoder writes one by one into such a block.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import batching as _batching
from . import tags as _tags
from . import wire as _wire

__all__ = [
    "BlockBuilder",
    "EncodedBase",
    "EncodedCollection",
    "EncodedCollectionV2",
    "Symbols",
    "packed_refs",
]

_PAIR_CACHE_SIZE = 16_384  # label pairs a table keeps encoded; emptied when full, as 1.0's fields

EMPTY_SYMBOL = bytes([_tags.V2_REQUEST_SYMBOL, 0])
"""``symbols[0] = ""``, the entry every 2.0 symbol table starts with."""


class BlockBuilder:
    """Collect entries written one at a time into a block: its data, offsets and (2.0) references."""

    __slots__ = ("max_refs", "offsets", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offsets = array("q", [0])
        self.max_refs = array("q")
        self.size = 0

    def add(self, entry: bytes, top_ref: int = 0) -> None:
        """Append one encoded series entry, whose highest symbol reference is ``top_ref``."""
        self.parts.append(entry)
        self.size += len(entry)
        self.offsets.append(self.size)
        self.max_refs.append(top_ref)

    def __len__(self) -> int:
        return len(self.parts)

    def block(self) -> tuple[bytes, Sequence[int]] | None:
        """The 1.0 block, or ``None`` when nothing was added."""
        return (b"".join(self.parts), self.offsets) if self.parts else None

    def block_v2(self) -> tuple[bytes, Sequence[int], Sequence[int]] | None:
        """The 2.0 block (with references), or ``None`` when nothing was added."""
        return (b"".join(self.parts), self.offsets, self.max_refs) if self.parts else None


class EncodedBase:
    """What both collections share: where their blocks go, and the samples the encoder dropped, by reason.

    Blocks go to :attr:`blocks`, unless the encoder was given a stream
    (:class:`~.batching.RequestStream`): then each goes to ``sink`` as it is written, and
    ``blocks`` stays empty.
    """

    dropped: dict[str, int]
    blocks: list[Any]
    sink: Callable[[Any], None] | None

    def add_block(self, block: Any) -> None:
        """Take one encoded block (see :func:`~.batching.iter_split`)."""
        if self.sink is None:
            self.blocks.append(block)
        else:
            self.sink(block)

    def add_dropped(self, counts: dict[str, int]) -> None:
        """Add a template's per-collection drops to :attr:`dropped`."""
        for reason, count in counts.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count


@dataclass
class EncodedCollection(EncodedBase):
    """One collection, encoded as remote-write 1.0 but not yet compressed.

    ``blocks`` hold ``WriteRequest.timeseries`` entries; each block's ``offsets`` list the start
    of every entry plus the end, so a block can be cut between any two series.
    """

    timestamp_ms: int
    blocks: list[tuple[bytes, Sequence[int]]] = field(default_factory=list)
    metadata: bytes = b""
    samples: int = 0
    stale_markers: int = 0
    metadata_changed: bool = False
    dropped: dict[str, int] = field(default_factory=dict)
    """Samples the encoder dropped, by reason (``template.DROP_*``), for delivery's counters."""
    sink: Callable[[Any], None] | None = field(default=None, repr=False)

    def body(self, *, metadata: bool = True) -> bytes:
        """Return the whole collection as one uncompressed ``WriteRequest``."""
        parts = [data for data, _ in self.blocks]
        if metadata:
            parts.append(self.metadata)
        return b"".join(parts)

    def iter_split(self, max_samples: int, *, max_bytes: int | None = None) -> Iterator[tuple[bytes, int]]:
        """Cut the collection into uncompressed requests (see :func:`batching.iter_split`).

        Metadata travels with none of them; callers that want it append :attr:`metadata` to
        a request of their choice.
        """
        return _batching.iter_split(self, max_samples, max_bytes=max_bytes)

    def request_head(self, top_ref: int) -> bytes:
        """What goes before the series of a request: nothing in 1.0."""
        return b""

    def split(self, max_samples: int) -> list[tuple[bytes, int]]:
        """Return :meth:`iter_split`'s requests as a list."""
        return list(self.iter_split(max_samples))


@dataclass
class EncodedCollectionV2(EncodedBase):
    """One collection, encoded as remote-write 2.0 but not yet compressed.

    ``blocks`` hold ``Request.timeseries`` entries: ``(data, offsets, max_refs)`` where
    ``offsets`` list the start of every entry plus the end and ``max_refs`` the highest
    symbol reference of each entry, so a block can be cut between any two series and each
    piece given just the symbols it needs.  Metadata travels inside every series, so
    :attr:`metadata` is always empty; it and :attr:`metadata_changed` exist so that code
    handling 1.0 collections handles these unchanged.
    """

    timestamp_ms: int
    blocks: list[tuple[bytes, Sequence[int], Sequence[int]]] = field(default_factory=list)
    samples: int = 0
    stale_markers: int = 0
    metadata: bytes = b""
    metadata_changed: bool = False
    symbols_blob: bytes = EMPTY_SYMBOL
    dropped: dict[str, int] = field(default_factory=dict)
    """Samples the encoder dropped, by reason (``template.DROP_*``), for delivery's counters."""

    symbol_ends: Sequence[int] = (2,)
    sink: Callable[[Any], None] | None = field(default=None, repr=False)
    symbols: Symbols | None = field(default=None, repr=False)
    """The encoder's table while it writes this collection: entries are only ever appended (a
    compacted table is replaced, not changed), so a prefix read from it stays what it was."""

    def body(self, *, metadata: bool = True) -> bytes:
        """Return the whole collection as one uncompressed ``io.prometheus.write.v2.Request``.

        ``metadata`` is accepted for symmetry with 1.0 and ignored: 2.0 series carry theirs.
        """
        return b"".join([self.symbols_blob, *(data for data, _, _ in self.blocks)])

    def iter_split(self, max_samples: int, *, max_bytes: int | None = None) -> Iterator[tuple[bytes, int]]:
        """Cut the collection into uncompressed requests (see :func:`batching.iter_split`).

        Every request is complete on its own: it starts with the symbol table up to the
        highest reference its series use.
        """
        return _batching.iter_split(self, max_samples, max_bytes=max_bytes)

    def split(self, max_samples: int) -> list[tuple[bytes, int]]:
        """Return :meth:`iter_split`'s requests as a list."""
        return list(self.iter_split(max_samples))

    def request_head(self, top_ref: int) -> bytes:
        """The symbol table up to ``top_ref``: what the series of a request refer to."""
        if self.symbols is not None:  # still being written: the snapshot is not taken yet
            return bytes(memoryview(self.symbols.blob)[: self.symbols.ends[top_ref]])
        return self.symbols_blob[: self.symbol_ends[top_ref]]


class Symbols:
    """An append-only, deduplicated symbol table, kept encoded as ``Request.symbols`` fields."""

    __slots__ = ("blob", "ends", "pairs", "refs")

    def __init__(self) -> None:
        self.refs: dict[bytes, int] = {b"": 0}
        self.blob = bytearray(EMPTY_SYMBOL)  # entry 0: the empty string
        self.ends: list[int] = [2]
        # Label pairs seen so far: their two references as labels_refs varints, and the higher.
        self.pairs: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}

    def __len__(self) -> int:
        return len(self.ends)

    def ref(self, symbol: bytes) -> int:
        """Return the index of ``symbol``, appending it if new."""
        index = self.refs.get(symbol)
        if index is None:
            index = self.refs[symbol] = len(self.ends)
            self.blob += _wire.length_delimited(_tags.V2_REQUEST_SYMBOL, symbol)
            self.ends.append(len(self.blob))
        return index

    def symbol(self, index: int) -> bytes:
        """Return the symbol numbered ``index``."""
        if index == 0:
            return b""
        start, end = self.ends[index - 1], self.ends[index]
        _, at = _wire.read_varint(self.blob, start + 1)  # past the tag, the length
        return bytes(self.blob[at:end])

    def pair_refs(self, pair: tuple[bytes, bytes]) -> bytes:
        """The ``labels_refs`` varints of one label pair, numbering its strings on first sight."""
        got = self.pairs.get(pair)
        if got is None:
            name, value = self.ref(pair[0]), self.ref(pair[1])
            if len(self.pairs) >= _PAIR_CACHE_SIZE:
                self.pairs.clear()
            got = self.pairs[pair] = (_wire.varint(name) + _wire.varint(value), max(name, value))
        return got[0]

    def pair_top(self, pair: tuple[bytes, bytes]) -> int:
        """The higher reference of a label pair (numbering it if new)."""
        got = self.pairs.get(pair)
        return got[1] if got is not None else max(self.ref(pair[0]), self.ref(pair[1]))



def packed_refs(tag: int, refs: Sequence[int]) -> bytes:
    """Encode ``refs`` as a packed ``repeated uint32`` field (nothing when empty)."""
    if not refs:
        return b""
    return _wire.length_delimited(tag, b"".join([_wire.varint(r) for r in refs]))
