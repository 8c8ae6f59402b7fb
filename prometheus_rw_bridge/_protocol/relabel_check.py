"""Checking a relabel rule as Prometheus does: its fields, their defaults, ``Config.Validate``.

:func:`check_rule` reads one ``relabel_config`` mapping into a :class:`RelabelRule` (every
field, defaults filled in) and its compiled regex, or raises a :class:`ConfigurationError`
naming the field, the value and what is allowed; :mod:`.relabel` turns the result into the
step that applies it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._exceptions import ConfigurationError
from .go_regexp import Regex
from .names import is_valid_label_name
from .re2 import RE2Error

__all__ = ["ACTIONS", "FIELDS", "RelabelRule", "check_rule"]

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


def check_rule(config: object, where: str, index: int) -> tuple[RelabelRule, Regex]:
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
