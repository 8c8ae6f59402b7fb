"""Parsers of setting values, shared by arguments and environment variables.

Each parser takes the raw value (a string from the environment, or whatever an argument holds)
and ``where``, the name used in error messages, and returns the typed value or raises
:class:`~prometheus_rw_bridge.ConfigurationError` naming ``where``, the value (masked when
secret) and what is allowed.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import urllib.parse
from collections.abc import Sequence

from .._exceptions import ConfigurationError
from .._redact import MASK, safe_url

__all__ = [
    "fail",
    "parse_age_limit",
    "parse_bool",
    "parse_directory",
    "parse_duration",
    "parse_file",
    "parse_names",
    "parse_nonempty",
    "parse_positive_int",
    "parse_protocol",
    "parse_proxy",
    "parse_regex",
    "parse_scopes",
    "parse_secret",
    "parse_size",
    "parse_text",
    "parse_url",
    "split_list",
]


def fail(where: str, value: object, allowed: str, *, secret: bool = False) -> ConfigurationError:
    """Build the error naming ``where``, showing ``value`` (masked if secret) and what is allowed."""
    shown = MASK if secret else (safe_url(value) if isinstance(value, str) and "://" in value else value)
    return ConfigurationError(f"{where}={shown!r} is not valid: {allowed}")


_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_ALLOWED = "expected a duration greater than zero: seconds (15, 0.5) or 15s, 500ms, 1m30s, 1h"


def parse_duration(value: object, where: str) -> float:
    """Parse seconds (a number, ``timedelta`` or ``15s``/``500ms``/``1m30s``/``1h``) greater than zero."""
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise fail(where, value, _DURATION_ALLOWED) from None
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise fail(where, value, _DURATION_ALLOWED)
    if not math.isfinite(seconds) or seconds <= 0:
        raise fail(where, value, _DURATION_ALLOWED)
    return seconds


def parse_age_limit(value: object, where: str) -> float:
    """Parse a duration as :func:`parse_duration` does, or ``0`` (``0s``) for "no limit"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    if isinstance(value, str) and value.strip().lower() in ("0", "0s", "0ms", "off"):
        return 0.0
    try:
        return parse_duration(value, where)
    except ConfigurationError:
        raise fail(where, value, "expected a duration (seconds, or 30m, 1h, 90s) or 0 for no limit") from None


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def parse_bool(value: object, where: str) -> bool:
    """Parse a boolean: ``True``/``False`` or true/false, 1/0, yes/no in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise fail(where, value, "expected a boolean: true/false, 1/0, yes/no")


def parse_positive_int(value: object, where: str) -> int:
    """Parse a whole number greater than zero."""
    allowed = "expected a whole number greater than zero"
    if isinstance(value, bool):
        raise fail(where, value, allowed)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise fail(where, value, allowed)
    if number <= 0:
        raise fail(where, value, allowed)
    return number


_SIZE_RE = re.compile(r"(\d+)\s*(b|kb|mb|gb|kib|mib|gib)?")
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}


def parse_size(value: object, where: str) -> int:
    """Parse a size in bytes, optionally with a unit (KB, MB, GB, KiB, MiB, GiB)."""
    allowed = "expected a size greater than zero: bytes (1048576) or with a unit (64MiB, 500KB, 1GiB)"
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (match := _SIZE_RE.fullmatch(value.strip().lower())):
        number = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        raise fail(where, value, allowed)
    if number <= 0:
        raise fail(where, value, allowed)
    return number


def parse_text(value: object, where: str) -> str:
    """Accept any string (empty included)."""
    if isinstance(value, str):
        return value
    raise fail(where, value, "expected a string")


def parse_nonempty(value: object, where: str, *, secret: bool = False) -> str:
    """Accept a non-empty string; stripped unless secret."""
    if isinstance(value, str) and value.strip():
        return value.strip() if not secret else value
    raise fail(where, value, "expected a non-empty string", secret=secret)


def parse_secret(value: object, where: str) -> str:
    """Accept a non-empty secret string, never showing it in an error."""
    return parse_nonempty(value, where, secret=True)


def parse_file(value: object, where: str) -> str:
    """Accept the path of a file that can be opened and read now."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    path = parse_nonempty(value, where)
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as exc:
        raise fail(where, path, f"expected a readable file ({exc.strerror or exc})") from None
    return path


def parse_protocol(value: object, where: str) -> str:
    """Accept ``1.0``, ``2.0`` or ``auto``."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text in ("1.0", "2.0", "auto"):
        return str(text)
    raise fail(where, value, "expected one of '1.0', '2.0', 'auto'")


def parse_url(value: object, where: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """Accept an absolute URL with one of ``schemes`` and a host."""
    allowed = f"expected an absolute URL with scheme {' or '.join(schemes)} and a host"
    if not isinstance(value, str):
        raise fail(where, value, allowed)
    try:
        parts = urllib.parse.urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise fail(where, value, allowed) from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise fail(where, value, allowed)
    return value.strip()


def parse_proxy(value: object, where: str) -> str:
    """Accept a proxy URL (http, https, socks5, socks5h)."""
    return parse_url(value, where, ("http", "https", "socks5", "socks5h"))


def parse_scopes(value: object, where: str) -> tuple[str, ...]:
    """Parse a list of words (OAuth2 scopes): separated by commas or spaces, or a list in code."""
    words = split_list(value)
    if not all(isinstance(word, str) and word.strip() and " " not in word.strip() for word in words):
        raise fail(where, value, "expected words separated by commas or spaces, or a list of them")
    if not words:
        raise fail(where, value, "expected at least one scope")
    return tuple(str(word).strip() for word in words)


def parse_directory(value: object, where: str) -> str:
    """Parse the path of a directory, which need not exist yet (it is created); not an existing file."""
    path = parse_nonempty(os.fspath(value) if isinstance(value, os.PathLike) else value, where)
    if os.path.exists(path) and not os.path.isdir(path):
        raise fail(where, value, "expected a directory (it is created if missing), not a file")
    return path


def parse_regex(value: object, where: str) -> re.Pattern[str]:
    """Compile a regex (or join a list of them with ``|``); it must match whole names."""
    allowed = "expected a regular expression matched against the whole series name"
    if isinstance(value, re.Pattern):
        return value
    if isinstance(value, str):
        text = value
    elif isinstance(value, Sequence) and value and all(isinstance(item, str) for item in value):
        text = "|".join(f"(?:{item})" for item in value)
    else:
        raise fail(where, value, allowed)
    try:
        return re.compile(text)
    except re.error as exc:
        raise fail(where, value, f"{allowed} ({exc})") from None


def split_list(raw: object) -> list[object]:
    """Split a comma/whitespace separated list; a list given as such (``app.config``) stays one."""
    if isinstance(raw, str):
        return list(raw.replace(",", " ").split())
    if isinstance(raw, (list, tuple)):
        return list(raw)
    return [] if raw is None else [raw]


def parse_names(value: str, where: str) -> list[str]:
    """Split endpoint names (comma or whitespace separated), checking each."""
    names = value.replace(",", " ").split()
    for name in names:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise fail(where, value, "expected names like 'primary,backup' ([A-Za-z][A-Za-z0-9_]*)")
    if len({name.upper() for name in names}) != len(names):
        raise fail(where, value, "expected distinct names")
    return names
