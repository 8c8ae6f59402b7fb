"""How each of prometheus_client's metric classes lays out its children's samples.

One :class:`Kind` per class mirrors its ``_child_samples``: the values in ``collect()`` order
(:meth:`Kind.values`, in C-speed loops over the children's value cells), the exemplars, the
samples themselves (only when a template is built from samples), and the per-child layout that
:mod:`.assemble` plans labels from.  ``direct.CHECKED_VERSIONS`` says which versions these
mirror.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import accumulate, chain
from operator import attrgetter
from typing import Any

from prometheus_client import metrics as _metrics
from prometheus_client import values as _values
from prometheus_client.utils import floatToGoString as _float_to_go

__all__ = ["INFO", "KINDS", "Kind"]

floatToGoString: Callable[[float], str] = _float_to_go

_VALUE = attrgetter("_value._value")  # a Counter/Gauge child's MutexValue
_EXEMPLAR = attrgetter("_value._exemplar")
_CELL = attrgetter("_value")  # a bare MutexValue (histogram buckets, summary count/sum)
_CELL_EXEMPLAR = attrgetter("_exemplar")
_CREATED = attrgetter("_created")
_BUCKETS = attrgetter("_buckets")


class Kind:
    """How one metric class lays out its children's samples; mirrors its ``_child_samples``."""

    has_created = False

    def single_process(self, child: Any) -> bool:
        """Tell whether ``child`` keeps its values in this process (not in multiprocess files)."""
        return type(child._value) is _values.MutexValue

    def values(self, children: list[Any], created: bool) -> list[Any]:
        raise NotImplementedError

    def exemplars(self, children: list[Any], created: bool) -> list[Any] | None:
        return None

    def layout(self, metric: Any, created: bool) -> list[tuple[str, str | None]] | None:
        """Each child's samples as ``(suffix, value of the extra label or None)``; ``None``: varies."""
        return None

    def extra_label(self, metric: Any) -> str | None:
        """The label some samples of a child add to the child's labels (``le``), if any."""
        return None

    def samples(self, metric: Any, child: Any, created: bool) -> list[tuple[str, dict[str, str], Any, Any]]:
        raise NotImplementedError


def _interleave(columns: list[list[Any]]) -> list[Any]:
    """Return ``columns[0][0], columns[1][0], ..., columns[0][1], ...`` (all in C)."""
    if len(columns) == 1:
        return columns[0]
    out: list[Any] = [None] * (len(columns) * len(columns[0]))
    for index, column in enumerate(columns):
        out[index :: len(columns)] = column
    return out


class _CounterKind(Kind):
    has_created = True

    def values(self, children: list[Any], created: bool) -> list[Any]:
        totals = list(map(_VALUE, children))
        return _interleave([totals, list(map(_CREATED, children))] if created else [totals])

    def exemplars(self, children: list[Any], created: bool) -> list[Any] | None:
        found = list(map(_EXEMPLAR, children))
        if found.count(None) == len(found):
            return None
        return _interleave([found, [None] * len(found)] if created else [found])

    def layout(self, metric: Any, created: bool) -> list[tuple[str, str | None]] | None:
        return [("_total", None), ("_created", None)] if created else [("_total", None)]

    def samples(self, metric: Any, child: Any, created: bool) -> list[tuple[str, dict[str, str], Any, Any]]:
        out: list[tuple[str, dict[str, str], Any, Any]] = [
            ("_total", {}, child._value._value, child._value._exemplar)
        ]
        if created:
            out.append(("_created", {}, child._created, None))
        return out


class _GaugeKind(Kind):
    def values(self, children: list[Any], created: bool) -> list[Any]:
        return list(map(_VALUE, children))

    def layout(self, metric: Any, created: bool) -> list[tuple[str, str | None]] | None:
        return [("", None)]

    def samples(self, metric: Any, child: Any, created: bool) -> list[tuple[str, dict[str, str], Any, Any]]:
        return [("", {}, child._value._value, None)]


class _SummaryKind(Kind):
    has_created = True

    def single_process(self, child: Any) -> bool:
        return type(child._count) is _values.MutexValue

    def values(self, children: list[Any], created: bool) -> list[Any]:
        columns = [[c._count._value for c in children], [c._sum._value for c in children]]
        if created:
            columns.append(list(map(_CREATED, children)))
        return _interleave(columns)

    def layout(self, metric: Any, created: bool) -> list[tuple[str, str | None]] | None:
        out: list[tuple[str, str | None]] = [("_count", None), ("_sum", None)]
        return [*out, ("_created", None)] if created else out

    def samples(self, metric: Any, child: Any, created: bool) -> list[tuple[str, dict[str, str], Any, Any]]:
        out: list[tuple[str, dict[str, str], Any, Any]] = [
            ("_count", {}, child._count._value, None),
            ("_sum", {}, child._sum._value, None),
        ]
        if created:
            out.append(("_created", {}, child._created, None))
        return out


