"""A family's template: its encoded series, kept between collections and filled with values.

Both encoders keep one :class:`FamilyTemplate` per metric family.  It holds every series'
entry up to its value, compiled by :func:`compile_packer` into one :class:`struct.Struct`, so
that :func:`pack` turns a list of values into the family's encoded block in one C call.  The
ownership helpers say which family sends a series that two families yield.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

__all__ = [
    "Admitted",
    "FamilyTemplate",
    "Key",
    "Keys",
    "compile_packer",
    "invalidate",
    "lost_owner",
    "pack",
    "picker",
    "release_owners",
]

# A family's template key: name, type and which of the same-named families a collection yields.
Key = tuple[str, str, int]
# The ``(name, labels)`` of a family's samples, in order.
Keys = list[tuple[str, dict[str, str]]]
# One admitted series: sample index, escaped name, raw labels and its identity (see FamilyEncoder).
Admitted = tuple[int, str, dict[str, str], Any]


class FamilyTemplate:
    """What every encoder's template holds: its series, what must match for it to be reused, its packer.

    ``shape`` is set when the template was built from a
    :class:`~prometheus_rw_bridge._protocol.direct.DirectFamily`: while a later read has the
    same shape, the template fits it without looking at a single sample.
    """

    __slots__ = (
        "args",
        "documentation",
        "offsets",
        "packer",
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
        self.suffix_size = 0
        self.documentation = ""
        self.unit = ""
        self.shape: tuple[Any, ...] | None = None
        # From compile_packer: entries of the sent series, filled in by pack().
        self.packer: struct.Struct | None = None
        self.args: list[Any] = []
        self.offsets: Sequence[int] = ()
        self.pick: Callable[[list[Any]], Any] | None = None  # picks the sent values; None when all are


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
    """Pack the ``values`` (one per sample, in order) that ``tmpl`` sends, each followed by ``suffix``.

    Raises:
        struct.error, TypeError, OverflowError: a value is no number; the values are left in
            ``tmpl.args[1::3]``.
    """
    if tmpl.pick is not None:
        values = tmpl.pick(values)
    args = tmpl.args
    args[1::3] = values
    args[2::3] = [suffix] * len(tmpl.series)
    assert tmpl.packer is not None
    return tmpl.packer.pack(*args)


def compile_packer(
    prefixes: Sequence[bytes], suffix_size: int
) -> tuple[struct.Struct, list[Any], array[int]]:
    """Compile entries of ``prefix``, a double and a ``suffix_size``-byte suffix into one ``Struct``.

    Returns the packer, its argument list (values and suffixes go at ``[1::3]`` and
    ``[2::3]``) and the offset of every entry plus the end.
    """
    formats = ["<"]
    args: list[Any] = []
    offsets = array("q", [0])
    size = 0
    for prefix in prefixes:
        formats.append(f"{len(prefix)}sd{suffix_size}s")
        args += (prefix, 0.0, b"")
        size += len(prefix) + 8 + suffix_size
        offsets.append(size)
    return struct.Struct("".join(formats)), args, offsets
