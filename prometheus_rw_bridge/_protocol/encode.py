"""Collector -> remote-write 1.0 ``WriteRequest`` bytes.  Pure: no I/O, no threads, no globals.

Series names and labels are exactly those a Prometheus scrape of the same registry's
``/metrics`` text (``generate_latest``) would store: ``foo_total`` and ``foo_created`` for a
counter ``foo``, ``le`` spelled as the text spells it, ``foo_info`` for an info metric, and
names outside the legacy character set escaped to underscores.

Speed comes from one observation: label sets rarely change between collections.  An
:class:`Encoder` keeps, per metric family, a *template*: the encoded bytes of every series up
to its value (see ``template``).  A family read directly (``registry.read()``: the standard
prometheus_client types) is filled from its values alone while its children's label values
hold, all in C; a collected family while it yields the same ``(name, labels)`` sequence as last
time.  A changed family is built anew; one with per-sample timestamps, exemplars or native
histograms is encoded sample by sample around its template.

Keeping templates from one collection to the next also tells the encoder which series went
away, so it can emit stale markers for them (``track_staleness=True``).
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Hashable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, cast

from prometheus_client.samples import Sample

from . import native as _native
from . import tags as _tags
from . import wire as _wire
from .assemble import Plan
from .direct import DirectFamily
from .encoded import BlockBuilder, EncodedCollection
from .families import FamilyEncoder
from .metadata import family_metadata, metadata_types, sample_names
from .registry import collect
from .samples import EXEMPLAR_ERRORS, exemplar_entry_v1, to_millis
from .template import (
    DROP_INVALID_SAMPLE,
    FamilyTemplate,
    Key,
    Keys,
    bodies,
    field_head,
    lay_out,
    pack,
    picker,
)

logger = logging.getLogger(__name__)

__all__ = [
    "EncodedCollection",
    "Encoder",
    "collect",
    "metadata_types",
    "to_millis",
]

_NAME_LABELS = itemgetter(0, 1)
_VALUE = itemgetter(2)
_SAMPLE_FIELDS = len(Sample._fields)
# Timestamp, exemplar and (prometheus_client >= 0.20) native histogram: any of them set sends
# the family down the general path.
_EXTRAS = itemgetter(3, 4, 5) if _SAMPLE_FIELDS > 5 else itemgetter(3, 4)
_NO_EXTRAS = (None,) * (3 if _SAMPLE_FIELDS > 5 else 2)
# Everything about a sample but its value: one C-level tuple per sample, one list comparison
# per family tells "same series, nothing extra" in the steady state.
_SIGNATURE = itemgetter(0, 1, 3, 4, 5) if _SAMPLE_FIELDS > 5 else itemgetter(0, 1, 3, 4)
_SIGNATURE_EXTRAS = itemgetter(2, 3, 4) if _SAMPLE_FIELDS > 5 else itemgetter(2, 3)

_CREATED_TYPES = frozenset({"counter", "histogram", "summary", "gaugehistogram"})


@functools.lru_cache(maxsize=64)
def _sample_head(suffix_size: int) -> bytes:
    """A 1.0 sample field up to its value: its tag and length, then the value's tag."""
    return field_head(_tags.TS_SAMPLE, 1 + 8 + suffix_size) + bytes([_tags.SAMPLE_VALUE])


class _Template(FamilyTemplate):
    """One family's encoded series, reusable while its ``(name, labels)`` sequence holds.

    A series' body in the blob is its encoded labels: its identity (see :func:`_series_of`).
    """

    __slots__ = ("keep", "metadata", "plain", "signature")

    def __init__(self) -> None:
        super().__init__()
        # The samples' signatures (see _SIGNATURE) when last seen; ``plain`` if none had extras.
        self.signature: list[tuple[Any, ...]] = []
        self.plain = False
        self.keep: list[int] | None = None  # sample indices kept, or None for all
        self.metadata = b""


