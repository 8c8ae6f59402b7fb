"""A series' labels: validated, escaped, target labels added, relabelled, sorted and encoded.

:class:`SeriesLabels` is the part of every encoder that turns a sample's name and labels into
the pairs a series is sent with (:meth:`~SeriesLabels.label_pairs`) and those into the encoded
``Label`` fields that identify the series in both protocols (:meth:`~SeriesLabels.label_blob`);
and the one way an encoder leaves a sample out (:meth:`~SeriesLabels._drop`: logged once,
counted by reason in the collection's ``dropped``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from . import wire as _wire
from .assemble import Plan
from .names import escape_label_name
from .template import DROP_DUPLICATE, FamilyTemplate, count_drop

__all__ = ["SampleLabels", "SeriesLabels"]

# Encoded Label fields kept by an encoder for building templates; emptied when this full, so
# label churn cannot grow it without bound.
_LABEL_CACHE_SIZE = 16_384
# How a series that relabelling made the same as one already sent is logged: once per family.
_RELABELLED_REPEAT = (
    "has series that, relabelled, are the same as a series already sent (Prometheus keeps the first); "
    "each repeat is dropped and counted as 'duplicate'"
)


class SeriesLabels:
    """Label handling shared by the encoders, and how they log and count what they leave out.

    The encoder's ``__init__`` sets the attributes below.
    """

    _logger: ClassVar[logging.Logger]
    _target: dict[str, str]
    _relabel: Callable[[dict[str, str]], dict[str, str] | None] | None
    _relabelled_away: int
    _label_fields: dict[tuple[bytes, bytes], bytes]
    _warned: set[tuple[str, str]]
    _result: Any  # the collection being encoded

    def label_pairs(
        self, family_name: str, name: str, sample_labels: dict[str, str]
    ) -> list[tuple[bytes, bytes]] | None:
        """Return a series' labels as sorted UTF-8 ``(name, value)`` pairs; ``None`` (logged) if unsendable.

        Escapes label names, drops empty values, adds the target labels the series lacks and
        sets ``__name__`` to ``name``.  Shared by the 1.0 and 2.0 encoders.
        """
        labels: dict[str, str] = {}
        for raw_name, raw_value in sample_labels.items():
            if not isinstance(raw_name, str) or not raw_name:
                self._warn(family_name, "has a label with an empty name; that label is dropped")
                continue
            if raw_name == "__name__":
                self._warn(family_name, "sets __name__ as a label; the sample name is used instead")
                continue
            value = raw_value if isinstance(raw_value, str) else str(raw_value)
            if value == "":
                continue
            label_name = escape_label_name(raw_name)
            if label_name in labels:
                self._warn(
                    family_name,
                    f"has two labels that are both {label_name!r} once escaped; the series {name} is dropped",
                )
                return None
            labels[label_name] = value
        for label_name, value in self._target.items():
            labels.setdefault(label_name, value)
        labels["__name__"] = name
        if self._relabel is not None:
            relabelled = self._relabel(labels)
            if relabelled is None:
                self._relabelled_away += 1
                return None
            labels = relabelled
        try:
            return sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in labels.items())
        except UnicodeEncodeError:
            self._warn(
                family_name, f"has a label value that is not valid UTF-8; the series {name} is dropped"
            )
            return None

    def label_field(self, pair: tuple[bytes, bytes]) -> bytes:
        """Return one label pair encoded as a 1.0 ``Label`` field (cached)."""
        field = self._label_fields.get(pair)
        if field is None:
            if len(self._label_fields) >= _LABEL_CACHE_SIZE:
                self._label_fields.clear()
            field = self._label_fields[pair] = _wire.labels([pair])
        return field

    def label_blob(self, pairs: list[tuple[bytes, bytes]]) -> bytes:
        """Encode sorted label pairs as 1.0 ``Label`` fields: the identity of a series in both protocols."""
        # Most label pairs (job, instance, le, method, ...) recur across series: encode each once.
        fields = self._label_fields
        try:
            return b"".join([fields[pair] for pair in pairs])
        except KeyError:
            pass
        if len(fields) + len(pairs) > _LABEL_CACHE_SIZE:
            fields.clear()
        for pair in pairs:
            if pair not in fields:
                fields[pair] = _wire.labels([pair])
        return b"".join([fields[pair] for pair in pairs])

    def _warn(self, family: str, problem: str, exc: BaseException | None = None, detail: str = "") -> None:
        """Log a dropped sample or family once per family and problem (per ``warned``), then ``detail``."""
        key = (family, problem)
        if key in self._warned:
            return
        if len(self._warned) < 10_000:
            self._warned.add(key)
        self._logger.warning("Metric family %r %s%s", family, problem, detail, exc_info=exc)

    def _drop(
        self,
        family: str,
        problem: str,
        reason: str,
        tmpl: FamilyTemplate | None = None,
        *,
        samples: int = 1,
        exc: BaseException | None = None,
        detail: str = "",
    ) -> None:
        """Leave ``samples`` out: warn once per family and problem, and count them for ``reason``.

        With ``tmpl`` (a choice made as it is built) the template counts them, and every
        collection that uses it reports them; without, only the collection being encoded does.
        """
        if tmpl is not None:
            count_drop(tmpl, reason, samples)
        else:
            self._result.add_dropped({reason: samples})
        self._warn(family, problem, exc, detail)

    def _drop_repeat(self, family: str, problem: str, tmpl: FamilyTemplate, example: str) -> None:
        """Leave out a series already sent; with relabel rules, which make most such, warn once a family."""
        if self._relabel is None:
            self._drop(family, problem, DROP_DUPLICATE, tmpl)
        else:
            detail = f"; the first repeat: {example}"
            self._drop(family, _RELABELLED_REPEAT, DROP_DUPLICATE, tmpl, detail=detail)


class SampleLabels:
    """A planned sample's labels, made only if a warning prints them."""

    __slots__ = ("index", "plan")

    def __init__(self, plan: Plan, index: int) -> None:
        self.plan, self.index = plan, index

    def __repr__(self) -> str:
        return repr(self.plan.labels(self.index))
