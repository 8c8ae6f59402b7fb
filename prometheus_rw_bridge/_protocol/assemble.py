"""Series labels of a directly read family, assembled per child rather than per sample.

Every sample of a standard metric's child has the child's labels plus at most two of its own:
``__name__`` and one more (a histogram bucket's ``le``, an enum's state).  The label names
of a family are fixed, so their sorted order is too: :func:`plan` works out, once per family,
where ``__name__`` and that extra label fall in it, splits each child's other labels into the
runs before, between and after them, and lets an encoder :meth:`Plan.assemble` every sample's
encoded labels from runs encoded once per child and two fields shared by the whole family.  No
``Sample``, label dict or pair list is made per sample.

The result is exactly what :meth:`FamilyEncoder.label_pairs` gives from the collected samples
(escaped names, empty values dropped, target labels added, sorted); a family where that needs
judgement (names that collide once escaped, values that are not UTF-8, an extra label that a
target label or another label also sets, ``Info``) gets no plan and is built from its samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .names import escape_label_name, escape_metric_name

__all__ = ["Plan", "plan"]

Pair = tuple[bytes, bytes]
_NAME = b"__name__"


class Plan:
    """What each sample's series is made of, in collect() order.

    ``names``: each sample's name as collected (unescaped); ``samples``: each sample's child
    index, ``__name__`` pair and extra pair (or ``None``); ``runs``: each child's labels
    before, between and after the two per-sample ones, as pairs in label order.
    """

    __slots__ = ("name_first", "names", "runs", "samples")

    def __init__(self, name_first: bool) -> None:
        self.name_first = name_first
        self.names: list[str] = []
        self.samples: list[tuple[int, Pair, Pair | None]] = []
        self.runs: list[tuple[tuple[Pair, ...], tuple[Pair, ...], tuple[Pair, ...]]] = []

    def __len__(self) -> int:
        return len(self.names)

    def assemble(self, field: Callable[[Pair], bytes], indices: Iterable[int] | None = None) -> list[bytes]:
        """Return the labels of every sample (or of ``indices``): pairs mapped through ``field``, joined.

        ``field`` is called in label order for the first sample of each child and then for
        each later sample's own pairs only, so a ``field`` that numbers strings as it first
        meets them (2.0's symbol table) numbers them as a pair-by-pair walk over the same
        series would.
        """
        runs: list[tuple[bytes, bytes, bytes] | None] = [None] * len(self.runs)
        memo: dict[Pair | None, bytes] = {None: b""}  # the few per-sample pairs of a family
        out: list[bytes] = []
        append = out.append
        first = self.name_first
        for index in range(len(self.samples)) if indices is None else indices:
            child, name, extra = self.samples[index]
            x, y = (name, extra) if first else (extra, name)
            known = runs[child]
            if known is None:
                a, b, c = self.runs[child]
                before = b"".join(map(field, a))
                one = memo.get(x)
                if one is None:
                    one = memo[x] = field(x)  # type: ignore[arg-type]
                between = b"".join(map(field, b))
                two = memo.get(y)
                if two is None:
                    two = memo[y] = field(y)  # type: ignore[arg-type]
                runs[child] = known = (before, between, b"".join(map(field, c)))
            else:
                one = memo.get(x)
                if one is None:
                    one = memo[x] = field(x)  # type: ignore[arg-type]
                two = memo.get(y)
                if two is None:
                    two = memo[y] = field(y)  # type: ignore[arg-type]
            append(b"".join((known[0], one, known[1], two, known[2])))
        return out

    def largest(self, weight: Callable[[Pair], int], indices: Iterable[int]) -> list[int]:
        """Return, for each of ``indices``, the largest ``weight`` of its pairs (2.0: highest reference)."""
        tops: dict[int, int] = {}
        memo: dict[Pair | None, int] = {None: 0}
        out = []
        for index in indices:
            child, name, extra = self.samples[index]
            top = tops.get(child)
            if top is None:
                a, b, c = self.runs[child]
                top = tops[child] = max(map(weight, a + b + c), default=0)
            for pair in (name, extra):
                if pair not in memo:
                    memo[pair] = weight(pair)  # type: ignore[arg-type]
            out.append(max(top, memo[name], memo[extra]))
        return out

    def labels(self, index: int) -> dict[str, str]:
        """The labels of sample ``index``, for messages only."""
        child, _, extra = self.samples[index]
        pairs = [*self.runs[child][0], *self.runs[child][1], *self.runs[child][2]]
        if extra:
            pairs.append(extra)
        return {k.decode(): v.decode() for k, v in pairs}


def plan(family: Any, layout: list[tuple[str, str | None]], extra_name: str | None,
         target: Mapping[str, str]) -> Plan | None:
    """Plan the series of ``family`` (a DirectFamily), or return ``None`` to build from samples.

    ``layout`` lists each child's samples as ``(suffix, extra label value or None)``;
    ``extra_name`` names that extra label; ``target`` holds the labels added to every series
    that lacks them (never empty values).
    """
    names = [escape_label_name(n) for n in family.source._labelnames]
    if len(set(names)) != len(names) or "" in names or "__name__" in names:
        return None
    extra = None if extra_name is None else escape_label_name(extra_name)
    if extra is not None and (extra in names or extra in target or extra in ("", "__name__")):
        return None
    if any(value == "" for _, value in layout):
        return None  # an empty extra value drops the label: rare, left to the general path
    order = sorted({*names, *target, "__name__", *([extra] if extra else [])})
    name_at = order.index("__name__")
    extra_at = order.index(extra) if extra else len(order)
    low, high = min(name_at, extra_at), max(name_at, extra_at)
    result = Plan(name_at < extra_at)
    position = {name: order.index(name) for name in names}
    targets = [(order.index(k), (k.encode(), v.encode())) for k, v in target.items() if k not in position]
    try:
        for key in family.keys:
            pairs = list(targets)
            for name, value in zip(names, key, strict=True):
                if value == "" and name in target:
                    value = target[name]
                if value != "":
                    pairs.append((position[name], (name.encode(), value.encode("utf-8"))))
            pairs.sort()
            result.runs.append((
                tuple(p for at, p in pairs if at < low),
                tuple(p for at, p in pairs if low < at < high),
                tuple(p for at, p in pairs if at > high),
            ))
    except UnicodeEncodeError:
        return None
    sample_names = [family.name + suffix for suffix, _ in layout]
    name_pairs = [(_NAME, escape_metric_name(n).encode()) for n in sample_names]
    extra_pairs = [None if v is None else (extra.encode(), v.encode("utf-8")) for _, v in layout]  # type: ignore[union-attr]
    per_child = list(zip(name_pairs, extra_pairs, strict=True))
    for child in range(len(family.keys)):
        result.names += sample_names
        result.samples += [(child, name, value) for name, value in per_child]
    return result
