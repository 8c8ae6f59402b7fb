"""Prometheus relabelling (``write_relabel_configs``): compile rules once, apply them to label sets.

The semantics are those of Prometheus's ``model/relabel`` (3.x, with the ``legacy`` name
validation scheme, which is also 2.x's): the defaults (separator ``;``, regex ``(.*)``,
replacement ``$1``, action ``replace``), regexes anchored as ``^(?s:regex)$`` (so ``.``
matches newlines, as since Prometheus 3.0), ``$1``/``${1}``/``${name}``/``$$`` expanded by Go's
``Regexp.Expand`` rules, ``hashmod`` as Prometheus computes it, an empty value removing a
label, and the checks of Prometheus's ``Config.Validate`` (in :mod:`.relabel_check`). Regexes
are RE2, translated for Python's ``re`` by :mod:`.re2`.

One deliberate difference: a ``labelmap`` whose expanded name is not a valid label name skips
that label (Prometheus would set it, and the receiver would then refuse the whole request).

Pure: no I/O, no globals beyond constants; :class:`RelabelRules` is immutable and thread-safe
(each rule remembers its last few thousand results, which changes nothing but the cost).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .._exceptions import ConfigurationError
from .go_regexp import Regex, expander, replace_all
from .names import is_valid_label_name
from .relabel_check import ACTIONS, FIELDS, RelabelRule, check_rule

__all__ = [
    "ACTIONS",
    "FIELDS",
    "RelabelRule",
    "RelabelRules",
    "compile_rules",
]

_Added = dict[str, None]
_Setter = Callable[[dict[str, str], "_Added | None", str, str], None]
_Step = Callable[[dict[str, str], "_Added | None"], bool]
_T = TypeVar("_T")
_MEMO_SIZE = 4096  # results remembered per rule


@dataclass(frozen=True)
class RelabelRules:
    """Compiled relabel rules, applied in order by :meth:`apply`. Immutable; safe to share across threads."""

    rules: tuple[RelabelRule, ...]
    _steps: tuple[_Step, ...] = field(repr=False, compare=False)
    _ordered: bool = field(repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[RelabelRule]:
        return iter(self.rules)

    def __repr__(self) -> str:
        return f"RelabelRules({[rule.action for rule in self.rules]!r})"

    def apply(self, labels: Mapping[str, str]) -> dict[str, str] | None:
        """Relabel one series.

        Args:
            labels: the series' labels, ``__name__`` included; not modified. Empty values count
                as absent labels, as in Prometheus.

        Returns:
            A new dict of the relabelled labels (in no particular order, no empty values), or
            ``None`` when a rule drops the series or no ``__name__`` is left.
        """
        current = dict(labels)
        if not all(current.values()):
            current = {name: value for name, value in current.items() if value}
        added: _Added | None = {} if self._ordered else None
        for step in self._steps:
            if not step(current, added):
                return None
        return current if "__name__" in current else None


def compile_rules(configs: object, where: str = "write_relabel_configs") -> RelabelRules:
    """Compile relabel rules, checking them as Prometheus does.

    Args:
        configs: a list of rule mappings with Prometheus's ``relabel_config`` keys (see
            :data:`FIELDS`); a missing key takes Prometheus's default, a key given as ``None``
            (YAML's null) the empty value, as in Prometheus (so ``regex: None`` matches only the
            empty string). ``None`` means no rules; compiled :class:`RelabelRules` pass through.
        where: the setting's name, used in error messages.

    Returns:
        The compiled rules.

    Raises:
        ConfigurationError: naming ``where[index].field``, the value and what is allowed, for a
            rule that is not a mapping, has an unknown key, a value of the wrong type, a regex
            that is not valid RE2, an unknown action, or fails Prometheus's validation.
    """
    if isinstance(configs, RelabelRules):
        return configs
    if configs is None:
        return RelabelRules((), (), False)
    if isinstance(configs, (str, bytes, Mapping)) or not isinstance(configs, Sequence):
        raise ConfigurationError(
            f"{where}={configs!r} is not valid: expected a list of relabel rules (mappings)"
        )
    rules: list[RelabelRule] = []
    steps: list[_Step] = []
    ordered = any(
        isinstance(config, Mapping) and str(config.get("action") or "").lower() == "labelmap"
        for config in configs
    )
    setter: _Setter = _set_ordered if ordered else _set_plain
    for index, config in enumerate(configs):
        rule, regex = check_rule(config, f"{where}[{index}]", index)
        rules.append(rule)
        steps.append(_step(rule, regex, setter))
    return RelabelRules(tuple(rules), tuple(steps), ordered)


# Label-set updates that mirror Prometheus's labels.Builder. ``added`` (only kept when a labelmap
# rule needs it) holds the labels set since the start, in the order the Builder keeps them.


def _set_plain(labels: dict[str, str], added: _Added | None, name: str, value: str) -> None:
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)


def _set_ordered(labels: dict[str, str], added: _Added | None, name: str, value: str) -> None:
    """Set (or, for an empty value, delete) a label, keeping the Builder's order of set labels."""
    assert added is not None
    if value:
        labels[name] = value
        if name not in added:
            added[name] = None  # a label set anew goes behind the others (set again: it stays)
    else:
        labels.pop(name, None)
        added.pop(name, None)


def _builder_order(moves: list[tuple[str, str, str]], added: _Added | None) -> None:
    """Sort labelmap's (new name, value, old name) moves in the order the Builder walks the old names.

    That is the original labels sorted by name, then those set since, in the order they were set.
    """
    position = {name: index for index, name in enumerate(added or ())}
    moves.sort(key=lambda move: (1, position[move[2]], "") if move[2] in position else (0, 0, move[2]))


