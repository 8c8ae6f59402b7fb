"""A family's template: its encoded series, kept between collections and filled with values.

Both encoders keep one :class:`FamilyTemplate` per metric family.  :func:`lay_out` writes
every series' entry, whole, into one ``bytearray`` per family: the entry's field head, its
body (1.0: its labels, which are also its identity; 2.0: label references and metadata), the
head of its sample, then room for the value and timestamp, whose positions it notes.
:func:`pack` writes a collection's values into that room, in C, and copies the block out.  A
series costs its encoded bytes and two array entries, no Python object of its own;
:func:`bodies` cuts the bodies back out when a rare path needs them.

Which family sends a series two families yield is :mod:`.ownership`'s business.
"""

from __future__ import annotations

import functools
import struct
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

from . import wire as _wire

__all__ = [
    "DROP_DUPLICATE",
    "DROP_EMPTY_NAME",
    "DROP_ENCODING_ERROR",
    "DROP_INVALID_LABELS",
    "DROP_INVALID_SAMPLE",
    "DROP_RELABEL",
    "Admitted",
    "FamilyTemplate",
    "Key",
    "Keys",
    "Names",
    "bodies",
    "count_drop",
    "field_head",
    "invalidate",
    "lay_out",
    "pack",
    "picker",
]

# A family's template key: name, type and which of the same-named families a collection yields.
Key = tuple[str, str, int]
# The ``(name, labels)`` of a family's samples, in order.
Keys = list[tuple[str, dict[str, str]]]
# One admitted series: sample index, escaped name, raw labels (from a plan: the sample index)
# and its identity (see FamilyEncoder).
Admitted = tuple[int, str, Any, Any]

# Why an encoder leaves a sample out: the reasons the encoded collections report in
# ``dropped``, which delivery adds to its counters.  The first four are decided when a template
# is built (``FamilyTemplate.dropped``: every collection that uses it reports them); the last two
# in the collection being encoded.
DROP_DUPLICATE = "duplicate"  # another series (in this family or an earlier one) has the same labels
DROP_RELABEL = "relabel"  # the encoder's relabel callable returned None
DROP_EMPTY_NAME = "empty_metric_name"  # both specs: __name__, like every label value, MUST NOT be empty
DROP_INVALID_LABELS = "invalid_labels"  # two labels alike once escaped, a value that is not UTF-8
DROP_INVALID_SAMPLE = "invalid_sample"  # a value (or timestamp, native histogram) that cannot be encoded
DROP_ENCODING_ERROR = "encoding_error"  # the whole family: reading or encoding it raised


class FamilyTemplate:
    """What every encoder's template holds: its series, what must match for it to be reused, its packer.

    ``shape`` is set when the template was built from a
    :class:`~prometheus_rw_bridge._protocol.direct.DirectFamily`: while a later read has the
    same shape, the template fits it without looking at a single sample.
    """

    __slots__ = (
        "blob",
        "documentation",
        "dropped",
        "names",
        "offsets",
        "packer",
        "pick",
        "shadowed",
        "shape",
        "slots",
        "suffix_size",
        "unit",
    )

    def __init__(self) -> None:
        self.names = Names()  # the name each series is sent under, for ownership and staleness
        self.shadowed: list[Any] = []  # series dropped because another family sends them
        self.dropped: dict[str, int] | None = None  # samples dropped at every collection, by reason
        self.suffix_size = 0
        self.documentation = ""
        self.unit = ""
        self.shape: tuple[Any, ...] | None = None
        # From lay_out: the sent series' entries, and where pack() writes each one's value.
        self.packer: struct.Struct | None = None  # packs one value and the timestamp suffix
        self.blob = bytearray()
        self.offsets: Sequence[int] = ()
        self.slots: Sequence[int] = ()
        self.pick: Callable[[list[Any]], Any] | None = None  # picks the sent values; None when all are


class Names:
    """The name each series of a template is sent under: a byte or two per series, not a pointer.

    A family sends few names (a histogram: ``_bucket``, ``_count``, ``_sum``, ``_created``),
    so each series keeps the index of its name among the template's distinct names.
    """

    __slots__ = ("_distinct", "_index", "_of")

    def __init__(self) -> None:
        self._distinct: list[str] = []
        self._of: dict[str, int] = {}
        self._index = array("B")

    def append(self, name: str) -> None:
        at = self._of.get(name)
        if at is None:
            at = self._of[name] = len(self._distinct)
            self._distinct.append(name)
            if at == 256 or at == 65536:  # a custom collector's family of many names
                self._index = array("H" if at == 256 else "I", self._index)
        self._index.append(at)

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[str]:
        return map(self._distinct.__getitem__, self._index)

    def __contains__(self, name: object) -> bool:
        return name in self._of

    def distinct(self) -> list[str]:
        """Each name once, in the order first sent."""
        return list(self._distinct)