class _HistogramKind(Kind):
    has_created = True

    def single_process(self, child: Any) -> bool:
        return type(child._sum) is _values.MutexValue

    def values(self, children: list[Any], created: bool) -> list[Any]:
        out: list[Any] = []
        extend = out.extend
        for child in children:
            # The same float additions, in the same order, as _child_samples.
            counts = list(accumulate(map(_CELL, child._buckets), initial=0.0))
            del counts[0]
            counts.append(counts[-1])  # _count
            if child._upper_bounds[0] >= 0:
                counts.append(child._sum._value)
            if created:
                counts.append(child._created)
            extend(counts)
        return out

    def layout(self, metric: Any, created: bool) -> list[tuple[str, str | None]] | None:
        bounds = metric._upper_bounds
        out: list[tuple[str, str | None]] = [("_bucket", floatToGoString(b)) for b in bounds]
        out.append(("_count", None))
        if bounds[0] >= 0:
            out.append(("_sum", None))
        if created:
            out.append(("_created", None))
        return out

    def extra_label(self, metric: Any) -> str | None:
        return "le"

    def exemplars(self, children: list[Any], created: bool) -> list[Any] | None:
        found = list(map(_CELL_EXEMPLAR, chain.from_iterable(map(_BUCKETS, children))))
        if found.count(None) == len(found):  # the usual case, decided in C
            return None
        out: list[Any] = []
        start = 0
        for child in children:
            end = start + len(child._buckets)
            out += found[start:end]
            out += [None] * (1 + (child._upper_bounds[0] >= 0) + created)  # _count, _sum, _created
            start = end
        return out

    def samples(self, metric: Any, child: Any, created: bool) -> list[tuple[str, dict[str, str], Any, Any]]:
        out: list[tuple[str, dict[str, str], Any, Any]] = []
        acc = 0.0
        for bound, bucket in zip(child._upper_bounds, child._buckets, strict=True):
            acc += bucket._value
            out.append(("_bucket", {"le": floatToGoString(bound)}, acc, bucket._exemplar))
        out.append(("_count", {}, acc, None))
        if child._upper_bounds[0] >= 0:
            out.append(("_sum", {}, child._sum._value, None))
        if created:
            out.append(("_created", {}, child._created, None))
        return out


class _InfoKind(Kind):
    def single_process(self, child: Any) -> bool:
        return type(child._value) is dict
    def values(self, children: list[Any], created: bool) -> list[Any]:
        return [1.0] * len(children)

    def samples(self, metric: Any, child: Any, created: bool) -> list[tuple[str, dict[str, str], Any, Any]]:
        return [("_info", child._value, 1.0, None)]


class _EnumKind(Kind):
    def single_process(self, child: Any) -> bool:
        return type(child._value) is int
    def values(self, children: list[Any], created: bool) -> list[Any]:
        if not children:
            return []
        states = len(children[0]._states)
        out = [0] * (states * len(children))
        for index, child in enumerate(children):
            out[index * states + child._value] = 1
        return out

    def layout(self, metric: Any, created: bool) -> list[tuple[str, str | None]] | None:
        return [("", str(state)) for state in metric._states]

    def extra_label(self, metric: Any) -> str | None:
        return str(metric._name)

    def samples(self, metric: Any, child: Any, created: bool) -> list[tuple[str, dict[str, str], Any, Any]]:
        chosen = child._value
        return [("", {metric._name: s}, 1 if i == chosen else 0, None) for i, s in enumerate(child._states)]


INFO = _InfoKind()
KINDS: dict[type, Kind] = {
    _metrics.Counter: _CounterKind(),
    _metrics.Gauge: _GaugeKind(),
    _metrics.Summary: _SummaryKind(),
    _metrics.Histogram: _HistogramKind(),
    _metrics.Info: INFO,
    _metrics.Enum: _EnumKind(),
}
# Instance attributes that replace the behaviour this module mirrors (Gauge.set_function sets
# _child_samples on the child; anyone may patch collect or _samples).
