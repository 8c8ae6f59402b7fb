"""Metric and label names: the legacy character set, escaping, and default target labels.

Names are made valid exactly as ``prometheus_client.generate_latest`` does for the text
format (its default ``underscores`` escaping): every character outside the legacy set
becomes ``_``, so a series arrives under the name a scrape of ``/metrics`` would give.
prometheus_client 0.23 and later have that escaping (``openmetrics.exposition.escape_metric_name``
with ``UNDERSCORES``) and we call theirs; before 0.23 names outside the set could not be made
by the standard metric types and the text format wrote them raw, so we apply the same rule
ourselves (the tests check both against each other where both exist).  One exception: their
validity check is ``re.match`` with ``$``, which lets a name ending in a newline through
unescaped; such a name would make the request invalid, so it gets our escaping instead.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import sys
from collections.abc import Callable

__all__ = [
    "default_instance",
    "default_job",
    "escape_label_name",
    "escape_metric_name",
    "is_valid_label_name",
]

_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _underscores(valid: re.Pattern[str], invalid: str) -> Callable[[str], str]:
    """Return an escaper: characters matching ``invalid`` (and a leading digit) become ``_``."""
    invalid_re = re.compile(invalid)

    def escape(name: str) -> str:
        if valid.fullmatch(name):
            return name
        escaped = invalid_re.sub("_", name)
        return "_" + escaped[1:] if escaped[:1].isdigit() else escaped

    return escape


_own_metric = _underscores(_METRIC_NAME_RE, r"[^a-zA-Z0-9_:]")
_own_label = _underscores(_LABEL_NAME_RE, r"[^a-zA-Z0-9_]")


def _prometheus_client_escapers() -> tuple[Callable[[str], str], Callable[[str], str]] | None:
    """prometheus_client's own underscore escaping (0.23 and later), or ``None``."""
    try:
        from prometheus_client.openmetrics import exposition as om
    except ImportError:  # pragma: no cover - every supported version has the module
        return None
    scheme = getattr(om, "UNDERSCORES", None)
    if scheme is None:  # before 0.23: escape_metric_name(s) quoted names instead
        return None
    return (
        functools.partial(om.escape_metric_name, escaping=scheme),
        functools.partial(om.escape_label_name, escaping=scheme),
    )


_theirs = _prometheus_client_escapers()
_metric, _label = _theirs if _theirs is not None else (_own_metric, _own_label)


@functools.lru_cache(maxsize=4096)
def escape_metric_name(name: str) -> str:
    """Return ``name`` with every character outside ``[a-zA-Z0-9_:]`` (or a leading digit) as ``_``."""
    escaped = _metric(name)
    return escaped if not escaped or _METRIC_NAME_RE.fullmatch(escaped) else _own_metric(name)


@functools.lru_cache(maxsize=4096)
def escape_label_name(name: str) -> str:
    """Return ``name`` with every character outside ``[a-zA-Z0-9_]`` (or a leading digit) as ``_``."""
    escaped = _label(name)
    return escaped if not escaped or _LABEL_NAME_RE.fullmatch(escaped) else _own_label(name)


def is_valid_label_name(name: str) -> bool:
    """Tell whether ``name`` is in the legacy label-name character set."""
    return _LABEL_NAME_RE.fullmatch(name) is not None


def default_job() -> str:
    """Return the default ``job`` label: the program's name, without a ``.py`` suffix.

    ``python -m package`` gives the package name; an interactive interpreter gives ``python``.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        name = str(spec.name)
        return name[: -len(".__main__")] if name.endswith(".__main__") else name
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-", "-c", "-m") else ""
    name = os.path.basename(argv0)
    if name.endswith(".py"):
        name = name[:-3]
    return name or "python"


def default_instance() -> str:
    """Return the default ``instance`` label: this host's name."""
    return socket.gethostname() or "localhost"
