"""Go's RE2 regular expressions (the syntax Prometheus's relabelling uses), translated to Python ``re``.

Python's ``re`` reads much of RE2's syntax with a different meaning, so a pattern is never
handed to ``re`` as written: :func:`translate` parses it as Go's ``regexp/syntax`` does (Perl
flags), rejects what RE2 rejects with Go's error texts, and emits an explicit Python pattern
that needs no global flags. Where the two differ:

* ``\\d \\w \\s \\b \\B`` and ``[[:alpha:]]``-style classes are ASCII in RE2 (Unicode in Python);
  ``\\s`` is ``[\\t\\n\\f\\r ]``. ``\\z`` is Python's ``\\Z``; RE2 rejects ``\\Z``.
* ``$`` (without ``(?m)``) is the end of the text; Python's also matches before a final newline.
* ``(?i)``, ``(?s)``, ``(?m)``, ``(?U)`` may appear anywhere and last to the end of the group;
  each atom is emitted with its own flags, ``(?U)`` by swapping greedy and lazy quantifiers.
* ``\\Q...\\E``, ``\\x{10FFFF}``, ``(?<name>...)``, octal ``\\123`` and group names that start
  with a digit are RE2 syntax; ``a{,3}`` and ``a{01}`` are literal text in RE2 (repeats in
  Python); repeat counts above 1000 (also as a product when nested) are errors.
* Rejected as RE2 does: backreferences, look-around, atomic groups, possessive quantifiers,
  conditionals, comments, ``\\C``, ``\\Z``, ``\\e``, ``[\\b]``, the ``x``/``a``/``L``/``u`` flags.
* Not supported here (RE2 has them): Unicode classes ``\\pL``, ``\\p{Greek}``: a clear error.

Case-insensitive matching is Python's, which folds a few characters RE2 does not (U+0130 and
U+0131, the dotted and dotless I, match ``(?i)i``). Python's ``re`` backtracks, so unlike RE2
a nested quantifier such as ``(a+)+`` can take exponential time on a long value that does not
match.
"""

from __future__ import annotations

from dataclasses import dataclass

from .re2_syntax import (
    ALNUM,
    DOTNL,
    FLAG_BITS,
    FOLD,
    HEX,
    MAX_REPEAT,
    MAX_RUNE,
    NONGREEDY,
    NOT_WORD_BOUNDARY,
    OCTAL,
    ONELINE,
    PERL_CLASSES,
    POSIX_CLASSES,
    WORD_BOUNDARY,
    Item,
    class_text,
    concat,
    escape,
    negate,
    repeat_spec,
)

__all__ = ["RE2Error", "Translation", "translate"]

class RE2Error(ValueError):
    """The pattern is not valid RE2 (Go's message), or uses RE2 syntax not supported here."""

    def __init__(self, code: str, expr: str) -> None:
        self.code = code
        self.expr = expr
        super().__init__(f"error parsing regexp: {code}: `{expr}`")


@dataclass(frozen=True)
class Translation:
    """A parsed RE2 pattern as Python ``re`` source.

    Attributes:
        pattern: Python ``re`` source; compile it with no flags.
        group_names: each capture group's name in order (``""`` if unnamed); groups are
            numbered as in RE2, so Python's group ``i`` is RE2's group ``i``.
        literals: when the whole pattern is an alternation of plain strings (no flags, no
            metacharacters), those strings: a match is then set membership.
    """

    pattern: str
    group_names: tuple[str, ...]
    literals: tuple[str, ...] | None


@dataclass
class _Frame:
    """An open group: its finished alternatives and the concatenation being read."""

    capture: int  # 0: not capturing
    saved_flags: int  # restored at the closing paren
    branches: list[list[Item]]
    items: list[Item]


def translate(source: str) -> Translation:
    """Parse ``source`` as Go's ``regexp.Compile`` does and emit the equivalent Python pattern.

    Raises:
        RE2Error: ``source`` is not valid RE2, or uses ``\\p`` Unicode classes.
    """
    return _Parser(source).parse()


