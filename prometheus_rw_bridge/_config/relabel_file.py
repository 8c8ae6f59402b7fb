"""Relabel rules from a file: YAML (with PyYAML, the ``yaml`` extra) or JSON.

The file holds either a list of rules or a mapping with one key, ``write_relabel_configs``, whose
value is that list (so a Prometheus ``remote_write`` snippet's key can be kept)::

    write_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop

A ``.json`` file is read as JSON; any other as YAML, or as JSON when PyYAML is not installed.
YAML scalars are read as Prometheus's YAML library reads them into string fields: as their
text (``regex: 200`` is the regex ``200``, ``separator: yes`` is ``yes``), with null (``~``,
``null`` or nothing) for the empty value. Duplicate keys are errors, as in Prometheus.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .._exceptions import ConfigurationError, MissingDependencyError
from .._protocol.relabel import RelabelRules, compile_rules
from .env import ENV_RELABEL_CONFIG_FILE
from .parse import fail

try:
    import yaml as _yaml
except ImportError:  # PyYAML comes with the "yaml" extra; JSON files need nothing
    _yaml = None  # type: ignore[assignment]

__all__ = ["ENV_RELABEL_CONFIG_FILE", "compile_relabel_file", "load_relabel_file"]

_KEY = "write_relabel_configs"
_ALLOWED = f"expected a list of relabel rules, or a mapping with the one key {_KEY!r}"


def load_relabel_file(path: str | os.PathLike[str], where: str = ENV_RELABEL_CONFIG_FILE) -> list[Any]:
    """Read the relabel rules in a YAML or JSON file (not yet checked: see :func:`compile_relabel_file`).

    Args:
        path: the file.
        where: the setting that named the file, for error messages.

    Returns:
        The rules, as the file gives them (normally mappings).

    Raises:
        ConfigurationError: naming ``where``, the file and, where the parser says it, the line:
            the file cannot be read, is not valid YAML/JSON, or does not hold a list of rules.
        MissingDependencyError: a YAML file, and PyYAML is not installed.
    """
    return _load(path, where)[0]


def compile_relabel_file(
    path: str | os.PathLike[str],
    where: str = ENV_RELABEL_CONFIG_FILE,
    rules_where: str = _KEY,
) -> RelabelRules:
    """Read and compile the relabel rules in a file; an invalid rule's error names the file and its line.

    Args:
        path: the file.
        where: the setting that named the file, for error messages.
        rules_where: the name the rules go by in messages (``write_relabel_configs[2].regex``).

    Raises:
        ConfigurationError: as :func:`load_relabel_file`, and for any rule
            :func:`~prometheus_rw_bridge._protocol.relabel.compile_rules` refuses.
        MissingDependencyError: a YAML file, and PyYAML is not installed.
    """
    configs, lines = _load(path, where)
    try:
        return compile_rules(configs, rules_where)
    except ConfigurationError as exc:
        index = _failed_index(str(exc), rules_where, len(configs))
        line = f", line {lines[index]}" if index is not None and lines[index] else ""
        raise ConfigurationError(f"{where}={os.fspath(path)!r}{line}: {exc}") from None


def _failed_index(message: str, rules_where: str, count: int) -> int | None:
    """Find the index of the rule an error from ``compile_rules`` names."""
    prefix = rules_where + "["
    if not message.startswith(prefix):
        return None
    digits = message[len(prefix) :].partition("]")[0]
    return int(digits) if digits.isdigit() and int(digits) < count else None


def _load(path: str | os.PathLike[str], where: str) -> tuple[list[Any], list[int | None]]:
    """Read the rules and the line each starts on (``None`` where unknown)."""
    shown = os.fspath(path)
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise fail(where, shown, f"the file cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(where, shown, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    is_json = str(shown).lower().endswith(".json")
    if not is_json and _yaml is not None:
        data, lines = _parse_yaml(text, where, shown)
    else:
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except ValueError as exc:
            if not is_json:
                raise MissingDependencyError(
                    "pyyaml", f"{where}={shown!r} (a YAML file; a .json file needs nothing)", extra="yaml"
                ) from None
            raise fail(where, shown, f"the file is not valid JSON ({_json_problem(exc)})") from None
        lines = []
    if data is None:
        raise fail(where, shown, f"the file is empty; {_ALLOWED}")
    rules = data.get(_KEY) if isinstance(data, Mapping) else data
    if isinstance(data, Mapping) and set(data) != {_KEY}:
        unknown = sorted(str(key) for key in data if key != _KEY)
        problem = f"unknown key {unknown[0]!r}; " if unknown else ""
        raise fail(where, shown, f"{problem}{_ALLOWED}")
    if not isinstance(rules, list):
        raise fail(where, shown, f"{_ALLOWED}; the file holds {type(rules).__name__}")
    return rules, lines if len(lines) == len(rules) else [None] * len(rules)


class _DuplicateKey(ValueError):
    """A mapping in a JSON file has the same key twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"the key {key!r} appears twice in one mapping")
        result[key] = value
    return result


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg}, line {exc.lineno}, column {exc.colno}"
    return str(exc)


def _parse_yaml(text: str, where: str, shown: str) -> tuple[Any, list[int | None]]:
    """Parse one YAML document with scalars as strings (null aside); return it and each rule's line."""
    loader = _StringLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where_in_file = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        raise fail(where, shown, f"the file is not valid YAML ({problem}{where_in_file})") from None
    except _yaml.YAMLError as exc:
        raise fail(where, shown, f"the file is not valid YAML ({exc})") from None
    finally:
        loader.dispose()
    if isinstance(node, _yaml.MappingNode):
        node = next((value for key, value in node.value if key.value == _KEY), None)
    lines: list[int | None] = []
    if isinstance(node, _yaml.SequenceNode):
        lines = [item.start_mark.line + 1 for item in node.value]
    return data, lines


if _yaml is not None:

    class _StringLoader(_yaml.SafeLoader):
        """A safe loader that keeps plain scalars as text (null aside) and refuses duplicate keys."""

        yaml_implicit_resolvers = {
            first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
            for first, resolvers in _yaml.SafeLoader.yaml_implicit_resolvers.items()
        }

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise _yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"found the key {key!r} twice",
                        key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)