# Building each rule's step. Results are memoised per rule: the same values and label names
# recur in series after series (every series of a family has its __name__, every label name
# recurs), so most series cost a cache hit per rule instead of a regex match.


def _memo(compute: Callable[[str], _T]) -> Callable[[str], _T]:
    return functools.lru_cache(maxsize=_MEMO_SIZE)(compute)


def _value_of(sources: tuple[str, ...], separator: str) -> Callable[[dict[str, str]], str]:
    if not sources:
        return lambda labels: ""
    if len(sources) == 1:
        (only,) = sources
        return lambda labels: labels.get(only, "")
    return lambda labels: separator.join([labels.get(name, "") for name in sources])


def _go_lower(text: str) -> str:
    """``strings.ToLower``: each character's simple lower-case mapping (no final-sigma rule)."""
    if text.isascii():
        return text.lower()
    return "".join([char.lower()[0] for char in text])  # only U+0130 maps to two: "i" and a dot


def _go_upper(text: str) -> str:
    """``strings.ToUpper``: each character's simple upper-case mapping (``ß`` stays ``ß``)."""
    if text.isascii():
        return text.upper()
    out = []
    for char in text:
        upper = char.upper()
        if len(upper) != 1:
            # Full mappings like "SS" are not Go's; the simple one, where there is one, is the
            # title-case form of a lower-case letter (U+1FB3 -> U+1FBC).
            title = char.title()
            upper = title if len(title) == 1 else char
        out.append(upper)
    return "".join(out)


def _step(rule: RelabelRule, regex: Regex, setter: _Setter) -> _Step:
    """Build the function that applies ``rule`` to a label dict in place (``False``: drop the series)."""
    value_of = _value_of(rule.source_labels, rule.separator)
    action = rule.action
    target = rule.target_label
    if action in ("keep", "drop"):
        matches = regex.matcher()
        if regex.literals is None and not regex.match_all:
            matches = _memo(matches)
        keep_if = action == "keep"
        return lambda labels, added: matches(value_of(labels)) is keep_if
    if action in ("keepequal", "dropequal"):
        equal_keeps = action == "keepequal"
        return lambda labels, added: (labels.get(target, "") == value_of(labels)) is equal_keeps
    if action in ("lowercase", "uppercase", "hashmod"):
        modulus = rule.modulus

        def hashmod(value: str) -> str:
            digest = hashlib.md5(value.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
            return str(int.from_bytes(digest[8:], "big") % modulus)

        transform = _memo({"lowercase": _go_lower, "uppercase": _go_upper, "hashmod": hashmod}[action])

        def transformed(labels: dict[str, str], added: _Added | None) -> bool:
            setter(labels, added, target, transform(value_of(labels)))
            return True

        return transformed
    if action in ("labeldrop", "labelkeep"):
        return _label_filter(regex, action == "labeldrop", setter)
    if action == "labelmap":
        return _labelmap(regex, rule.replacement, setter)
    return _replace(rule, regex, value_of, setter)


def _replace(
    rule: RelabelRule, regex: Regex, value_of: Callable[[dict[str, str]], str], setter: _Setter
) -> _Step:
    target = expander(regex.template(rule.target_label))
    replacement = expander(regex.template(rule.replacement))
    if regex.match_all and isinstance(target, str) and isinstance(replacement, str):
        # A constant label (or its removal): "(.*)" matches every value.
        def constant(labels: dict[str, str], added: _Added | None) -> bool:
            setter(labels, added, target, replacement)
            return True

        return constant
    groups_of = regex.groups()

    def outcome(value: str) -> tuple[str, str] | None:
        """Return the label to set and its value, or ``None`` when the rule changes nothing."""
        groups = groups_of(value)
        if groups is None:
            return None
        name = target if isinstance(target, str) else target(groups)
        if not isinstance(target, str) and not is_valid_label_name(name):
            return None
        return name, replacement if isinstance(replacement, str) else replacement(groups)

    memo = _memo(outcome)

    def replace(labels: dict[str, str], added: _Added | None) -> bool:
        result = memo(value_of(labels))
        if result is not None:
            setter(labels, added, *result)
        return True

    return replace


def _label_filter(regex: Regex, drop: bool, setter: _Setter) -> _Step:
    literals = regex.literals
    if drop and literals is not None:

        def drop_named(labels: dict[str, str], added: _Added | None) -> bool:
            for name in literals:
                if name in labels:
                    setter(labels, added, name, "")
            return True

        return drop_named
    matches = _memo(regex.matcher())

    def label_filter(labels: dict[str, str], added: _Added | None) -> bool:
        for name in [name for name in labels if matches(name) is drop]:
            setter(labels, added, name, "")
        return True

    return label_filter


def _labelmap(regex: Regex, replacement: str, setter: _Setter) -> _Step:
    parts = regex.template(replacement)
    expand = expander(parts)
    groups_of = regex.groups()

    def new_name(name: str) -> str | None:
        """Return the name ``name`` is copied to, or ``None``: no match, or not a valid name."""
        groups = groups_of(name)
        if groups is None:
            return None
        if not regex.standard:
            mapped = replace_all(regex, parts, name)
        else:
            mapped = expand if isinstance(expand, str) else expand(groups)
        return mapped if is_valid_label_name(mapped) else None

    memo = _memo(new_name)

    def labelmap(labels: dict[str, str], added: _Added | None) -> bool:
        # Read every label before setting any: the rule sees the labels as they were before it.
        moves = [(new, value, name) for name, value in labels.items() if (new := memo(name)) is not None]
        if len(moves) > 1:
            _builder_order(moves, added)  # when two map to one name, the last one set wins
        for new, value, _ in moves:
            setter(labels, added, new, value)
        return True

    return labelmap