def count_drop(tmpl: FamilyTemplate, reason: str, samples: int = 1) -> None:
    """Note that ``tmpl`` drops ``samples`` more for ``reason`` at every collection."""
    if tmpl.dropped is None:
        tmpl.dropped = {}
    tmpl.dropped[reason] = tmpl.dropped.get(reason, 0) + samples


def invalidate(tmpl: FamilyTemplate | None) -> None:
    """Make ``tmpl`` rebuild at its family's next encoding (its series' owners changed)."""
    if tmpl is not None:
        tmpl.suffix_size = -1  # matches no collection


def picker(indices: list[int], then: Callable[[Any], Any] | None = None) -> Callable[[list[Any]], list[Any]]:
    """Return a C-speed function picking ``indices`` (at least one) from a list, as a list."""
    get = itemgetter(*indices)
    if then is None:
        if len(indices) == 1:
            return lambda items: [get(items)]
        return lambda items: list(get(items))
    if len(indices) == 1:
        return lambda items: [then(get(items))]
    return lambda items: list(map(then, get(items)))


def pack(tmpl: FamilyTemplate, values: list[Any], suffix: bytes, *, copy: bool = True) -> bytes | bytearray:
    """Return the family's block: the ``values`` (one per sample, in order) that ``tmpl`` sends.

    Without ``copy`` the block is the template's own blob, valid until the template is packed
    again: for a stream (:class:`~.batching.RequestStream`), which has cut it into requests by then.

    Raises:
        struct.error, TypeError, OverflowError: a value is no number.
        ValueError: there are not as many values as the template has samples.
    """
    if tmpl.pick is not None:
        values = tmpl.pick(values)
    assert tmpl.packer is not None
    count = len(values)
    if count != len(tmpl.slots):
        raise ValueError(f"{count} values for a template of {len(tmpl.slots)} series")
    blob = tmpl.blob
    deque(map(tmpl.packer.pack_into, repeat(blob, count), tmpl.slots, values, repeat(suffix, count)), 0)
    return bytes(blob) if copy else blob


def bodies(tmpl: FamilyTemplate, sample_head_size: Callable[[int], int]) -> list[bytes]:
    """Cut each series' body back out of ``tmpl``'s blob (see :func:`lay_out`).

    ``sample_head_size(index)`` gives the size of series ``index``'s sample head.
    """
    offsets, slots = tmpl.offsets, tmpl.slots
    out = []
    with memoryview(tmpl.blob) as blob:
        for index, slot in enumerate(slots):
            start = offsets[index]
            body_at = start + _head_size(offsets[index + 1] - start)
            out.append(bytes(blob[body_at : slot - sample_head_size(index)]))
    return out


def _head_size(entry: int) -> int:
    """The size of the tag and length in front of a length-delimited entry of ``entry`` bytes in all."""
    for head in range(2, 12):  # a one-byte tag, then a varint of one to ten bytes
        if 1 + len(_wire.varint(entry - head)) == head:
            return head
    raise ValueError(f"no length-delimited entry is {entry} bytes long")


@functools.lru_cache(maxsize=4096)
def field_head(tag: int, length: int) -> bytes:
    """Return the tag and length of a length-delimited field: one shared object per size."""
    return bytes([tag]) + _wire.varint(length)


@functools.lru_cache(maxsize=64)
def _value_packer(suffix_size: int) -> struct.Struct:
    return struct.Struct(f"<d{suffix_size}s")


def lay_out(tmpl: FamilyTemplate, tag: int, entries: Iterable[tuple[bytes, bytes]], suffix_size: int) -> None:
    """Write ``tmpl``'s blob, offsets and value slots for entries ``tag`` + (``body``, ``sample head``).

    Each ``body`` is a series' fields before its sample; ``sample head`` its ``samples``
    field up to the value (it must end with the value's tag), followed in the entry by the
    8-byte value and the ``suffix_size``-byte timestamp field, zeros until :func:`pack`.
    """
    pieces: list[bytes] = []
    add = pieces.append
    room = bytes(8 + suffix_size)
    # Four bytes an offset: a family's blob reaching 4 GiB would need eight (and gets them).
    offsets = array("I", [0])
    slots = array("I")
    size = 0
    for body, sample_head in entries:
        length = len(body) + len(sample_head) + 8 + suffix_size
        head = field_head(tag, length)
        add(head)
        add(body)
        add(sample_head)
        add(room)
        slot = size + len(head) + len(body) + len(sample_head)
        size += len(head) + length
        try:
            slots.append(slot)
            offsets.append(size)
        except OverflowError:
            offsets, slots = array("q", offsets), array("q", slots[: len(offsets) - 1])
            slots.append(slot)
            offsets.append(size)
    tmpl.blob = bytearray().join(pieces)
    tmpl.offsets = offsets
    tmpl.slots = slots
    tmpl.packer = _value_packer(suffix_size)
