"""The 2.0 encoder's template: what it keeps per family, and each series' head read back from its blob.

A 2.0 series' entry is its ``labels_refs`` and metadata fields (its *head*), then its sample
field, whose head depends on the series' start timestamp (:class:`SampleHeads`).  A template
keeps the heads as a list only while no blob holds them (families encoded sample by sample);
:func:`heads` cuts them back out of the blob otherwise.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

from . import tags as _tags
from . import wire as _wire
from .encoded import Symbols
from .template import FamilyTemplate, bodies, field_head

__all__ = ["SampleHeads", "Template", "heads"]

_SAMPLE_START = bytes([_tags.V2_SAMPLE_START])
_VALUE_TAG = bytes([_tags.SAMPLE_VALUE])


class Template(FamilyTemplate):
    """One family's encoded series, reusable while its samples' names, labels and start times hold.

    A series' identity, for ownership and staleness, is its labels encoded as 1.0 ``Label``
    fields; it is not kept, but read back from its label references (:meth:`EncoderV2._series_of`).
    """

    __slots__ = (
        "created",
        "created_pick",
        "created_values",
        "heads",
        "keep",
        "keys",
        "max_refs",
        "starts",
        "symbols",
        "types",
    )

    def __init__(self, symbols: Symbols) -> None:
        super().__init__()
        self.symbols = symbols  # the table the references below point into
        self.keys: list[tuple[str, dict[str, str]]] = []
        # Picks the consumed ``_created`` samples; ``created`` is what it picked at build time.
        self.created_pick: Callable[[list[Any]], Any] | None = None
        self.created_values: Callable[[list[Any]], Any] | None = None  # the same, from a list of values
        self.created: Any = None
        self.keep = array("q")  # sample index of each series
        # labels_refs and metadata fields of each series, while no blob holds them (see _heads)
        self.heads: list[bytes] = []
        self.starts = array("q")  # start timestamp (ms) of each series, 0 for none
        self.max_refs = array("q")
        self.types = array("B")  # metadata type of each series, for stale markers


class SampleHeads(dict[int, bytes]):
    """A 2.0 sample field up to its value, by start timestamp, for one timestamp field size."""

    def __init__(self, suffix_size: int) -> None:
        super().__init__()
        self._suffix_size = suffix_size

    def __missing__(self, start: int) -> bytes:
        start_field = _SAMPLE_START + _wire.varint(start) if start else b""
        size = len(start_field) + 1 + 8 + self._suffix_size
        head = self[start] = field_head(_tags.V2_TS_SAMPLE, size) + start_field + _VALUE_TAG
        return head


def heads(tmpl: Template) -> list[bytes]:
    """Each series' labels_refs and metadata fields: kept while no blob holds them, else cut from it."""
    if tmpl.heads or not tmpl.slots:
        return tmpl.heads
    offsets, slots, starts = tmpl.offsets, tmpl.slots, tmpl.starts
    by_size: dict[int, SampleHeads] = {}

    def sample_head_size(index: int) -> int:
        suffix_size = offsets[index + 1] - slots[index] - 8
        by_start = by_size.get(suffix_size)
        if by_start is None:
            by_start = by_size[suffix_size] = SampleHeads(suffix_size)
        return len(by_start[starts[index]])

    return bodies(tmpl, sample_head_size)
