"""Prometheus relabelling (``write_relabel_configs``): compile rules once, apply them to label sets.

The semantics are those of Prometheus's ``model/relabel`` (3.x, with the ``legacy`` name
validation scheme, which is also 2.x's): the defaults (separator ``;``, regex ``(.*)``,
replacement ``$1``, action ``replace``), regexes anchored as ``^(?s:regex)$`` (so ``.``
matches newlines, as since Prometheus 3.0), ``$1``/``${1}``/``${name}``/``$$`` expanded by Go's
``Regexp.Expand`` rules, ``hashmod`` as Prometheus computes it, an empty value removing a
label, and the checks of Prometheus's ``Config.Validate``. Regexes are RE2, translated for
Python's ``re`` by :mod:`.re2`.

One deliberate difference: a ``labelmap`` whose expanded name is not a valid label name skips
that label (Prometheus would set it, and the receiver would then refuse the whole request).

Pure: no I/O, no globals beyond constants; :class:`RelabelRules` is immutable and thread-safe
(each rule remembers its last few thousand results, which changes nothing but the cost).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .._exceptions import ConfigurationError
from .go_regexp import Regex, expander, replace_all
from .names import is_valid_label_name
from .re2 import RE2Error

__all__ = [
    "ACTIONS",
    "FIELDS",
    "RelabelRule",
    "RelabelRules",
    "compile_rules",
]

ACTIONS = (
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
)
"""Every relabel action, as Prometheus names them (matched case-insensitively)."""

FIELDS = ("source_labels", "separator", "regex", "target_label", "replacement", "modulus", "action")
"""The keys of a rule (Prometheus's ``relabel_config``)."""

DEFAULT_SEPARATOR = ";"
DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"
DEFAULT_ACTION = "replace"

_NEEDS_TARGET = frozenset({"replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"})
_NAME_ONLY_TARGET = frozenset({"lowercase", "uppercase", "keepequal", "dropequal"})
_LABEL_NAME_ALLOWED = "a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
# Prometheus's relabelTargetLegacy, ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$, rewritten without
# its nested quantifiers (which backtrack exponentially in Python) to the same language.
_TARGET_WITH_VARS_RE = re.compile(r"(?:[a-zA-Z_]|\$(?:\{\w+\}|\w))(?:\w|\$(?:\{\w+\}|\w))*", re.ASCII)
_TARGET_ALLOWED = (
    "a label name ([a-zA-Z_][a-zA-Z0-9_]*) in which $1, ${1} or ${name} may stand for characters"
)

_Added = dict[str, None]
_Setter = Callable[[dict[str, str], "_Added | None", str, str], None]
_Step = Callable[[dict[str, str], "_Added | None"], bool]
_T = TypeVar("_T")
_MEMO_SIZE = 4096  # results remembered per rule


@dataclass(frozen=True)
class RelabelRule:
    """One compiled rule; the fields hold its configuration with the defaults filled in."""

    index: int
    action: str
    source_labels: tuple[str, ...]
    separator: str
    regex: str
    target_label: str
    replacement: str
    modulus: int

    def config(self) -> dict[str, Any]:
        """Return the rule as a ``relabel_config`` mapping (every field, defaults included)."""
        return {
            "source_labels": list(self.source_labels),
            "separator": self.separator,
            "regex": self.regex,
            "target_label": self.target_label,
            "replacement": self.replacement,
            "modulus": self.modulus,
            "action": self.action,
        }


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
        rule, regex = _check(config, f"{where}[{index}]", index)
        rules.append(rule)
        steps.append(_step(rule, regex, setter))
    return RelabelRules(tuple(rules), tuple(steps), ordered)


# Checking a rule.


def _compile_regex(source: str, where: str) -> Regex:
    try:
        return Regex.anchored(source)
    except RE2Error as exc:
        raise _fail(where, source, f"expected an RE2 regular expression ({exc})") from None
    except ValueError as exc:
        raise _fail(where, source, f"expected a simpler regular expression ({exc})") from None


def _fail(where: str, value: object, allowed: str) -> ConfigurationError:
    return ConfigurationError(f"{where}={value!r} is not valid: {allowed}")


def _text(config: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = config.get(key, default)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(f"{where}.{key}", value, "expected a string (quote it in YAML)")
    return value


def _check(config: object, where: str, index: int) -> tuple[RelabelRule, Regex]:
    """Read and validate one rule, in the order of Prometheus's unmarshalling and ``Validate``."""
    if not isinstance(config, Mapping):
        raise _fail(where, config, "expected a relabel rule: a mapping of " + ", ".join(FIELDS))
    for key in config:
        if key not in FIELDS:
            raise _fail(f"{where}.{key}", config[key], "unknown field; allowed: " + ", ".join(FIELDS))
    source_labels, sources_given = _source_labels(config, where)
    separator = _text(config, "separator", DEFAULT_SEPARATOR, where)
    regex_text = _text(config, "regex", DEFAULT_REGEX, where)
    target = _text(config, "target_label", "", where)
    replacement = _text(config, "replacement", DEFAULT_REPLACEMENT, where)
    modulus = _modulus(config.get("modulus", 0), f"{where}.modulus")
    action = _action(config.get("action", DEFAULT_ACTION), f"{where}.action")
    regex = _compile_regex(regex_text, f"{where}.regex")

    def invalid(key: str, value: str, what: str, allowed: str) -> ConfigurationError:
        problem = f'"{value}" is invalid {what!r} for {action} action; expected {allowed}'
        return _fail(f"{where}.{key}", value, problem)

    if action == "hashmod" and modulus == 0:
        raise _fail(
            f"{where}.modulus", modulus, "relabel configuration for hashmod requires non-zero modulus"
        )
    if action in _NEEDS_TARGET and not target:
        raise _fail(
            f"{where}.target_label",
            target,
            f"relabel configuration for {action} action requires 'target_label' value",
        )
    if action == "replace" and not (
        is_valid_label_name(target) if "$" not in target else _TARGET_WITH_VARS_RE.fullmatch(target)
    ):
        raise invalid("target_label", target, "target_label", _TARGET_ALLOWED)
    if action in _NAME_ONLY_TARGET | {"hashmod"} and not is_valid_label_name(target):
        raise invalid("target_label", target, "target_label", _LABEL_NAME_ALLOWED)
    if action in _NAME_ONLY_TARGET and replacement != DEFAULT_REPLACEMENT:
        raise _fail(f"{where}.replacement", replacement, f"'replacement' can not be set for {action} action")
    if action == "labelmap" and not _TARGET_WITH_VARS_RE.fullmatch(replacement):
        raise invalid("replacement", replacement, "replacement", _TARGET_ALLOWED)
    if action in ("keepequal", "dropequal"):
        extra = _extra_fields(
            config, ("regex", "modulus", "separator", "replacement"), modulus, separator, replacement, target
        )
        if extra:
            raise _fail(
                f"{where}.{extra}",
                config[extra],
                f"{action} action requires only 'source_labels' and `target_label`, and no other fields",
            )
    if action in ("labeldrop", "labelkeep"):
        others = ("target_label", "modulus", "separator", "replacement")
        extra = "source_labels" if sources_given else None
        extra = extra or _extra_fields(config, others, modulus, separator, replacement, target)
        if extra:
            raise _fail(
                f"{where}.{extra}",
                config[extra],
                f"{action} action requires only 'regex', and no other fields",
            )
    rule = RelabelRule(index, action, source_labels, separator, regex_text, target, replacement, modulus)
    return rule, regex


def _extra_fields(
    config: Mapping[str, Any],
    keys: tuple[str, ...],
    modulus: int,
    separator: str,
    replacement: str,
    target: str,
) -> str | None:
    """Name the first of ``keys`` set away from its default (``regex``: given at all, as in Prometheus)."""
    changed = {
        "regex": "regex" in config,
        "modulus": modulus != 0,
        "separator": separator != DEFAULT_SEPARATOR,
        "replacement": replacement != DEFAULT_REPLACEMENT,
        "target_label": target != "",
    }
    return next((key for key in keys if changed[key]), None)


def _source_labels(config: Mapping[str, Any], where: str) -> tuple[tuple[str, ...], bool]:
    """Return the source labels and whether they were given (an empty list counts, ``None`` does not)."""
    value = config.get("source_labels")
    if value is None:
        return (), False
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _fail(f"{where}.source_labels", value, "expected a list of label names")
    for name in value:
        if not isinstance(name, str) or not is_valid_label_name(name):
            raise _fail(
                f"{where}.source_labels",
                value,
                f"{name!r} is not a valid label name; expected {_LABEL_NAME_ALLOWED}",
            )
    return tuple(value), True


def _modulus(value: object, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)  # an unquoted YAML scalar, as PyYAML's string-only loading gives it
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise _fail(where, value, "expected a positive integer")
    return value


def _action(value: object, where: str) -> str:
    allowed = "expected one of " + ", ".join(ACTIONS)
    if value is None:
        raise _fail(where, value, f"relabel action cannot be empty; {allowed}")
    if not isinstance(value, str) or value.lower() not in ACTIONS:
        raise _fail(where, value, f"unknown relabel action; {allowed}")
    return value.lower()


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
