"""Metric and label names: the legacy character set, escaping, and default target labels.

Names are made valid exactly as ``prometheus_client.generate_latest`` does for the text
format (its default ``underscores`` escaping): every character outside the legacy set
becomes ``_``, so a series arrives under the name a scrape of ``/metrics`` would give.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import sys

__all__ = [
    "default_instance",
    "default_job",
    "escape_label_name",
    "escape_metric_name",
    "is_valid_label_name",
]

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_INVALID_RE = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_INVALID_RE = re.compile(r"[^a-zA-Z0-9_]")


@functools.lru_cache(maxsize=4096)
def escape_metric_name(name: str) -> str:
    """Return ``name`` with every character outside ``[a-zA-Z0-9_:]`` (or a leading digit) as ``_``."""
    if _METRIC_NAME_RE.fullmatch(name):
        return name
    escaped = _METRIC_INVALID_RE.sub("_", name)
    if escaped[:1].isdigit():
        escaped = "_" + escaped[1:]
    return escaped


@functools.lru_cache(maxsize=4096)
def escape_label_name(name: str) -> str:
    """Return ``name`` with every character outside ``[a-zA-Z0-9_]`` (or a leading digit) as ``_``."""
    if _LABEL_NAME_RE.fullmatch(name):
        return name
    escaped = _LABEL_INVALID_RE.sub("_", name)
    if escaped[:1].isdigit():
        escaped = "_" + escaped[1:]
    return escaped


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
