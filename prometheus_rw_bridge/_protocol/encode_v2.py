"""Collector -> remote-write 2.0 ``io.prometheus.write.v2.Request`` bytes.  Pure: no I/O, no threads.

Series names, labels, validation, target labels, the metric filter, duplicate series and the
metadata types are exactly those of the 1.0 :class:`~.encode.Encoder`: both build on
:class:`~.families.FamilyEncoder` and share :func:`~.metadata.metadata_types`.  What 2.0 changes:

* every string travels once, in ``Request.symbols``; series and exemplars carry pairs of
  references (``labels_refs``) into that table, whose entry 0 is ``""``;
* each series carries its own ``Metadata`` (type, ``help_ref``, ``unit_ref``);
* the ``_created`` sample of a counter, histogram or summary becomes the
  ``start_timestamp`` of that family's samples with the same labels (``le`` and
  ``quantile`` aside) and is not sent as a series of its own;
* native histograms go into ``TimeSeries.histograms`` (field 3).

Speed comes from the same trick as in 1.0: a per-family template of encoded series, filled
with values in C (see ``template``), and direct reads of the standard metric types.  Symbols
are numbered series by series, pair by pair, in label order, however a template is built, so
the bytes do not depend on the path.  For the references inside a
template to stay valid from one collection to the next, the symbol table outlives a
collection: symbols are only ever appended.  Series that go away leave their symbols
behind, so once the table holds more than twice what was live after the last rebuild, it
is replaced and every template is rebuilt at the next collection.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Hashable, Sequence
from operator import itemgetter
from typing import Any, cast

from . import encode as _encode
from . import native as _native
from . import tags as _tags
from . import wire as _wire
from .assemble import Plan
from .direct import DirectFamily
from .encode import _CREATED_TYPES, _EXTRAS, _NAME_LABELS, _NO_EXTRAS, to_millis
from .encoded import BlockBuilder, EncodedCollectionV2, Symbols, packed_refs
from .families import _SLOW, FamilyEncoder
from .metadata import metadata_types, sample_names
from .samples import EXEMPLAR_ERRORS, exemplar_entry_v2, start_key, start_times
from .template import (
    DROP_INVALID_SAMPLE,
    Key,
    Keys,
    field_head,
    lay_out,
    pack,
    picker,
)
from .template_v2 import SampleHeads, heads
from .template_v2 import Template as _Template

__all__ = ["EncodedCollectionV2", "EncoderV2"]

_HISTOGRAM_START = _tags.V2_HISTOGRAM_START

# Families whose ``_created`` sample becomes the start timestamp of their other samples, and
# the label that tells their per-bucket/per-quantile series apart from the created one.
_START_TYPES = {"counter": None, "histogram": "le", "summary": "quantile"}

_COMPACT_FLOOR = 256
"""Never replace a symbol table smaller than this: rebuilding would cost more than it saves."""
_VALUE = itemgetter(2)
_Ident = bytes  # a series' identity: its sorted labels, encoded as 1.0 ``Label`` fields


class EncoderV2(FamilyEncoder[_Template, EncodedCollectionV2]):
    """Encode collections into remote-write 2.0 bodies, reusing work across collections.

    Same arguments and behaviour as :class:`~prometheus_rw_bridge._encode.Encoder`; only the
    wire format differs.  :meth:`encode` takes an internal lock, so sharing one is safe.

    Args:
        job: value of the ``job`` label added to every series that lacks one. ``None`` means the
            program's name; an empty string adds no label.
        instance: likewise for ``instance``; ``None`` means the host name.
        external_labels: further labels added to every series that lacks them.
        track_staleness: remember the series of each collection and emit a stale marker for
            every series that has gone since the previous one.
        metric_filter: called with each escaped series name; series for which it returns
            false are not sent.
        relabel: as for :class:`~prometheus_rw_bridge._protocol.encode.Encoder`: called once per
            series when its template is built; ``None`` drops it; collisions count as
            ``duplicate`` in the collection's ``dropped``.
        warned: as for :class:`~prometheus_rw_bridge._protocol.encode.Encoder`.

    Raises:
        ValueError: an external label name is invalid.
    """

    _logger = _encode.logger  # warnings keep the logger they always had

    def _setup(self) -> None:
        self._symbols = Symbols()
        self._pairs: dict[bytes, list[tuple[bytes, bytes]]] = {}  # from _series_id to _build
        self._compact_at = 0  # 0: set from the table's size after the next collection

    def _collection(self, timestamp_ms: int) -> EncodedCollectionV2:
        return EncodedCollectionV2(timestamp_ms, symbols=self._symbols)

    def _finish(self, result: EncodedCollectionV2, *, stale_only: bool) -> None:
        self._snapshot(result)
        if not stale_only:
            self._maybe_compact()

    def _snapshot(self, result: EncodedCollectionV2) -> None:
        """Give ``result`` the symbol table as it stands (entries are only ever appended)."""
        result.symbols_blob = bytes(self._symbols.blob)
        result.symbol_ends = self._symbols.ends[:]
        result.symbols = None  # the table goes on growing with later collections

    def _maybe_compact(self) -> None:
        """Start a fresh symbol table once dead symbols could make up half of it."""
        size = len(self._symbols)
        if self._compact_at == 0:  # the first collection on a fresh table has just rebuilt it
            self._compact_at = max(_COMPACT_FLOOR, 2 * size)
        elif size > self._compact_at:
            self._symbols = Symbols()
            self._compact_at = 0

    def _template_for(
        self, family: Any, samples: list[Any], tmpl: _Template | None, suffix_size: int, key: Key
    ) -> _Template:
        keys = list(map(_NAME_LABELS, samples))
        if (
            tmpl is None
            or tmpl.symbols is not self._symbols
            or tmpl.suffix_size != suffix_size
            or keys != tmpl.keys
            or family.documentation != tmpl.documentation
            or family.unit != tmpl.unit
            or (tmpl.created_pick is not None and tmpl.created_pick(samples) != tmpl.created)
        ):
            tmpl = self._rebuild(family, keys, suffix_size, key, tmpl)
            # Copies: a collector may mutate and re-yield the same labels dict, and a kept
            # reference would then always compare equal to it.
            tmpl.keys = [(k[0], dict(k[1])) for k in keys]
        return tmpl

    def _encode_family(
        self, family: Any, tmpl: _Template, samples: list[Any], suffix: bytes, timestamp_ms: int
    ) -> tuple[bytes | bytearray, Sequence[int], Sequence[int]] | None:
        if not tmpl.names:
            return None
        extras = list(map(_EXTRAS, samples))
        block = None
        if tmpl.packer is not None and extras.count(_NO_EXTRAS) == len(extras):
            block = self._pack(tmpl, list(map(_VALUE, samples)), suffix)
        if block is None:
            block = self._encode_general(family, tmpl, samples, extras, timestamp_ms)
        return block

    def _fits(self, tmpl: _Template, values: list[Any]) -> bool:
        return tmpl.symbols is self._symbols and (
            tmpl.created_values is None or tmpl.created_values(values) == tmpl.created
        )

    def _fill(
        self, family: DirectFamily, tmpl: _Template, values: list[Any], suffix: bytes, timestamp_ms: int
    ) -> Any:
        if not tmpl.names:
            return None
        block = None if tmpl.packer is None else self._pack(tmpl, values, suffix)
        return _SLOW if block is None else block

    def _fill_general(
        self, family: Any, tmpl: _Template, samples: list[Any], extras: list[Any], ts: int
    ) -> tuple[bytes | bytearray, Sequence[int], Sequence[int]] | None:
        return self._encode_general(family, tmpl, samples, extras, ts) if tmpl.names else None

    def _pack(
        self, tmpl: _Template, values: list[Any], suffix: bytes
    ) -> tuple[bytes | bytearray, Sequence[int], Sequence[int]] | None:
        """Encode a family whose samples carry nothing but values: all in C.  ``None`` if a value is bad."""
        try:
            return pack(tmpl, values, suffix, copy=self._result.sink is None), tmpl.offsets, tmpl.max_refs
        except (struct.error, TypeError, OverflowError):
            return None  # the general path finds and drops the values struct refused

    def _encode_general(
        self, family: Any, tmpl: _Template, samples: list[Any], extras: list[Any], timestamp_ms: int
    ) -> tuple[bytes | bytearray, Sequence[int], Sequence[int]] | None:
        """Encode a family sample by sample: own timestamps, exemplars, native histograms, bad values."""
        block = BlockBuilder()
        for head, start, top, index in zip(heads(tmpl), tmpl.starts, tmpl.max_refs, tmpl.keep, strict=True):
            sample = samples[index]
            try:
                body, top = self._series_body(family, sample, extras[index], head, start, top, timestamp_ms)
            except (TypeError, ValueError, OverflowError, AttributeError) as exc:
                problem = f"has a sample {sample[0]!r} that cannot be encoded ({exc}); dropped"
                self._drop(family.name, problem, DROP_INVALID_SAMPLE)
                continue
            block.add(_wire.length_delimited(_tags.V2_REQUEST_TIMESERIES, b"".join(body)), top)
        return block.block_v2()

    def _series_body(
        self, family: Any, sample: Any, extras: Any, head: bytes, start: int, top: int, timestamp_ms: int
    ) -> tuple[list[bytes], int]:
        """Return one series' fields (sample or native histogram, exemplars) and its highest reference."""
        own_ts, exemplar = extras[0], extras[1]
        native = extras[2] if len(extras) > 2 else None
        ts = timestamp_ms if own_ts is None else to_millis(own_ts)
        body = [head]
        if native is not None:
            hist = _native.histogram_body(native, ts, gauge=family.type == "gaugehistogram")
            if start:
                hist += _HISTOGRAM_START + _wire.varint(start)
            body.append(_wire.length_delimited(_tags.V2_TS_HISTOGRAM, hist))
            if exemplar is not None:
                self._warn(
                    family.name,
                    "has an exemplar on a native histogram sample; only nh_exemplars are sent, "
                    "that exemplar is dropped",
                )
            exemplars = getattr(native, "nh_exemplars", None) or ()
        else:
            body.append(_wire.v2_sample_field(float(sample[2]), ts, start))
            exemplars = () if exemplar is None else (exemplar,)
        for ex in exemplars:
            try:
                entry, ex_top = exemplar_entry_v2(ex, timestamp_ms, self._symbols.ref)
            except EXEMPLAR_ERRORS as exc:
                self._warn(
                    family.name, f"has an exemplar that cannot be encoded ({exc}); the exemplar is dropped"
                )
                continue
            body.append(entry)
            top = max(top, ex_top)
        return body, top

    def _build(self, family: Any, keys: Keys | Plan, suffix_size: int, key: Key) -> _Template:
        """Build a family's template: symbolise each series :meth:`_admit` lets through once."""
        symbols = self._symbols
        tmpl = _Template(symbols)
        tmpl.suffix_size = suffix_size
        tmpl.documentation = family.documentation
        tmpl.unit = family.unit
        ftype = family.type
        planned = isinstance(keys, Plan)
        values = family.values() if planned else list(map(_VALUE, family.samples))
        types = metadata_types(family, sample_names(keys))
        type_of = {name: _tags.METRIC_TYPES.get(word, 0) for name, word in types}
        main_type = type_of[types[0][0]]
        help_ref = symbols.ref(family.documentation.encode("utf-8"))
        unit_ref = symbols.ref(family.unit.encode("utf-8"))
        metadata_fields: dict[int, bytes] = {}
        drop_created = ftype in _CREATED_TYPES and (not self._created or ftype in _START_TYPES)
        with_starts = self._created and ftype in _START_TYPES
        starts = self._start_times(family, keys, values, tmpl) if with_starts else {}
        admitted = self._admit(family, keys, key, tmpl, drop_created)
        heads, tops, start_keys = self._labels_refs(keys, admitted, _START_TYPES.get(ftype))
        mtypes = [type_of.get(name, main_type) for _, name, _, _ in admitted]
        for mtype in set(mtypes):
            metadata_fields[mtype] = _wire.v2_metadata_field(mtype, help_ref, unit_ref)
        tmpl.keep = array("q", [index for index, _, _, _ in admitted])
        tmpl.heads = [head + metadata_fields[mtype] for head, mtype in zip(heads, mtypes, strict=True)]
        tmpl.starts = array("q", [starts.get(k, 0) for k in start_keys] if starts else [0] * len(admitted))
        floor = max(help_ref, unit_ref)
        tmpl.max_refs = array("q", [top if top > floor else floor for top in tops])
        tmpl.types = array("B", mtypes)
        self._pairs = {}
        if tmpl.keep and (planned or all(_EXTRAS(s) == _NO_EXTRAS for s in family.samples)):
            self._lay_out(tmpl, len(keys), suffix_size)  # else the general path encodes it
        return tmpl

    def _labels_refs(
        self, keys: Keys | Plan, admitted: list[Any], per_series: str | None
    ) -> tuple[list[bytes], list[int], list[Any]]:
        """Each admitted series' ``labels_refs`` field, highest reference and key to its start time.

        Symbols are numbered series by series, pair by pair, in label order, both ways.
        """
        if isinstance(keys, Plan):  # assembled per child; the key to the start time is the child
            indices = [index for index, _, _, _ in admitted]
            field_heads: dict[int, bytes] = {}
            heads = []
            for payload in keys.assemble(self._symbols.pair_refs, indices):
                head = field_heads.get(len(payload))
                if head is None:
                    head = field_heads[len(payload)] = field_head(_tags.V2_TS_LABELS_REFS, len(payload))
                heads.append(head + payload)
            tops = keys.largest(self._symbols.pair_top, indices)
            return heads, tops, [keys.samples[index][0] for index in indices]
        heads, tops, start_keys = [], [], []
        for _, _, sample_labels, ident in admitted:
            refs = [self._symbols.ref(s) for pair in self._pairs.pop(ident) for s in pair]
            heads.append(packed_refs(_tags.V2_TS_LABELS_REFS, refs))
            tops.append(max(refs))
            start_keys.append(start_key(sample_labels, per_series))
        return heads, tops, start_keys

    def _lay_out(self, tmpl: _Template, samples: int, suffix_size: int) -> None:
        """Write ``tmpl``'s blob, which :func:`pack` fills with a collection's values."""
        if len(tmpl.keep) != samples:
            tmpl.pick = picker(list(tmpl.keep))
        sample_heads = SampleHeads(suffix_size)  # by start timestamp: a child's series share theirs
        entries = zip(tmpl.heads, map(sample_heads.__getitem__, tmpl.starts), strict=True)
        lay_out(tmpl, _tags.V2_REQUEST_TIMESERIES, entries, suffix_size)
        tmpl.heads = []  # the blob holds them now

    def _series_id(self, family_name: str, name: str, sample_labels: dict[str, str]) -> _Ident | None:
        """Identify a series by its encoded labels; keep its pairs for the build that asked."""
        pairs = self.label_pairs(family_name, name, sample_labels)
        if pairs is None:
            return None
        ident = self.label_blob(pairs)
        self._pairs[ident] = pairs
        return ident

    def _start_times(
        self, family: Any, keys: Keys | Plan, values: list[Any], tmpl: _Template
    ) -> dict[Any, int]:
        """Map each ``_created`` sample's labels (its child, when planned) to its value in ms.

        Notes those samples in ``tmpl``, so a changed start time rebuilds the template.
        """
        names = keys.names if isinstance(keys, Plan) else [k[0] for k in keys]
        indices = [i for i, sample_name in enumerate(names) if sample_name == family.name + "_created"]
        if indices:
            tmpl.created_pick = picker(indices, itemgetter(2))
            tmpl.created_values = picker(indices)
            tmpl.created = tmpl.created_values(values)

        def where(index: int) -> Any:
            return keys.samples[index][0] if isinstance(keys, Plan) else start_key(keys[index][1], None)

        return start_times(family.name, indices, values, where, self._warn)

    def _sent_name(self, series: Hashable, name: str) -> str:
        pairs = self._pairs[cast(bytes, series)]
        return next(value for label, value in pairs if label == b"__name__").decode()

    def _series_of(self, tmpl: _Template) -> list[Hashable]:
        """Each series' labels as 1.0 ``Label`` fields, read back through the template's symbol table."""
        symbol = tmpl.symbols.symbol
        label_blob = self.label_blob
        out: list[Hashable] = []
        for head in heads(tmpl):
            refs = _wire.first_packed_varints(head)  # labels_refs comes first
            strings = [symbol(ref) for ref in refs]
            out.append(label_blob(list(zip(strings[0::2], strings[1::2], strict=True))))
        return out

    def _add_stale(
        self, result: EncodedCollectionV2, gone: dict[Hashable, tuple[_Template, int]], timestamp_ms: int
    ) -> None:
        """Encode a stale marker for each gone series, in label order, symbolised in the current table."""
        symbols = self._symbols
        markers = BlockBuilder()
        stale = _wire.v2_sample_field(_wire.STALE_NAN, timestamp_ms, 0)
        labelled = cast("dict[bytes, tuple[_Template, int]]", gone)
        in_label_order = sorted(labelled.items(), key=lambda item: _wire.label_pairs(item[0]))
        for ident, (tmpl, index) in in_label_order:
            refs = [symbols.ref(s) for pair in _wire.label_pairs(ident) for s in pair]
            help_ref = symbols.ref(tmpl.documentation.encode("utf-8"))
            unit_ref = symbols.ref(tmpl.unit.encode("utf-8"))
            metadata = _wire.v2_metadata_field(tmpl.types[index], help_ref, unit_ref)
            body = packed_refs(_tags.V2_TS_LABELS_REFS, refs) + metadata + stale
            top = max(max(refs), help_ref, unit_ref)
            markers.add(_wire.length_delimited(_tags.V2_REQUEST_TIMESERIES, body), top)
        self._append_stale(result, markers, markers.block_v2())