class _Parser:
    """A one-pass parser after Go's ``regexp/syntax`` (with ``syntax.Perl`` flags)."""

    def __init__(self, source: str) -> None:
        self.s = source
        self.flags = ONELINE
        self.names: list[str] = []
        self.stack = [_Frame(0, ONELINE, [], [])]

    def parse(self) -> Translation:
        s = self.s
        i = 0
        last_repeat = -1  # start of the previous token when it was a repetition operator
        while i < len(s):
            start = i
            repeated = False
            c = s[i]
            if c == "(":
                if s.startswith("(?", i):
                    i = self._perl_flags(i)
                else:
                    self._open(len(self.names) + 1, "")
                    i += 1
            elif c == "|":
                frame = self.stack[-1]
                frame.branches.append(frame.items)
                frame.items = []
                i += 1
            elif c == ")":
                self._close()
                i += 1
            elif c == "^":
                self._push(Item("\\A" if self.flags & ONELINE else "(?m:^)", atomic=False))
                i += 1
            elif c == "$":
                self._push(Item("\\Z" if self.flags & ONELINE else "(?m:$)", atomic=False))
                i += 1
            elif c == ".":
                self._push(Item("(?s:.)" if self.flags & DOTNL else "[^\\n]", atomic=True))
                i += 1
            elif c == "[":
                i = self._class(i)
            elif c in "*+?":
                i = self._repeat(c, 0, 0, start, i + 1, last_repeat)
                repeated = True
            elif c == "{":
                parsed = repeat_spec(s, i)
                if parsed is None:
                    self._literal(ord("{"))
                    i += 1
                else:
                    low, high, after = parsed
                    if low < 0 or low > MAX_REPEAT or high > MAX_REPEAT or 0 <= high < low:
                        raise RE2Error("invalid repeat count", s[start:after])
                    i = self._repeat("{", low, high, start, after, last_repeat)
                    repeated = True
            elif c == "\\":
                i = self._backslash(i)
            else:
                self._literal(ord(c))
                i += 1
            last_repeat = start if repeated else -1
        if len(self.stack) != 1:
            raise RE2Error("missing closing )", s)
        top = self.stack[0]
        branches = [*top.branches, top.items]
        literals: tuple[str, ...] | None = None
        if all(item.literal is not None for branch in branches for item in branch):
            literals = tuple("".join(item.literal or "" for item in branch) for branch in branches)
        return Translation("|".join(concat(branch) for branch in branches), tuple(self.names), literals)

    # Groups and flags.

    def _open(self, capture: int, name: str) -> None:
        if capture:
            self.names.append(name)
        self.stack.append(_Frame(capture, self.flags, [], []))

    def _close(self) -> None:
        if len(self.stack) == 1:
            raise RE2Error("unexpected )", self.s)
        frame = self.stack.pop()
        self.flags = frame.saved_flags
        branches = [*frame.branches, frame.items]
        body = "|".join(concat(branch) for branch in branches)
        weight = max([item.weight for branch in branches for item in branch] or [1])
        self._push(Item(f"({body})" if frame.capture else f"(?:{body})", atomic=True, weight=weight))

    def _perl_flags(self, i: int) -> int:
        """Read ``(?P<name>``, ``(?<name>``, ``(?flags)`` or ``(?flags:``; return where parsing goes on."""
        s = self.s
        t = s[i:]
        with_p = len(t) > 4 and t[2] == "P" and t[3] == "<"
        if with_p or (len(t) > 3 and t[2] == "<"):
            begin = 4 if with_p else 3
            end = t.find(">")
            if end < 0:
                raise RE2Error("invalid named capture", t)
            name = t[begin:end]
            if not name or any(ch not in ALNUM and ch != "_" for ch in name):
                raise RE2Error("invalid named capture", t[: end + 1])
            self._open(len(self.names) + 1, name)
            return i + end + 1
        flags = self.flags
        negate = False
        saw_flag = False
        j = i + 2
        while j < len(s):
            c = s[j]
            j += 1
            if c in FLAG_BITS:
                bit = FLAG_BITS[c]
                # (?m) clears OneLine; every other letter sets its flag.
                flags = flags & ~bit if (c == "m") != negate else flags | bit
                saw_flag = True
            elif c == "-":
                if negate:
                    break
                negate = True
                saw_flag = False
            elif c in ":)":
                if negate and not saw_flag:
                    break
                if c == ":":
                    self._open(0, "")
                self.flags = flags
                return j
            else:
                break
        raise RE2Error("invalid or unsupported Perl syntax", s[i:j])

    # Atoms.

    def _push(self, item: Item) -> None:
        self.stack[-1].items.append(item)

    def _literal(self, code: int) -> None:
        char = chr(code)
        if self.flags & FOLD:
            self._push(Item(f"(?i:{escape(code)})", atomic=True, folded=char))
        else:
            self._push(Item(escape(code), atomic=True, literal=char))

    def _backslash(self, i: int) -> int:
        s = self.s
        nxt = s[i + 1 : i + 2]
        if nxt == "A":
            self._push(Item("\\A", atomic=False))
        elif nxt == "z":
            self._push(Item("\\Z", atomic=False))
        elif nxt == "b":
            self._push(Item(WORD_BOUNDARY, atomic=False))
        elif nxt == "B":
            self._push(Item(NOT_WORD_BOUNDARY, atomic=False))
        elif nxt == "C":
            raise RE2Error("invalid escape sequence", "\\C")
        elif nxt == "Q":
            end = s.find("\\E", i + 2)
            text = s[i + 2 :] if end < 0 else s[i + 2 : end]
            for char in text:
                self._literal(ord(char))
            return len(s) if end < 0 else end + 2
        elif nxt in ("p", "P"):
            raise RE2Error("Unicode classes (\\p, \\P) are not supported by prometheus-rw-bridge", s[i:])
        elif nxt and nxt in "dDsSwW":
            ranges = PERL_CLASSES[nxt.lower()]
            self._push(Item(class_text(ranges, nxt.isupper(), self.flags), atomic=True))
        else:
            code, j = self._escape_char(i)
            self._literal(code)
            return j
        return i + 2

    def _escape_char(self, i: int) -> tuple[int, int]:
        """Read the one-character escape at ``s[i] == '\\'``; return its code point and the next index."""
        s = self.s
        if i + 1 >= len(s):
            raise RE2Error("trailing backslash at end of expression", "")
        c = s[i + 1]
        j = i + 2
        if ord(c) < 0x80 and c not in ALNUM:
            return ord(c), j  # escaped punctuation is itself (\_ included)
        if c in "1234567" and not (j < len(s) and s[j] in OCTAL):
            raise RE2Error("invalid escape sequence", s[i:j])  # a backreference
        if c in OCTAL:
            digits = c
            while len(digits) < 3 and j < len(s) and s[j] in OCTAL:
                digits += s[j]
                j += 1
            return int(digits, 8), j
        if c == "x":
            if s.startswith("{", j):
                end = s.find("}", j + 1)
                digits = s[j + 1 : end] if end > 0 else ""
                if end < 0 or not digits or any(d not in HEX for d in digits) or int(digits, 16) > MAX_RUNE:
                    bad = s[i:] if end < 0 else s[i : end + 1]
                    raise RE2Error("invalid escape sequence", bad)
                return int(digits, 16), end + 1
            digits = s[j : j + 2]
            if len(digits) == 2 and all(d in HEX for d in digits):
                return int(digits, 16), j + 2
            raise RE2Error("invalid escape sequence", s[i : j + 2])
        simple = {"a": 0x07, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}
        if c in simple:
            return simple[c], j
        raise RE2Error("invalid escape sequence", s[i:j])

    def _class(self, i: int) -> int:
        """Read a bracketed class starting at ``s[i] == '['``; return the index after its ``]``."""
        s = self.s
        j = i + 1
        negated = s.startswith("^", j)
        if negated:
            j += 1
        ranges: list[tuple[int, int]] = []
        first = True  # a leading ']' is a literal
        while j >= len(s) or s[j] != "]" or first:
            first = False
            if len(s) - j > 2 and s.startswith("[:", j):
                end = s.find(":]", j + 2)
                if end >= 0:
                    name = s[j + 2 : end]
                    group = POSIX_CLASSES.get(name[1:] if name.startswith("^") else name)
                    if group is None:
                        raise RE2Error("invalid character class range", s[j : end + 2])
                    ranges.extend(negate(group) if name.startswith("^") else group)
                    j = end + 2
                    continue
            if s.startswith(("\\p", "\\P"), j):
                raise RE2Error("Unicode classes (\\p, \\P) are not supported by prometheus-rw-bridge", s[j:])
            if s.startswith("\\", j) and s[j + 1 : j + 2] in ("d", "D", "s", "S", "w", "W"):
                letter = s[j + 1]
                group = PERL_CLASSES[letter.lower()]
                ranges.extend(negate(group) if letter.isupper() else group)
                j += 2
                continue
            start = j
            low, j = self._class_char(j, i)
            high = low
            if len(s) - j >= 2 and s[j] == "-" and s[j + 1] != "]":
                high, j = self._class_char(j + 1, i)
                if high < low:
                    raise RE2Error("invalid character class range", s[start:j])
            ranges.append((low, high))
        self._push(Item(class_text(tuple(ranges), negated, self.flags), atomic=True))
        return j + 1

    def _class_char(self, j: int, class_start: int) -> tuple[int, int]:
        if j >= len(self.s):
            raise RE2Error("missing closing ]", self.s[class_start:])
        if self.s[j] == "\\":
            return self._escape_char(j)
        return ord(self.s[j]), j + 1

    # Repetition.

    def _repeat(self, op: str, low: int, high: int, start: int, after: int, last_repeat: int) -> int:
        s = self.s
        flags = self.flags
        if after < len(s) and s[after] == "?":
            after += 1
            flags ^= NONGREEDY
        if last_repeat >= 0:
            raise RE2Error("invalid nested repetition operator", s[last_repeat:after])
        items = self.stack[-1].items
        if not items:
            raise RE2Error("missing argument to repetition operator", s[start:after])
        sub = items.pop()
        text = sub.text if sub.atomic else f"(?:{sub.text})"
        if op == "{":
            count = high if high >= 0 else low
            weight = 0 if count == 0 else count * sub.weight
            if (low >= 2 or high >= 2) and weight > MAX_REPEAT:
                raise RE2Error("invalid repeat count", s[start:after])
            quantifier = f"{{{low}}}" if low == high else f"{{{low},}}" if high < 0 else f"{{{low},{high}}}"
        else:
            weight = sub.weight
            quantifier = op
        if flags & NONGREEDY:
            quantifier += "?"
        items.append(Item(text + quantifier, atomic=False, weight=weight))
        return after
