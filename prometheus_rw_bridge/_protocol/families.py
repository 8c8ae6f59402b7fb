"""What the 1.0 and 2.0 encoders share: target labels, the per-family loop and staleness.

Both encoders keep one template per metric family and reuse it while the family yields the
same series.  :class:`FamilyEncoder` owns everything around those templates that does not
depend on the wire format: the family key (with a counter for families a collector yields
twice), which family sends a series two of them yield, rebuilding a template that lost or
gained series, forgetting families that went away and handing the templates they replaced to
staleness.  A subclass says only how a template is checked, built and filled with values.

Families come in two kinds: collected ones (``Metric`` objects, from ``collect()``), whose
templates are checked against their samples, and directly read ones
(:class:`~.direct.DirectFamily`), whose templates are checked against the snapshot's shape and
built per child (:mod:`.assemble`); both give the same bytes for the same registry state.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, ClassVar, Generic, TypeVar

from . import wire as _wire
from .admission import SeriesAdmission
from .assemble import Plan
from .direct import DirectFamily
from .encoded import BlockBuilder, EncodedBase
from .labels import SeriesLabels
from .names import default_instance, default_job, escape_label_name
from .ownership import Ownership, lost_owner
from .template import (
    DROP_ENCODING_ERROR,
    FamilyTemplate,
    Key,
    Keys,
    invalidate,
)

__all__ = ["ONE_SHOT_WARNINGS", "FamilyEncoder", "created_series_enabled"]

ONE_SHOT_WARNINGS: set[tuple[str, str]] = set()
"""The problems already logged by the encoders of one-shot calls (``generate_write_request``,
``push_to_remote_write``), so that a process calling them again and again warns once."""


def created_series_enabled() -> bool:
    """Mirror prometheus_client's ``PROMETHEUS_DISABLE_CREATED_SERIES`` switch."""
    return os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in ("true", "1", "t")


T = TypeVar("T", bound=FamilyTemplate)
C = TypeVar("C", bound=EncodedBase)  # the encoded collection an encoder returns

_NAME_LABELS = itemgetter(0, 1)
_SLOW: Any = object()  # a block no family encodes to: "take the collected families' path"


