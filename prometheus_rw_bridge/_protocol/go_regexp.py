"""Go's ``regexp.Regexp`` as Prometheus's relabelling uses it, over Python's ``re``.

Patterns are anchored as Prometheus anchors them (``^(?s:regex)$``) and translated by
:mod:`.re2`; templates (``$1``, ``${name}``, ``$$``) follow ``Regexp.Expand``, and
:func:`replace_all` follows ``Regexp.ReplaceAllString``. Pure, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .re2 import RE2Error, translate

__all__ = ["Groups", "Part", "Regex", "expander", "replace_all"]

_MATCH_ALL = frozenset({".*", "(.*)"})

# A template compiled once: literal text, or the candidate groups of a $reference (the first
# that took part in the match is used; none: the reference expands to "").
Part = str | tuple[int, ...]
Groups = Callable[[int], "str | None"]


@dataclass(frozen=True)
class Regex:
    """A rule's regex, anchored as Prometheus anchors it, with the fastest matcher for its form."""

    pattern: re.Pattern[str]
    group_names: tuple[str, ...]
    standard: bool  # the regex alone is balanced, so ^(?s:regex)$ is one anchored group
    literals: frozenset[str] | None
    match_all: bool

    @classmethod
    def anchored(cls, source: str) -> Regex:
        """Compile ``source`` as Prometheus does: ``^(?s:source)$``.

        Raises:
            RE2Error: not valid RE2 (or ``\\p`` classes).
            ValueError: Python's ``re`` cannot compile the translation (nesting too deep).
        """
        wrapped = translate("^(?s:" + source + ")$")
        try:
            alone = translate(source)
        except RE2Error:
            # Valid only with Prometheus's anchors around it, like "a)|(b": then it is not
            # anchored at both ends, and a match may cover part of the value.
            alone = None
        try:
            pattern = re.compile(wrapped.pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            raise ValueError(f"Python's re cannot compile it: {exc}") from None
        literals = alone.literals if alone is not None else None
        return cls(
            pattern,
            wrapped.group_names,
            alone is not None,
            frozenset(literals) if literals is not None else None,
            source in _MATCH_ALL,
        )

    def matcher(self) -> Callable[[str], bool]:
        """Return a test of whether the regex matches a value."""
        if self.match_all:
            return lambda value: True
        if self.literals is not None:
            return self.literals.__contains__
        match = self.pattern.match if self.standard else self.pattern.search
        return lambda value: match(value) is not None

    def groups(self) -> Callable[[str], Groups | None]:
        """Return a search giving a match's group getter (index -> text or None), or ``None``."""
        if self.match_all and self.group_names == ("",):
            return lambda value: (value, value).__getitem__
        if self.match_all:
            return lambda value: (value,).__getitem__
        search = self.pattern.match if self.standard else self.pattern.search

        def groups(value: str) -> Groups | None:
            found = search(value)
            return None if found is None else found.group

        return groups

    def template(self, text: str) -> tuple[Part, ...]:
        """Compile ``text`` as Go's ``Regexp.Expand`` reads it against this regex's groups."""
        parts: list[Part] = []
        literal: list[str] = []
        rest = text
        while True:
            before, dollar, rest = rest.partition("$")
            literal.append(before)
            if not dollar:
                break
            if rest.startswith("$"):
                literal.append("$")
                rest = rest[1:]
                continue
            parsed = _reference(rest)
            if parsed is None:
                literal.append("$")  # malformed: the $ is literal text
                continue
            name, rest = parsed
            parts.extend(["".join(literal), self._candidates(name)])
            literal = []
        parts.append("".join(literal))
        return tuple(part for part in parts if part != "")

    def _candidates(self, name: str) -> tuple[int, ...]:
        number = -1
        if name.isascii() and name.isdigit() and not (len(name) > 1 and name[0] == "0") and len(name) <= 9:
            number = int(name)
        if number >= 0:
            return (number,) if number <= len(self.group_names) else ()
        return tuple(index for index, group in enumerate(self.group_names, 1) if group == name)


def _reference(text: str) -> tuple[str, str] | None:
    """Read the name after a ``$``: ``name`` or ``{name}`` (letters, digits, ``_``); ``None``: malformed."""
    brace = text.startswith("{")
    body = text[1:] if brace else text
    end = 0
    while end < len(body) and (body[end].isalpha() or body[end].isdecimal() or body[end] == "_"):
        end += 1
    if end == 0:
        return None
    if brace:
        if not body.startswith("}", end):
            return None
        return body[:end], body[end + 1 :]
    return body[:end], body[end:]


def _expand(parts: tuple[Part, ...], groups: Groups) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        for index in part:
            text = groups(index)
            if text is not None:
                out.append(text)
                break
    return "".join(out)


def expander(parts: tuple[Part, ...]) -> Callable[[Groups], str] | str:
    """Return the template's constant text, or a function expanding it against a match."""
    if not parts:
        return ""
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    if len(parts) == 1 and isinstance(parts[0], tuple) and len(parts[0]) == 1:
        (index,) = parts[0]
        return lambda groups: groups(index) or ""
    return lambda groups: _expand(parts, groups)


def replace_all(regex: Regex, parts: tuple[Part, ...], source: str) -> str:
    """Go's ``Regexp.ReplaceAllString`` (needed when the regex is not anchored at both ends)."""
    pattern = regex.pattern
    out: list[str] = []
    last_end = 0
    position = 0
    while position <= len(source):
        found = pattern.search(source, position)
        if found is None:
            break
        start, end = found.span()
        out.append(source[last_end:start])
        if end > last_end or start == 0:
            out.append(_expand(parts, found.group))
        last_end = end
        position = max(position + 1, end)
    out.append(source[last_end:])
    return "".join(out)
