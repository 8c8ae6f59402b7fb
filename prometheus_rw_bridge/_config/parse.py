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
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from .._exceptions import ConfigurationError
from .._protocol.names import is_valid_label_name
from .._redact import MASK, safe_url

__all__ = [
    "RESERVED_HEADERS",
    "fail",
    "parse_bool",
    "parse_duration",
    "parse_file",
    "parse_headers",
    "parse_labels",
    "parse_names",
    "parse_nonempty",
    "parse_params",
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

RESERVED_HEADERS = frozenset(
    {
        "content-encoding",
        "content-length",
        "content-type",
        "host",
        "retry-attempt",
        "transfer-encoding",
        "user-agent",
        "x-prometheus-remote-write-version",
    }
)
"""Header names (lower case) set by the protocol or by HTTP itself; refused in ``headers``."""


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


def _split_pairs(text: str, where: str, *, secret_values: bool) -> list[tuple[str, str]]:
    """Split ``name=value,...`` honouring backslash escapes."""
    allowed = (
        "expected name=value pairs separated by commas; "
        "escape a literal comma or backslash with a backslash (\\, and \\\\)"
    )
    items: list[tuple[str, str]] = []
    name: list[str] | None = None
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == "=" and name is None:
            name, current = current, []
        elif char == ",":
            items.append(_finish_pair(name, current, len(items), where, text, allowed, secret_values))
            name, current = None, []
        else:
            current.append(char)
    if name is not None or "".join(current).strip():
        items.append(_finish_pair(name, current, len(items), where, text, allowed, secret_values))
    return [item for item in items if item != ("", "")]


def _finish_pair(
    name: list[str] | None,
    value: list[str],
    index: int,
    where: str,
    text: str,
    allowed: str,
    secret: bool,
) -> tuple[str, str]:
    """Close one ``name=value`` item; an empty item yields ``("", "")``."""
    if name is None:
        if not "".join(value).strip():
            return ("", "")  # an empty item, as in a trailing comma
        raise ConfigurationError(
            f"{where}={MASK if secret else text!r} is not valid: item {index + 1} has no '='; {allowed}"
        )
    return "".join(name).strip(), "".join(value).strip()


def _pairs(value: object, where: str, *, secret_values: bool) -> list[tuple[str, str]]:
    """Return (name, value) pairs from text, a mapping, or an iterable of pairs."""
    if isinstance(value, str):
        return _split_pairs(value, where, secret_values=secret_values)
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Iterable):
        items = [tuple(item) for item in value]
    else:
        raise fail(where, value, "expected a mapping of names to values, or name=value,... text")
    for item in items:
        if len(item) != 2 or not all(isinstance(part, str) for part in item):
            raise fail(where, value, "expected string names and values", secret=secret_values)
    return [(str(k), str(v)) for k, v in items]


def parse_params(value: object, where: str) -> Mapping[str, str]:
    """Parse form parameters (``name=value,...`` or a mapping): any non-empty names."""
    params: dict[str, str] = {}
    for name, param_value in _pairs(value, where, secret_values=False):
        if not name:
            raise fail(where, value, "expected non-empty parameter names")
        params[name] = param_value
    return MappingProxyType(params)


def parse_scopes(value: object, where: str) -> tuple[str, ...]:
    """Parse a list of words (OAuth2 scopes): separated by commas or spaces, or a list in code."""
    words = split_list(value)
    if not all(isinstance(word, str) and word.strip() and " " not in word.strip() for word in words):
        raise fail(where, value, "expected words separated by commas or spaces, or a list of them")
    if not words:
        raise fail(where, value, "expected at least one scope")
    return tuple(str(word).strip() for word in words)


def parse_labels(value: object, where: str) -> Mapping[str, str]:
    """Parse external labels from pairs or a mapping, checking every name."""
    labels: dict[str, str] = {}
    for name, label_value in _pairs(value, where, secret_values=False):
        if not is_valid_label_name(name) or name.startswith("__"):
            raise ConfigurationError(
                f"{where}: label name {name!r} is not valid: "
                "expected [a-zA-Z_][a-zA-Z0-9_]* not starting with '__'"
            )
        if name in ("job", "instance"):
            raise ConfigurationError(
                f"{where}: label {name!r} is set with the {name} option, not as an external label"
            )
        labels[name] = label_value
    return MappingProxyType(labels)


_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse_headers(value: object, where: str) -> Mapping[str, str]:
    """Parse extra headers from pairs or a mapping, refusing reserved or malformed ones by name."""
    headers: dict[str, str] = {}
    for name, header_value in _pairs(value, where, secret_values=True):
        if not _HEADER_NAME_RE.fullmatch(name):
            raise ConfigurationError(f"{where}: header name {name!r} is not valid: expected an HTTP token")
        if name.lower() in RESERVED_HEADERS:
            raise ConfigurationError(
                f"{where}: header {name!r} is reserved: the bridge sets it itself "
                f"(reserved: {', '.join(sorted(RESERVED_HEADERS))})"
            )
        if "\r" in header_value or "\n" in header_value:
            raise ConfigurationError(f"{where}: header {name!r} has a line break in its value")
        if _HEADER_CONTROL_RE.search(header_value):
            # RFC 9110 allows none but tab; an HTTP library refusing one quotes the value back.
            raise ConfigurationError(
                f"{where}: header {name!r} has a control character in its value (only tab is allowed)"
            )
        if any(existing.lower() == name.lower() for existing in headers):
            raise ConfigurationError(f"{where}: header {name!r} is given twice")
        headers[name] = header_value
    return MappingProxyType(headers)


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
