"""The metadata of a family: the entries a scrape of its text gives, and where relabelling sends them.

Shared by the 1.0 encoder (``MetricMetadata`` entries beside the series) and the 2.0 encoder
(each series' own ``Metadata``: its type).  Pure.
"""

from __future__ import annotations

from typing import Any

from . import tags as _tags
from . import wire as _wire
from .assemble import Plan
from .names import escape_metric_name
from .template import Keys

__all__ = ["family_metadata", "metadata_types", "renamed_metadata", "sample_names"]

# The samples ``generate_latest`` moves out of their family into a gauge family of their own.
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")


def sample_names(keys: Keys | Plan) -> set[str]:
    """The distinct sample names of a family being built."""
    return set(keys.names) if isinstance(keys, Plan) else {name for name, _ in keys}


def family_metadata(family: Any, names: set[str], renamed: list[tuple[str, str]] | None = None) -> bytes:
    """Return the ``MetricMetadata`` entries a scrape of this family's text would give.

    With ``renamed`` (relabelling), those of the series sent, under their new names: see
    :func:`renamed_metadata`.
    """
    help_text, unit = family.documentation, family.unit
    entries = metadata_types(family, names)
    if renamed is not None:
        entries = renamed_metadata(entries, renamed)
    types = _tags.METRIC_TYPES
    return b"".join(_wire.metadata_entry(types.get(kind, 0), name, help_text, unit) for name, kind in entries)


def renamed_metadata(entries: list[tuple[str, str]], renamed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the metadata entries of a relabelled family: one per name its series are sent under.

    ``entries`` are :func:`metadata_types`'s; ``renamed`` holds, for every series sent, its
    escaped sample name and its name after relabelling.  A series belongs to the entry of its
    own name (``foo_total``, ``foo_created``), else to the family's first entry, whose name it
    extends (``foo_bucket`` of ``foo``).  A series that kept its name keeps its entry's; a
    renamed one gives the entry its new name, less that extension when it kept it
    (``bar_bucket``: ``bar``).  An entry no series sent belongs to is left out, as Prometheus
    sends metadata with the series of remote write 2.0.
    """
    types = dict(entries)
    main = entries[0][0]
    names: dict[str, dict[str, None]] = {entry: {} for entry, _ in entries}  # entry -> new names, in order
    for sample, new in renamed:
        entry = sample if sample in types else main
        if new != sample:
            tail = sample[len(entry) :] if sample.startswith(entry) else ""
            entry_name = new[: -len(tail)] if tail and new.endswith(tail) and new != tail else new
        else:
            entry_name = entry
        names[entry].setdefault(entry_name)
    result: dict[tuple[str, str], None] = {}
    for entry, mtype in entries:
        for name in names[entry]:
            result.setdefault((name, mtype))
    return list(result)


def metadata_types(family: Any, sample_names: set[str]) -> list[tuple[str, str]]:
    """Return ``(escaped metric name, type word)`` for each metadata entry a scrape of the family gives.

    The first entry is the family's own (``foo_total`` for a counter ``foo``); then one
    ``gauge`` entry per OpenMetrics-only sample name (``_created``, ``_gsum``, ``_gcount``)
    the family yields.  Shared by the 1.0 and 2.0 encoders.
    """
    name, mtype = family.name, family.type
    if mtype == "counter":
        main_name, main_type = name + "_total", "counter"
    elif mtype == "info":
        main_name, main_type = name + "_info", "gauge"
    elif mtype == "stateset":
        main_name, main_type = name, "gauge"
    elif mtype == "gaugehistogram":
        main_name, main_type = name, "histogram"
    else:
        main_name, main_type = name, mtype
    entries = [(escape_metric_name(main_name), main_type)]
    for suffix in sorted(_OM_SUFFIXES):
        if name + suffix in sample_names:
            entries.append((escape_metric_name(name + suffix), "gauge"))
    return entries
