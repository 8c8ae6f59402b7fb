"""RE2's flags and ASCII character classes, and how a parsed atom is written as Python ``re`` text.

The tables and emitters :mod:`.re2`'s parser builds its translation from: the Perl flags as
bits, the Perl (``\\d \\s \\w``) and POSIX (``[[:alpha:]]``) classes RE2 defines (all ASCII),
and functions that write literals, classes and concatenations so that ``re`` reads them with
RE2's meaning and no global flags.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALNUM",
    "DOTNL",
    "FLAG_BITS",
    "FOLD",
    "HEX",
    "MAX_REPEAT",
    "MAX_RUNE",
    "NONGREEDY",
    "NOT_WORD_BOUNDARY",
    "OCTAL",
    "ONELINE",
    "PERL_CLASSES",
    "POSIX_CLASSES",
    "WORD_BOUNDARY",
    "Item",
    "class_text",
    "concat",
    "escape",
    "negate",
    "repeat_spec",
]

FOLD = 1  # (?i)
DOTNL = 2  # (?s)
ONELINE = 4  # not (?m): ^ and $ are the ends of the text
NONGREEDY = 8  # (?U)
FLAG_BITS = {"i": FOLD, "m": ONELINE, "s": DOTNL, "U": NONGREEDY}

MAX_RUNE = 0x10FFFF
MAX_REPEAT = 1000

Ranges = tuple[tuple[int, int], ...]

# RE2's Perl and POSIX classes (regexp/syntax/perl_groups.go): all ASCII.
_DIGIT: Ranges = ((0x30, 0x39),)
_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
PERL_CLASSES: dict[str, Ranges] = {"d": _DIGIT, "s": ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)), "w": _WORD}
POSIX_CLASSES: dict[str, Ranges] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": _DIGIT,
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": _WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
_W = "[0-9A-Za-z_]"
WORD_BOUNDARY = f"(?:(?<={_W})(?!{_W})|(?<!{_W})(?={_W}))"
NOT_WORD_BOUNDARY = f"(?:(?<={_W})(?={_W})|(?<!{_W})(?!{_W}))"
OCTAL = "01234567"
HEX = "0123456789abcdefABCDEF"
ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@dataclass
class Item:
    """One parsed atom (or repeat, or group) of a concatenation, already emitted."""

    text: str
    atomic: bool  # may take a quantifier as it is
    weight: int = 1  # product of the nested {n,m} counts, as Go's repeatIsValid sees it
    literal: str | None = None  # a plain (case-sensitive) literal character
    folded: str | None = None  # a case-insensitive literal character


def escape(code: int) -> str:
    """Write one code point so that ``re`` reads it literally, in or out of a class."""
    char = chr(code)
    if char in ALNUM or char == "_":
        return char
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def negate(ranges: Ranges) -> Ranges:
    """Return the code points (up to U+10FFFF) outside ``ranges``."""
    out: list[tuple[int, int]] = []
    low = 0
    for lo, hi in sorted(ranges):
        if lo > low:
            out.append((low, lo - 1))
        low = max(low, hi + 1)
    if low <= MAX_RUNE:
        out.append((low, MAX_RUNE))
    return tuple(out)


def class_text(ranges: Ranges, negated: bool, flags: int) -> str:
    """Emit a character class; case folding is applied before negation, as RE2 does."""
    body = "".join(escape(lo) if lo == hi else f"{escape(lo)}-{escape(hi)}" for lo, hi in ranges)
    text = f"[^{body}]" if negated else f"[{body}]"
    if not ranges:
        text = "[\\x00-\\U0010ffff]" if negated else "[^\\x00-\\U0010ffff]"
    return f"(?i:{text})" if flags & FOLD else text


def concat(items: list[Item]) -> str:
    """Emit a concatenation, merging runs of case-insensitive literals into one group."""
    parts: list[str] = []
    run: list[str] = []
    for item in items:
        if item.folded is not None:
            run.append(escape(ord(item.folded)))
            continue
        if run:
            parts.append("(?i:" + "".join(run) + ")")
            run = []
        parts.append(item.text)
    if run:
        parts.append("(?i:" + "".join(run) + ")")
    return "".join(parts)


def repeat_spec(s: str, i: int) -> tuple[int, int, int] | None:
    """Parse ``{n}``, ``{n,}`` or ``{n,m}`` at ``i`` into (min, max or -1, end); ``None``: literal ``{``.

    Numbers with a leading zero make it a literal, as in Go; too large ones give min ``-1``.
    """

    def number(k: int) -> tuple[int, int] | None:
        end = k
        while end < len(s) and s[end] in "0123456789":
            end += 1
        digits = s[k:end]
        if not digits or (len(digits) > 1 and digits[0] == "0"):
            return None
        return (int(digits) if len(digits) <= 8 else -1), end

    parsed = number(i + 1)
    if parsed is None:
        return None
    low, k = parsed
    high = low
    if k < len(s) and s[k] == ",":
        k += 1
        if k < len(s) and s[k] == "}":
            high = -1
        else:
            upper = number(k)
            if upper is None:
                return None
            high, k = upper
            if high < 0:
                low = -1
    if k >= len(s) or s[k] != "}":
        return None
    return low, high, k + 1
