"""Which of a family's samples become series it sends: the admission both encoders share.

:class:`SeriesAdmission` is the part of :class:`~.families.FamilyEncoder` that, while a
template is built, decides each sample's fate: a ``_created`` sample left out, a name the metric
filter refuses, an empty name, labels that cannot be sent, a repeat within the family, a series
an earlier family of the collection already sends (see :mod:`.ownership`).  What it admits, the
encoder encodes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from .assemble import Plan
from .labels import SampleLabels
from .names import escape_metric_name
from .ownership import Ownership
from .template import (
    DROP_EMPTY_NAME,
    DROP_INVALID_LABELS,
    DROP_RELABEL,
    Admitted,
    FamilyTemplate,
    Key,
    Keys,
    count_drop,
    invalidate,
)

__all__ = ["SeriesAdmission"]

_EMPTY_NAME = (
    "yields a sample with an empty name; remote write needs a non-empty __name__, so that series is dropped"
)


class SeriesAdmission:
    """Series admission, shared by the encoders; the encoder's ``__init__`` sets the attributes below."""

    _ownership: Ownership
    _current: dict[Key, Any]
    _templates: dict[Key, Any]
    _filter: Callable[[str], bool] | None
    _relabel: Any
    _relabelled_away: int
    label_field: Callable[[tuple[bytes, bytes]], bytes]
    _drop: Callable[..., None]
    _drop_repeat: Callable[[str, str, FamilyTemplate, str], None]

    def _series_id(self, family_name: str, name: str, sample_labels: dict[str, str]) -> Hashable | None:
        """Return a series' identity, or ``None`` (logged) if it cannot be sent."""
        raise NotImplementedError

    def _sent_name(self, series: Hashable, name: str) -> str:
        """The name a series whose escaped sample name is ``name`` is sent under (relabelling renames)."""
        return name

    def _admit(
        self, family: Any, keys: Keys | Plan, key: Key, tmpl: FamilyTemplate, drop_created: bool
    ) -> list[Admitted]:
        """Return the series of a family being built that it sends, and record it as their owner.

        From a :class:`Plan` the series' identities are assembled per child (and an admitted
        series' third item is its sample index, not its labels).

        Drops ``_created`` samples when ``drop_created``, series the metric filter refuses,
        unsendable ones (an empty name, invalid labels) and repeats, counting the last two in
        ``tmpl.dropped``.  A series an earlier family of this collection already sends is
        dropped with a warning and noted in ``tmpl.shadowed``; one owned by a family not (yet)
        seen this collection is taken over, and that family's old template is invalidated so
        it rebuilds without it.
        """
        fname = family.name
        created_name = fname + "_created"
        admitted: list[Admitted] = []
        seen: set[Hashable] = set()
        ownership = self._ownership
        shared: dict[str, bool] = {}  # per name sent: whether another family sends it too
        planned = keys if isinstance(keys, Plan) else None
        generic: Keys = [] if isinstance(keys, Plan) else keys
        names = planned.names if planned is not None else [k[0] for k in generic]
        ids = planned.assemble(self.label_field) if planned is not None else None
        # A family has few sample names: escape (and filter) each once per build.
        sent = {n: escape_metric_name(n) for n in set(names) if not (drop_created and n == created_name)}
        if self._filter is not None:  # an empty name is no name to filter: it is dropped below
            sent = {n: name for n, name in sent.items() if not name or self._filter(name)}
        for index, sample_name in enumerate(names):
            name = sent.get(sample_name)
            if not name:
                if name == "":  # both specs: label values MUST NOT be empty, and __name__ is a label
                    self._drop(fname, _EMPTY_NAME, DROP_EMPTY_NAME, tmpl)
                continue
            if planned is not None and ids is not None:
                series: Hashable | None = ids[index]
                sample_labels: Any = SampleLabels(planned, index)
            else:
                sample_labels = generic[index][1]
                self._relabelled_away = 0
                series = self._series_id(fname, name, sample_labels)
                if series is None:  # logged by label_pairs, unless the relabel callable dropped it
                    count_drop(tmpl, DROP_RELABEL if self._relabelled_away else DROP_INVALID_LABELS)
                    continue
            if series in seen:
                problem = f"yields the series {sample_name}{sample_labels} twice; the repeat is dropped"
                self._drop_repeat(fname, problem, tmpl, f"{sample_name}{sample_labels}")
                continue
            sent_name = name if self._relabel is None else self._sent_name(series, name)
            one_by_one = shared.get(sent_name)
            if one_by_one is None:
                one_by_one = shared[sent_name] = ownership.others(sent_name, key)
            if one_by_one and self._sent_elsewhere(
                series, key, tmpl, fname, f"{name}{sample_labels}", f"{sample_name}{sample_labels}"
            ):
                continue
            seen.add(series)
            tmpl.names.append(sent_name)
            admitted.append((index, name, index if planned is not None else sample_labels, series))
        ownership.claim(key, tmpl.names.distinct())
        return admitted

    def _sent_elsewhere(
        self, series: Hashable, key: Key, tmpl: FamilyTemplate, fname: str, shown: str, example: str
    ) -> bool:
        """For a series of a name other families send too: tell whether an earlier family sends it.

        That family keeps it; this one drops it (noted in ``tmpl.shadowed``).  A series owned by
        a family not (yet) seen this collection is taken over, and that family's template is
        invalidated so it rebuilds without it.
        """
        owners = self._ownership.owners
        owner = owners.get(series)
        if owner is not None and owner != key:
            if owner in self._current:
                problem = (
                    f"yields the series {shown} that family {owner[0]!r} already sends; the repeat is dropped"
                )
                self._drop_repeat(fname, problem, tmpl, example)
                tmpl.shadowed.append(series)
                return True
            invalidate(self._templates.get(owner))
        owners[series] = key
        return False