class FamilyEncoder(SeriesAdmission, SeriesLabels, Generic[T, C]):
    """Base of the 1.0 and 2.0 encoders; see :class:`~prometheus_rw_bridge._encode.Encoder` for the arguments.

    A series' identity (:meth:`_series_id`) is whatever the subclass encodes it from: equal
    identities are the same series on the wire.

    Samples that cannot be sent are left out through :meth:`_drop`: logged once per family and
    problem (``warned`` holds what was logged; encoders sharing one warn once between them) and
    counted by reason (``template.DROP_*``) in the collection's ``dropped``.
    """

    _logger: ClassVar[logging.Logger]

    def __init__(
        self,
        *,
        job: str | None = None,
        instance: str | None = None,
        external_labels: Mapping[str, str] | None = None,
        track_staleness: bool = False,
        metric_filter: Callable[[str], bool] | None = None,
        relabel: Callable[[dict[str, str]], dict[str, str] | None] | None = None,
        warned: set[tuple[str, str]] | None = None,
    ) -> None:
        target: dict[str, str] = dict(external_labels or {})
        for name in target:
            if escape_label_name(name) != name or name == "__name__":
                raise ValueError(
                    f"external label name {name!r} is not a valid label name "
                    "(allowed: [a-zA-Z_][a-zA-Z0-9_]*, not __name__)"
                )
        # An explicit argument wins; then a job/instance given among the external labels; then the default.
        if job is not None or "job" not in target:
            target["job"] = default_job() if job is None else job
        if instance is not None or "instance" not in target:
            target["instance"] = default_instance() if instance is None else instance
        # Empty values mean "no such label", as the spec says for every label.
        self._target = {k: v for k, v in target.items() if v != ""}
        self._track_staleness = track_staleness
        self._filter = metric_filter
        self._relabel = relabel
        self._relabelled_away = 0  # series the relabel callable dropped in the build under way
        self._created = created_series_enabled()
        self._label_fields: dict[tuple[bytes, bytes], bytes] = {}
        self._templates: dict[Key, T] = {}
        self._lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set() if warned is None else warned
        # Which family sends each series, so that a series two families yield (``a.b`` and
        # ``a_b`` both escape to ``a_b``) is sent once.  Only touched when templates are built.
        self._ownership = self._new_ownership()
        # Per collection: the templates so far, whether any was built, the ones builds replaced,
        # and the collection being encoded (for what it alone drops).
        self._current: dict[Key, T] = {}
        self._built = False
        self._replaced: list[T] = []
        self._result: Any = None
        self._setup()

    @property
    def target_labels(self) -> dict[str, str]:
        """The labels (``job``, ``instance``, external labels) added to series that lack them."""
        return dict(self._target)

    def encode(self, families: Iterable[Any], timestamp_ms: int, *, stream: Any = None) -> C:
        """Encode ``families`` (from ``Collector.collect()`` or ``registry.read()``) at ``timestamp_ms``.

        Samples with a timestamp of their own keep it; all others get ``timestamp_ms``.  With a
        ``stream`` (:class:`~.batching.RequestStream`), each block goes to it as soon as it is
        encoded, and the collection's ``blocks`` stay empty.  Takes an internal lock, so sharing
        one encoder between threads is safe.
        """
        with self._lock:
            result = self._begin(timestamp_ms, stream)
            self._encode_families(families, timestamp_ms, _wire.timestamp_suffix(timestamp_ms), result)
            self._finish(result, stale_only=False)
            return result

    def stale_all(self, timestamp_ms: int, *, stream: Any = None) -> C:
        """Return a stale marker at ``timestamp_ms`` for every series last sent, and forget them all.

        ``stream``: as for :meth:`encode`.
        """
        with self._lock:
            result = self._begin(timestamp_ms, stream)
            old = list(self._templates.values())
            self._templates = {}
            self._ownership = self._new_ownership()
            self._stale_since(result, old, {}, timestamp_ms)
            self._finish(result, stale_only=True)
            return result

    def _begin(self, timestamp_ms: int, stream: Any) -> C:
        """A new collection, whose blocks go to ``stream`` when there is one."""
        result = self._collection(timestamp_ms)
        if stream is not None:
            result.sink = stream.bind(result)
        return result

    @property
    def series_kept(self) -> int:
        """How many series this encoder keeps encoded between collections."""
        with self._lock:
            return sum(len(tmpl.names) for tmpl in self._templates.values())

    def reset(self) -> bool:
        """Forget every series and template, releasing their memory; the next encode starts afresh.

        For a bridge that no longer needs this encoder's protocol (``auto`` settled on the other
        one).  No stale markers are sent for what this encoder had sent before.  Returns whether
        there was anything to forget.
        """
        with self._lock:
            if not (self._templates or self._ownership):
                return False
            self._templates = {}
            self._ownership = self._new_ownership()
            self._setup()
            return True

    # --- what a subclass provides ---------------------------------------------------------

    def _setup(self) -> None:
        """Set up the subclass's own state; called at the end of ``__init__``."""

    def _collection(self, timestamp_ms: int) -> C:
        """Return a new, empty encoded collection."""
        raise NotImplementedError

    def _finish(self, result: C, *, stale_only: bool) -> None:
        """Complete ``result`` once every family (or, for ``stale_all``, every marker) is in."""

    def _template_for(self, family: Any, samples: list[Any], tmpl: T | None, suffix_size: int, key: Key) -> T:
        """Return ``tmpl`` if it still fits ``family``, else a new one from :meth:`_rebuild`."""
        raise NotImplementedError

    def _build(self, family: Any, keys: Keys | Plan, suffix_size: int, key: Key) -> T:
        """Build a family's template from its samples' ``(name, labels)``; see :meth:`_admit`."""
        raise NotImplementedError

    def _encode_family(
        self, family: Any, tmpl: T, samples: list[Any], suffix: bytes, timestamp_ms: int
    ) -> Any:
        """Encode one family's samples as a block (its second item: entry offsets), or ``None``."""
        raise NotImplementedError

    def _series_of(self, tmpl: T) -> list[Hashable]:
        """The identities of the series ``tmpl`` sends, in order, read back from it."""
        raise NotImplementedError

    def _add_stale(self, result: Any, gone: dict[Hashable, tuple[T, int]], timestamp_ms: int) -> None:
        """Add a stale marker for each ``gone`` series: identity -> (old template, index in it)."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------

    def _encode_families(
        self, families: Iterable[Any], timestamp_ms: int, suffix: bytes, result: Any
    ) -> None:
        """Encode ``families`` into ``result``'s blocks; then forget gone families and add stale markers."""
        suffix_size = len(suffix)
        previous = self._templates
        current: dict[Key, T] = {}
        self._current = current
        self._built = False
        replaced: list[T] = []
        self._replaced = replaced
        self._result = result
        ownership = self._ownership
        owners = ownership.owners
        add_block = result.add_block
        template_for = self._template_for
        encode_family = self._encode_family
        for family in families:
            samples: Any = ()
            try:
                name, mtype = family.name, family.type
                key = (name, mtype, 0)
                while key in current:  # a collector yielded the same family twice
                    key = (name, mtype, key[2] + 1)
                tmpl = previous.get(key)
                if tmpl is not None and tmpl.shadowed and lost_owner(tmpl.shadowed, owners, current):
                    invalidate(tmpl)  # a series it left to another family is that family's no more
                block = _SLOW
                if type(family) is DirectFamily:
                    tmpl, block = self._direct(family, tmpl, suffix, suffix_size, key, timestamp_ms)
                if tmpl is not None and block is not _SLOW:
                    current[key] = tmpl
                else:
                    samples = family.samples
                    tmpl = current[key] = template_for(family, samples, tmpl, suffix_size, key)
                    block = encode_family(family, tmpl, samples, suffix, timestamp_ms)
            except Exception as exc:
                count = len(samples) if isinstance(samples, Sequence) else 0
                fname = getattr(family, "name", repr(family))
                self._drop(fname, f"cannot be encoded ({exc!r})", DROP_ENCODING_ERROR, samples=count, exc=exc)
                continue
            if block is not None:
                add_block(block)
                result.samples += len(block[1]) - 1
            if tmpl.dropped:  # what the template drops, it drops at every collection
                result.add_dropped(tmpl.dropped)
        self._templates = current
        if self._built or len(current) != len(previous):
            # Without a build every current key was a previous one: equal sizes, same keys.
            for key, tmpl in previous.items():
                if key not in current:
                    ownership.release(key, tmpl, None)
        if self._track_staleness:
            gone_families = [tmpl for key, tmpl in previous.items() if key not in current]
            if replaced or gone_families:
                self._stale_since(result, replaced + gone_families, current, timestamp_ms)
        self._current = {}
        self._replaced = []
        self._result = None

    def _direct(
        self, family: DirectFamily, tmpl: T | None, suffix: bytes, suffix_size: int, key: Key, ts: int
    ) -> tuple[T | None, Any]:
        """Encode a directly read family: fill its template while the shape holds, else rebuild it.

        Returns the template and the block, or ``_SLOW`` for the block when the family must take
        the path of collected families (2.0: a value ``struct`` refused).  Families with
        exemplars are encoded sample by sample, as collected ones are, but from the read values.
        """
        exemplars = family.exemplars()
        if (
            tmpl is None
            or tmpl.suffix_size != suffix_size
            or not family.same_shape(tmpl.shape)
            or not self._fits(tmpl, family.values())
        ):
            # Build from this very snapshot, so template and shape agree: per child where a
            # plan can say every series' labels, else from the samples collect() would give.
            source: Keys | Plan | None = None if self._relabel else family.plan(self._target)
            if source is None:
                source = list(map(_NAME_LABELS, family.samples))
            tmpl = self._rebuild(family, source, suffix_size, key, tmpl)
            tmpl.shape = family.shape
        if exemplars is None:
            return tmpl, self._fill(family, tmpl, family.values(), suffix, ts)
        # Sample by sample, as a collected family with exemplars goes, without collect()'s objects.
        samples = list(zip(repeat(family.name), repeat(None), family.values()))
        return tmpl, self._fill_general(family, tmpl, samples, [(None, ex) for ex in exemplars], ts)

    def _fill_general(self, family: Any, tmpl: T, samples: list[Any], extras: list[Any], ts: int) -> Any:
        """Encode a directly read family sample by sample (exemplars): ``(name, _, value)`` samples."""
        raise NotImplementedError

    def _fits(self, tmpl: T, values: list[Any]) -> bool:
        """Tell whether a template of the same shape still fits these values (2.0: start times)."""
        return True

    def _fill(self, family: DirectFamily, tmpl: T, values: list[Any], suffix: bytes, ts: int) -> Any:
        """Encode a directly read family whose template fits, from its values alone; or ``_SLOW``."""
        raise NotImplementedError

    def _rebuild(self, family: Any, keys: Keys | Plan, suffix_size: int, key: Key, old: T | None) -> T:
        """Build a new template for a family, releasing the series its old one no longer sends."""
        tmpl = self._build(family, keys, suffix_size, key)
        self._built = True
        if old is not None:
            self._replaced.append(old)
            self._ownership.release(key, old, tmpl)
        return tmpl

    def _new_ownership(self) -> Ownership:
        return Ownership(self._series_of, self._template_of)

    def _template_of(self, key: Key) -> T | None:
        """The template family ``key`` has now: this collection's, else the last one."""
        tmpl = self._current.get(key)
        return tmpl if tmpl is not None else self._templates.get(key)

    def _stale_since(self, result: Any, old: list[T], current: dict[Key, T], timestamp_ms: int) -> None:
        """Add stale markers for series of ``old`` templates that no current template still sends.

        Only a template that sends the same name can still send a series, so only those are
        read back.
        """
        gone: dict[Hashable, tuple[T, int]] = {}
        names: set[str] = set()
        for tmpl in old:
            for index, series in enumerate(self._series_of(tmpl)):
                gone[series] = (tmpl, index)
            names.update(tmpl.names.distinct())
        if not gone:
            return
        for key in {key for name in names for key in self._ownership.senders(name)}:
            still = current.get(key)
            if still is not None:
                for series in self._series_of(still):
                    gone.pop(series, None)
                if not gone:
                    return
        self._add_stale(result, gone, timestamp_ms)

    @staticmethod
    def _append_stale(result: Any, markers: BlockBuilder, block: Any) -> None:
        """Add a block of stale markers to ``result`` and count them."""
        if block is not None:
            result.add_block(block)
            result.stale_markers += len(markers)
            result.samples += len(markers)
