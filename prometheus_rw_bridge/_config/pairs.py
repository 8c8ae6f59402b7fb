"""Parsers of ``name=value,...`` settings (external labels, extra headers, a token endpoint's
parameters) and of header names, with the headers the protocol reserves.

As in :mod:`.parse`, each takes the raw value (text from the environment, or a mapping or pairs
in code) and ``where``, the name used in error messages.  Header values may be secrets: an error
never quotes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from .._exceptions import ConfigurationError
from .._protocol.names import is_valid_label_name
from .._redact import MASK
from .parse import fail, parse_nonempty

__all__ = ["RESERVED_HEADERS", "parse_header_name", "parse_headers", "parse_labels", "parse_params"]

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


def parse_header_name(value: object, where: str) -> str:
    """Parse the name of a header the bridge sets itself (an HTTP token, not a reserved one)."""
    name = parse_nonempty(value, where).strip()
    if not _HEADER_NAME_RE.fullmatch(name):
        raise fail(where, value, "expected a header name (an HTTP token such as X-Scope-OrgID)")
    if name.lower() in RESERVED_HEADERS:
        reserved = ", ".join(sorted(RESERVED_HEADERS))
        raise fail(where, value, f"a header the protocol does not reserve (reserved: {reserved})")
    return name