class Encoder(FamilyEncoder[_Template, EncodedCollection]):
    """Encode collections into remote-write 1.0 bodies, reusing work across collections.

    :meth:`encode` takes an internal lock, so sharing one is safe.

    Args:
        job: value of the ``job`` label added to every series that lacks one. ``None`` means the
            program's name; an empty string adds no label.
        instance: likewise for ``instance``; ``None`` means the host name.
        external_labels: further labels added to every series that lacks them.  A ``job`` or
            ``instance`` among them is used when the ``job``/``instance`` argument is ``None``.
        track_staleness: remember the series of each collection and emit a stale marker for
            every series that has gone since the previous one.
        metric_filter: called with each escaped series name (once per name and family while
            its template is built); series for which it returns false are not sent.
        relabel: called once per series, when its template is built, with the series'
            final labels (escaped, target labels added, ``__name__`` set); returns the labels
            to send or ``None`` to drop the series.  The result is kept in the template, so
            pushes that reuse it cost nothing more.  Series that collide afterwards: the first
            is sent, the others dropped and counted (``duplicate``).  With it set, directly read
            families are built from their samples (the per-child plan assumes no relabelling).
        warned: the set of ``(family, problem)`` already logged; encoders given the same set
            log each problem once between them.  Default: a set of this encoder's own.

    Every collection reports in ``dropped`` the samples it left out, by reason (see
    ``template.DROP_*``: an empty name, invalid labels, a duplicate, the relabel callable, a
    value that cannot be encoded, a whole family that raised), so that delivery can add them to
    its counters; each problem is logged once.  A new reason is a new constant
    there and a :meth:`_drop` (or, unlogged, a :func:`count_drop`) where the sample is left out.
    """

    _logger = logger

    def _setup(self) -> None:
        self._metadata_fingerprint = b""
        self._metadata: list[bytes] = []  # the metadata of each family of the collection being encoded
        self._renamed: dict[bytes, str] = {}  # with relabel: each series' new name, from _series_id to _build

    def _collection(self, timestamp_ms: int) -> EncodedCollection:
        self._metadata = []
        return EncodedCollection(timestamp_ms)

    def _finish(self, result: EncodedCollection, *, stale_only: bool) -> None:
        if stale_only:
            return
        result.metadata = b"".join(self._metadata)
        self._metadata = []
        if result.metadata != self._metadata_fingerprint:
            result.metadata_changed = True
            self._metadata_fingerprint = result.metadata

    def _template_for(
        self, family: Any, samples: list[Any], tmpl: _Template | None, suffix_size: int, key: Key
    ) -> _Template:
        signature = list(map(_SIGNATURE, samples))
        if (
            tmpl is not None
            and tmpl.suffix_size == suffix_size
            and family.documentation == tmpl.documentation
            and family.unit == tmpl.unit
            and signature == tmpl.signature
        ):
            return tmpl  # the steady state: same series, extras (normally none) as before
        if (
            tmpl is None
            or tmpl.suffix_size != suffix_size
            or family.documentation != tmpl.documentation
            or family.unit != tmpl.unit
            or list(map(_NAME_LABELS, signature)) != list(map(_NAME_LABELS, tmpl.signature))
        ):
            keys = list(map(_NAME_LABELS, signature))
            tmpl = self._rebuild(family, keys, suffix_size, key, tmpl)
        extras = list(map(_SIGNATURE_EXTRAS, signature))
        tmpl.plain = extras.count(_NO_EXTRAS) == len(extras)
        # Copies: a collector may mutate and re-yield the same labels dict, and a kept
        # reference would then always compare equal to it.
        tmpl.signature = [(s[0], dict(s[1]), *s[2:]) for s in signature]
        return tmpl

    def _encode_family(
        self, family: Any, tmpl: _Template, samples: list[Any], suffix: bytes, timestamp_ms: int
    ) -> tuple[bytes | bytearray, Sequence[int]] | None:
        self._metadata.append(tmpl.metadata)
        if not tmpl.names:
            return None
        if tmpl.plain:
            return self._pack(family, tmpl, list(map(_VALUE, samples)), suffix)
        return self._encode_general(family, tmpl, samples, list(map(_EXTRAS, samples)), timestamp_ms)

    def _fill(
        self, family: DirectFamily, tmpl: _Template, values: list[Any], suffix: bytes, timestamp_ms: int
    ) -> tuple[bytes | bytearray, Sequence[int]] | None:
        self._metadata.append(tmpl.metadata)
        return self._pack(family, tmpl, values, suffix) if tmpl.names else None

    def _fill_general(
        self, family: Any, tmpl: _Template, samples: list[Any], extras: list[Any], ts: int
    ) -> tuple[bytes | bytearray, Sequence[int]] | None:
        self._metadata.append(tmpl.metadata)
        return self._encode_general(family, tmpl, samples, extras, ts) if tmpl.names else None

    def _pack(
        self, family: Any, tmpl: _Template, values: list[Any], suffix: bytes
    ) -> tuple[bytes | bytearray, Sequence[int]] | None:
        """Encode a family whose samples carry nothing but values: all in C."""
        try:
            return pack(tmpl, values, suffix, copy=self._result.sink is None), tmpl.offsets
        except (struct.error, TypeError, OverflowError):
            sent = values if tmpl.pick is None else tmpl.pick(values)
            return self._encode_values_one_by_one(family, tmpl, sent, suffix)

    def _encode_values_one_by_one(
        self, family: Any, tmpl: _Template, values: list[Any], suffix: bytes
    ) -> tuple[bytes | bytearray, Sequence[int]] | None:
        """Find and drop the values ``struct`` refused, encoding the rest."""
        block = BlockBuilder()
        timestamp_ms = _decode_suffix(suffix)
        for blob, value in zip(_series_of(tmpl), values, strict=True):
            try:
                block.add(_wire.sample_entry(blob, float(value), timestamp_ms))
            except (TypeError, ValueError, OverflowError):
                problem = f"has a sample whose value {value!r} is not a number; dropped"
                self._drop(family.name, problem, DROP_INVALID_SAMPLE)
        return block.block()

    def _encode_general(
        self, family: Any, tmpl: _Template, samples: list[Any], extras: list[Any], timestamp_ms: int
    ) -> tuple[bytes | bytearray, Sequence[int]] | None:
        """Encode a family with per-sample timestamps, exemplars or native histograms."""
        block = BlockBuilder()
        indices = tmpl.keep if tmpl.keep is not None else range(len(samples))
        for blob, index in zip(_series_of(tmpl), indices, strict=True):
            sample = samples[index]
            own_ts, exemplar = extras[index][0], extras[index][1]
            native = extras[index][2] if len(extras[index]) > 2 else None
            try:
                ts = timestamp_ms if own_ts is None else to_millis(own_ts)
                if native is not None:
                    if exemplar is not None:
                        self._warn(
                            family.name,
                            "has an exemplar on a native histogram sample; only nh_exemplars are sent, "
                            "that exemplar is dropped",
                        )
                    encoded = [
                        self._exemplar_or_none(ex, family.name, timestamp_ms)
                        for ex in getattr(native, "nh_exemplars", None) or ()
                    ]
                    entry = _native.histogram_entry_v1(
                        blob, native, ts, gauge=family.type == "gaugehistogram", exemplars=encoded
                    )
                else:
                    extra = b""
                    if exemplar is not None:
                        extra = self._exemplar_or_none(exemplar, family.name, timestamp_ms)
                    entry = _wire.sample_entry(blob, float(sample[2]), ts, extra)
            except (TypeError, ValueError, OverflowError, AttributeError) as exc:
                problem = f"has a sample {sample[0]!r} that cannot be encoded ({exc}); dropped"
                self._drop(family.name, problem, DROP_INVALID_SAMPLE)
                continue
            block.add(entry)
        return block.block()

    def _exemplar_or_none(self, exemplar: Any, family_name: str, timestamp_ms: int) -> bytes:
        """Encode one exemplar, or log and return ``b""`` when it cannot be (the sample is kept)."""
        try:
            return exemplar_entry_v1(exemplar, timestamp_ms)
        except EXEMPLAR_ERRORS as exc:
            self._warn(
                family_name, f"has an exemplar that cannot be encoded ({exc}); the exemplar is dropped"
            )
            return b""

    def _build(self, family: Any, keys: Keys | Plan, suffix_size: int, key: Key) -> _Template:
        """Build a family's template: validate, escape and encode each series' labels once.

        A series an earlier family of this collection (in ``current``) already sends is
        dropped with a warning; one owned by a family not (yet) seen this collection is taken
        over, and that family's old template is invalidated so it rebuilds without it.
        """
        tmpl = _Template()
        tmpl.suffix_size = suffix_size
        tmpl.documentation = family.documentation
        tmpl.unit = family.unit
        skip_created = not self._created and family.type in _CREATED_TYPES
        created_name = family.name + "_created"
        # Like a scrape with PROMETHEUS_DISABLE_CREATED_SERIES set: no _created series, no _created metadata.
        names = sample_names(keys)
        admitted = self._admit(family, keys, key, tmpl, skip_created)
        renamed = None
        if self._relabel is not None:  # the metadata of the series sent, under their new names
            renamed = [(name, self._renamed.get(blob, name)) for _, name, _, blob in admitted]
            self._renamed.clear()
        tmpl.metadata = family_metadata(family, names - {created_name} if skip_created else names, renamed)
        keep = [index for index, _, _, _ in admitted]
        blobs: list[bytes] = [blob for _, _, _, blob in admitted]
        if len(keep) != len(keys):
            tmpl.keep = keep
            if keep:
                tmpl.pick = picker(keep)
        # The sample field's head: value tag, double, then timestamp tag and varint follow.
        sample_head = _sample_head(suffix_size)
        lay_out(tmpl, _tags.WRITE_TIMESERIES, zip(blobs, repeat(sample_head)), suffix_size)
        return tmpl

    def _series_id(self, family_name: str, name: str, sample_labels: dict[str, str]) -> bytes | None:
        """Identify a series by its encoded labels (see :meth:`label_blob`); note a relabelled one's name."""
        pairs = self.label_pairs(family_name, name, sample_labels)
        if pairs is None:
            return None
        blob = self.label_blob(pairs)
        if self._relabel is not None:
            self._renamed[blob] = next(value for label, value in pairs if label == b"__name__").decode()
        return blob

    def _sent_name(self, series: Hashable, name: str) -> str:
        return self._renamed.get(cast(bytes, series), name)

    def _series_of(self, tmpl: _Template) -> list[Hashable]:
        return cast("list[Hashable]", _series_of(tmpl))

    def _add_stale(
        self, result: EncodedCollection, gone: dict[Hashable, tuple[_Template, int]], timestamp_ms: int
    ) -> None:
        """Add a stale marker for each gone series, in the order of their encoded labels."""
        markers = BlockBuilder()
        for blob in sorted(cast("dict[bytes, Any]", gone)):
            markers.add(_wire.sample_entry(blob, _wire.STALE_NAN, timestamp_ms))
        self._append_stale(result, markers, markers.block())


def _series_of(tmpl: FamilyTemplate) -> list[bytes]:
    """Each series' encoded labels, cut from the blob: its body, up to the sample field."""
    ends, slots = tmpl.offsets, tmpl.slots
    return bodies(tmpl, lambda index: len(_sample_head(ends[index + 1] - slots[index] - 8)))


def _decode_suffix(suffix: bytes) -> int:
    """Return the (int64) timestamp encoded in a ``timestamp_suffix``."""
    value, _ = _wire.read_varint(suffix, 1)
    return value - (1 << 64) if value >= 1 << 63 else value
