"""A family's template: its encoded series, kept between collections and filled with values.

Both encoders keep one :class:`FamilyTemplate` per metric family.  It holds every series'
entry up to its value as a list of parts, laid out by :func:`lay_out`: the entry's field head,
its labels (the series' own bytes, which are also its identity), the head of its sample, and a
slot for the value and timestamp.  Heads are shared between series of the same size, so a
series costs its labels plus four list slots.  :func:`pack` fills the slots and joins the
parts, in C.  The ownership helpers say which family sends a series that two families yield.
"""

from __future__ import annotations

import functools
import struct
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    "count_drop",
    "field_head",
    "invalidate",
    "lay_out",
    "lost_owner",
    "pack",
    "picker",
    "release_owners",
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
        "documentation",
        "dropped",
        "offsets",
        "packer",
        "parts",
        "pick",
        "series",
        "shadowed",
        "shape",
        "suffix_size",
        "unit",
    )

    def __init__(self) -> None:
        self.series: list[Any] = []  # identity of each series sent, for ownership and staleness
        self.shadowed: list[Any] = []  # series dropped because another family sends them
        self.dropped: dict[str, int] | None = None  # samples dropped at every collection, by reason
        self.suffix_size = 0
        self.documentation = ""
        self.unit = ""
        self.shape: tuple[Any, ...] | None = None
        # From lay_out: the sent series' entries, less their values, which pack() fills in.
        self.packer: struct.Struct | None = None  # packs one value and the timestamp suffix
        self.parts: list[Any] = []
        self.offsets: Sequence[int] = ()
        self.pick: Callable[[list[Any]], Any] | None = None  # picks the sent values; None when all are


def count_drop(tmpl: FamilyTemplate, reason: str, samples: int = 1) -> None:
    """Note that ``tmpl`` drops ``samples`` more for ``reason`` at every collection."""
    if tmpl.dropped is None:
        tmpl.dropped = {}
    tmpl.dropped[reason] = tmpl.dropped.get(reason, 0) + samples


def invalidate(tmpl: FamilyTemplate | None) -> None:
    """Make ``tmpl`` rebuild at its family's next encoding (its series' owners changed)."""
    if tmpl is not None:
        tmpl.suffix_size = -1  # matches no collection


def release_owners(owners: dict[Any, Key], key: Key, old: Iterable[Any], kept: Iterable[Any]) -> None:
    """Forget ``key`` as the owner of the series in ``old`` that it no longer sends (not in ``kept``)."""
    still = set(kept)
    for series in old:
        if series not in still and owners.get(series) == key:
            del owners[series]


def lost_owner(shadowed: list[Any], owners: dict[Any, Key], current: Mapping[Key, Any]) -> bool:
    """Tell whether a series a family left to another is no longer sent by an earlier family."""
    return any(owners.get(series) not in current for series in shadowed)


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


def pack(tmpl: FamilyTemplate, values: list[Any], suffix: bytes) -> bytes:
    """Return the family's block: the ``values`` (one per sample, in order) that ``tmpl`` sends.

    Raises:
        struct.error, TypeError, OverflowError: a value is no number.
    """
    if tmpl.pick is not None:
        values = tmpl.pick(values)
    assert tmpl.packer is not None
    parts = tmpl.parts
    count = len(values)
    parts[3::4] = list(map(tmpl.packer.pack, values, repeat(suffix, count)))
    block = b"".join(parts)
    parts[3::4] = [None] * count  # keep no value between collections
    return block


@functools.lru_cache(maxsize=4096)
def field_head(tag: int, length: int) -> bytes:
    """Return the tag and length of a length-delimited field: one shared object per size."""
    return bytes([tag]) + _wire.varint(length)


@functools.lru_cache(maxsize=64)
def _value_packer(suffix_size: int) -> struct.Struct:
    return struct.Struct(f"<d{suffix_size}s")


def lay_out(tmpl: FamilyTemplate, tag: int, entries: Iterable[tuple[bytes, bytes]], suffix_size: int) -> None:
    """Set ``tmpl``'s parts and offsets for series entries ``tag`` + (``body``, ``sample head``).

    Each ``body`` is a series' fields before its sample; ``sample head`` its ``samples``
    field up to the value (it must end with the value's tag), followed in the entry by the
    8-byte value and the ``suffix_size``-byte timestamp field.
    """
    heads: list[bytes] = []
    bodies: list[bytes] = []
    sample_heads: list[bytes] = []
    offsets = array("q", [0])
    size = 0
    for body, sample_head in entries:
        length = len(body) + len(sample_head) + 8 + suffix_size
        head = field_head(tag, length)
        heads.append(head)
        bodies.append(body)
        sample_heads.append(sample_head)
        size += len(head) + length
        offsets.append(size)
    parts: list[Any] = [None] * (4 * len(heads))  # exactly sized: kept as long as the family
    parts[0::4] = heads
    parts[1::4] = bodies
    parts[2::4] = sample_heads
    tmpl.parts = parts
    tmpl.offsets = offsets
    tmpl.packer = _value_packer(suffix_size)
