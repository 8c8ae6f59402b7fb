"""RE2 (Go regexp/syntax) patterns translated for Python's re: where the two read a pattern
differently, the translation must mean what Go means; what Go rejects must be rejected."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prometheus_rw_bridge._protocol.re2 import RE2Error, translate


def go_match(pattern: str, value: str) -> bool:
    """Tell whether Go's ``regexp.MatchString(pattern, value)`` would be true (unanchored search)."""
    return re.compile(translate(pattern).pattern).search(value) is not None


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        # Perl classes and word boundaries are ASCII in RE2.
        pytest.param(r"^\d$", "٣", False, id="digit-ascii"),
        pytest.param(r"^\d$", "7", True, id="digit"),
        pytest.param(r"^\w$", "é", False, id="word-ascii"),
        pytest.param(r"^\s$", "\v", False, id="space-has-no-vt"),
        pytest.param(r"^\s$", "\f", True, id="space-ff"),
        pytest.param(r"^[[:space:]]$", "\v", True, id="posix-space-has-vt"),
        pytest.param(r"^\W$", "é", True, id="nonword"),
        pytest.param(r"^\bé", "é", False, id="non-ascii-letter-is-not-a-word-character"),
        pytest.param(r"a\b", "aé", True, id="boundary-before-non-ascii"),
        pytest.param(r"^\B$", "", True, id="non-boundary-on-empty"),
        pytest.param(r"^[^\d\s]+$", "ab", True, id="negated-perl-in-class"),
        pytest.param(r"^[\D]$", "a", True, id="negated-perl-class-inside-brackets"),
        pytest.param(r"^[\D]$", "1", False, id="negated-perl-class-inside-brackets-digit"),
        pytest.param(r"^[[:^alpha:]]$", "1", True, id="negated-posix"),
        pytest.param(r"^[[:alpha:]]$", "é", False, id="posix-ascii"),
        pytest.param(r"^[[:word:][:punct:]]+$", "a_b-c!", True, id="posix-union"),
        # Anchors: $ is the very end; \z is RE2's end of text.
        pytest.param("^a$", "a\n", False, id="dollar-not-before-final-newline"),
        pytest.param(r"^a\z", "a\n", False, id="z-end"),
        pytest.param("(?m)^b$", "a\nb\nc", True, id="multiline"),
        pytest.param("^b$", "a\nb\nc", False, id="oneline"),
        # Dot and flags, which may sit anywhere and last to the end of their group.
        pytest.param("^a.b$", "a\nb", False, id="dot-no-newline"),
        pytest.param("(?s)^a.b$", "a\nb", True, id="s-flag"),
        pytest.param("^a(?s:.)b$", "a\nb", True, id="scoped-s"),
        pytest.param("(?s)^a(?-s:.)b$", "a\nb", False, id="negated-s"),
        pytest.param("^a(?i)b$", "aB", True, id="mid-pattern-i"),
        pytest.param("^a(?i)b$", "AB", False, id="i-after-a-only"),
        pytest.param("^(?:a(?i)b|c)$", "C", True, id="i-lasts-across-alternatives"),
        pytest.param("^(?:(?i)a)b$", "AB", False, id="i-ends-with-group"),
        pytest.param("^(?i)[a-c]+$", "AbC", True, id="fold-class"),
        pytest.param("^(?i)[^a]$", "A", False, id="fold-negated-class"),
        pytest.param("^(?i:k)$", "\u212a", True, id="kelvin-sign-folds-to-k"),
        pytest.param("^(?U)(a+)(a*)$", "aaa", True, id="ungreedy"),
        # RE2 syntax Python does not have, or reads otherwise.
        pytest.param(r"^\Qa.b*\E$", "a.b*", True, id="quote"),
        pytest.param(r"^\Qa.b*\E$", "axbb", False, id="quote-is-literal"),
        pytest.param(r"^\Qa.b", "a.b", True, id="quote-to-end"),
        pytest.param(r"^\x{1F600}\x41$", "😀A", True, id="hex-escapes"),
        pytest.param(r"^\101\0$", "A\0", True, id="octal-escapes"),
        pytest.param(r"^\12$", "\n", True, id="two-digit-octal-not-backreference"),
        pytest.param("^a{,3}$", "a{,3}", True, id="brace-comma-literal"),
        pytest.param("^a{,3}$", "aa", False, id="brace-comma-not-a-repeat"),
        pytest.param("^a{01}$", "a{01}", True, id="leading-zero-literal"),
        pytest.param("^a{2}$", "aa", True, id="repeat"),
        pytest.param("^a{2,}$", "aaaa", True, id="repeat-open"),
        pytest.param("^a{1,2}?a$", "aa", True, id="repeat-lazy"),
        pytest.param("^x{$", "x{", True, id="lone-brace"),
        pytest.param("^[]a]+$", "]a", True, id="leading-bracket-literal"),
        pytest.param("^[^]a]$", "b", True, id="negated-leading-bracket"),
        pytest.param("^[a-]+$", "a-", True, id="trailing-dash"),
        pytest.param("^[[a]+$", "[a", True, id="bracket-in-class"),
        pytest.param("^[a&&b]+$", "&", True, id="no-set-operations"),
        pytest.param(r"^(?P<n>a)(?<m>b)$", "ab", True, id="named-groups"),
        pytest.param("^(?)a$", "a", True, id="empty-flags"),
        pytest.param("^(?i-s:a.)$", "A\n", False, id="flags-and-negation"),
        pytest.param("^(a*)*$", "aa", True, id="star-of-star-group"),
        pytest.param("^a*(?i)*$", "aa", True, id="star-after-flag-group"),
        pytest.param("^$", "", True, id="empty"),
        pytest.param("^(|a)$", "a", True, id="empty-alternative"),
        pytest.param(r"^\^\$\.\_$", "^$._", True, id="escaped-punctuation"),
        pytest.param(r"^[\x{0}-\x{10FFFF}]$", "\U0010ffff", True, id="whole-range"),
        pytest.param(r"^[^\x{0}-\x{10FFFF}]$", "a", False, id="empty-class"),
        pytest.param(r"^\A\z$", "", True, id="text-anchors"),
        pytest.param(r"^(?:\A)*a$", "a", True, id="repeated-anchor"),
    ],
)
def test_patterns_mean_what_they_mean_in_go(pattern: str, value: str, matches: bool) -> None:
    assert go_match(pattern, value) is matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        # Go's own error texts (regexp/syntax).
        pytest.param("a(", "missing closing ): `a(`", id="missing-paren"),
        pytest.param("a)", "unexpected ): `a)`", id="unexpected-paren"),
        pytest.param("[a", "missing closing ]: `[a`", id="missing-bracket"),
        pytest.param("[z-a]", "invalid character class range: `z-a`", id="reversed-range"),
        pytest.param("[[:foo:]]", "invalid character class range: `[:foo:]`", id="unknown-posix"),
        pytest.param("a**", "invalid nested repetition operator: `**`", id="double-star"),
        pytest.param("a*+", "invalid nested repetition operator: `*+`", id="possessive"),
        pytest.param("a++", "invalid nested repetition operator: `++`", id="possessive-plus"),
        pytest.param("a???", "invalid nested repetition operator: `???`", id="triple-question"),
        pytest.param("a{2}{3}", "invalid nested repetition operator: `{2}{3}`", id="repeat-repeat"),
        pytest.param("*", "missing argument to repetition operator: `*`", id="star-alone"),
        pytest.param("(*)", "missing argument to repetition operator: `*`", id="star-after-paren"),
        pytest.param("a|?", "missing argument to repetition operator: `?`", id="question-after-bar"),
        pytest.param("{2}", "missing argument to repetition operator: `{2}`", id="repeat-alone"),
        pytest.param("a{1001}", "invalid repeat count: `{1001}`", id="repeat-too-big"),
        pytest.param("a{2,1}", "invalid repeat count: `{2,1}`", id="repeat-min-over-max"),
        pytest.param("(a{500}){3}", "invalid repeat count: `{3}`", id="nested-repeat-product"),
        pytest.param("((a{10}){10}){11}", "invalid repeat count", id="nested-repeat-product-deep"),
        pytest.param(r"\1", "invalid escape sequence: `\\1`", id="backreference"),
        pytest.param(r"(a)\1", "invalid escape sequence: `\\1`", id="backreference-to-group"),
        pytest.param(r"\8", "invalid escape sequence: `\\8`", id="eight"),
        pytest.param(r"a\Z", "invalid escape sequence: `\\Z`", id="python-end"),
        pytest.param(r"\e", "invalid escape sequence: `\\e`", id="escape-e"),
        pytest.param(r"\C", "invalid escape sequence: `\\C`", id="any-byte"),
        pytest.param(r"[\b]", "invalid escape sequence: `\\b`", id="backspace-in-class"),
        pytest.param(r"\é", "invalid escape sequence: `\\é`", id="non-ascii-escape"),
        pytest.param(r"\x{}", "invalid escape sequence", id="empty-hex"),
        pytest.param(r"\x{110000}", "invalid escape sequence", id="hex-too-big"),
        pytest.param(r"\xZZ", "invalid escape sequence", id="bad-hex"),
        pytest.param("a\\", "trailing backslash at end of expression", id="trailing-backslash"),
        pytest.param("(?=a)", "invalid or unsupported Perl syntax: `(?=`", id="lookahead"),
        pytest.param("(?!a)", "invalid or unsupported Perl syntax: `(?!`", id="negative-lookahead"),
        pytest.param("(?<=a)", "invalid named capture", id="lookbehind"),
        pytest.param("(?<!a)", "invalid named capture", id="negative-lookbehind"),
        pytest.param("(?>a)", "invalid or unsupported Perl syntax: `(?>`", id="atomic"),
        pytest.param("(?#c)", "invalid or unsupported Perl syntax: `(?#`", id="comment"),
        pytest.param("(?P=n)", "invalid or unsupported Perl syntax: `(?P`", id="named-backreference"),
        pytest.param("(?(1)a|b)", "invalid or unsupported Perl syntax: `(?(`", id="conditional"),
        pytest.param("(?x)a", "invalid or unsupported Perl syntax: `(?x`", id="verbose-flag"),
        pytest.param("(?a)a", "invalid or unsupported Perl syntax: `(?a`", id="ascii-flag"),
        pytest.param("(?i-)a", "invalid or unsupported Perl syntax: `(?i-)`", id="dangling-negation"),
        pytest.param("(?--i)a", "invalid or unsupported Perl syntax: `(?--`", id="double-negation"),
        pytest.param("(?P<n!>a)", "invalid named capture: `(?P<n!>`", id="bad-name"),
        pytest.param("(?P<>a)", "invalid named capture: `(?P<>`", id="empty-name"),
        pytest.param("(?P<n", "invalid named capture: `(?P<n`", id="unclosed-name"),
        pytest.param(r"\pL", "not supported by prometheus-rw-bridge", id="unicode-class"),
        pytest.param(r"[\p{Greek}]", "not supported by prometheus-rw-bridge", id="unicode-class-in-brackets"),
    ],
)
def test_what_go_rejects_is_rejected(pattern: str, message: str) -> None:
    with pytest.raises(RE2Error) as caught:
        translate(pattern)
    assert str(caught.value).startswith("error parsing regexp: ")
    assert message in str(caught.value)


def test_groups_are_numbered_as_in_go_and_named_freely() -> None:
    translation = translate(r"(a)(?:b)(?P<1x>c)(?<name>d)((e))")
    assert translation.group_names == ("", "1x", "name", "", "")
    match = re.compile(translation.pattern).fullmatch("abcde")
    assert match is not None
    assert match.groups() == ("a", "c", "d", "e", "e")


def test_literal_alternations_are_reported_for_set_membership() -> None:
    assert translate("foo|bar|").literals == ("foo", "bar", "")
    assert translate(r"a\.b").literals == ("a.b",)
    assert translate("a{,2}").literals == ("a{,2}",)
    for not_literal in ("a|b*", "(a)", "(?i)a", "a.", "[a]", "^a"):
        assert translate(not_literal).literals is None, not_literal


@given(st.text(max_size=20))
def test_quoted_text_matches_only_itself(text: str) -> None:
    pattern = r"^\Q" + text.replace("\\E", "") + r"\E$"
    literal = text.replace("\\E", "")
    assert go_match(pattern, literal)
    assert not go_match(pattern, literal + "x")


@given(st.text(alphabet="ab|()*+?{},.0123^$[]-\\", max_size=10))
def test_every_accepted_pattern_compiles_in_python(pattern: str) -> None:
    try:
        translation = translate(pattern)
    except RE2Error:
        return
    re.compile(translation.pattern)
