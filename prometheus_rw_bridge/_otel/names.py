"""OpenTelemetry names, units and attributes -> Prometheus metric names and labels.

The rules of OpenTelemetry's Prometheus compatibility specification ("OTLP Metric points to
Prometheus"): invalid characters become ``_`` and runs of ``_`` collapse to one; the unit is
spelled out (``s`` -> ``seconds``, ``By`` -> ``bytes``, ``{requests}`` dropped, ``1`` ->
``ratio`` for gauges, ``foo/bar`` -> ``foo_per_bar``) and appended unless the name already
holds it; attribute keys that collide once sanitised have their values joined with ``;``
in the order of the original keys.  The unit words are those OpenTelemetry's own Prometheus
translators use, so a series gets the name it would get through the Collector.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .._protocol.names import escape_label_name, escape_metric_name

__all__ = ["attribute_value", "label_name", "labels_from_attributes", "metric_name", "unit_word"]

_UNIT_WORDS = {
    # Time
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    # Bytes
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    # SI
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    # Misc
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
    "1": "",  # dimensionless; gauges get "ratio" (see unit_word)
}
# The denominator of "foo/bar" units, singular: "By/s" -> "bytes_per_second".
_PER_UNIT_WORDS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}
_ANNOTATION_RE = re.compile(r"\{[^}]*\}")
_UNDERSCORES_RE = re.compile(r"__+")


def _collapse(name: str) -> str:
    return _UNDERSCORES_RE.sub("_", name)


def _sanitize_unit(unit: str) -> str:
    return _collapse(escape_metric_name(unit) if unit else "").strip("_")


def unit_word(unit: str | None, *, gauge: bool) -> str:
    """Return the Prometheus spelling of an OpenTelemetry (UCUM) unit; ``""`` for none.

    ``1`` is ``ratio`` on an OpenTelemetry gauge and no unit elsewhere: the Collector's
    choice, since instrumentations use ``1`` for plain counts on counters and up-down counters.
    """
    text = _ANNOTATION_RE.sub("", unit or "").strip()
    top, slash, bottom = (part.strip() for part in text.partition("/"))
    if slash and bottom:
        top_word = _UNIT_WORDS.get(top, _sanitize_unit(top))
        bottom_word = _PER_UNIT_WORDS.get(bottom, _sanitize_unit(_UNIT_WORDS.get(bottom, bottom)))
        if bottom_word:
            return f"{top_word}_per_{bottom_word}" if top_word else f"per_{bottom_word}"
    if top == "1":
        return "ratio" if gauge else ""
    return _UNIT_WORDS.get(top, _sanitize_unit(top))


def _holds(tokens: list[str], part: list[str]) -> bool:
    """Tell whether ``part`` occurs as a run of whole tokens in ``tokens``."""
    size = len(part)
    return any(tokens[i : i + size] == part for i in range(len(tokens) - size + 1))


def metric_name(name: str, unit: str, *, counter: bool) -> tuple[str, str]:
    """Return a metric's Prometheus family name and UNIT metadata for ``unit`` (from :func:`unit_word`).

    A counter's family name has no ``_total``: prometheus_client families add it to the
    sample name, as they do for every counter.  The unit is appended unless the name already
    holds it as whole ``_``-separated words; UNIT metadata is given only when the name ends
    with the unit (OpenMetrics requires it to be a suffix).
    """
    base = _collapse(escape_metric_name(name or "_"))
    if counter and base.endswith("_total") and len(base) > len("_total"):
        base = base[: -len("_total")]
    if not unit:
        return base, ""
    tokens = base.split("_")
    unit_tokens = unit.split("_")
    if not _holds(tokens, unit_tokens):
        return _collapse(f"{base}_{unit}"), unit
    return base, unit if tokens[-len(unit_tokens) :] == unit_tokens else ""


def attribute_value(value: Any) -> str:
    """Return an attribute value as a label value: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        value = list(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def label_name(key: str) -> str:
    """Return the Prometheus label name for an attribute key (``""`` when nothing is left)."""
    return _collapse(escape_label_name(key)) if key else ""


def labels_from_attributes(attributes: Mapping[str, Any] | None, skip: Iterable[str] = ()) -> dict[str, str]:
    """Convert attributes (less the keys in ``skip``) to labels; values of colliding keys join with ``;``.

    Empty keys are dropped.
    """
    if not attributes:
        return {}
    skipped = set(skip)
    grouped: dict[str, list[tuple[str, str]]] = {}
    for key in attributes:
        if key in skipped:
            continue
        name = label_name(key)
        if name:
            grouped.setdefault(name, []).append((key, attribute_value(attributes[key])))
    return {
        name: pairs[0][1] if len(pairs) == 1 else ";".join(value for _, value in sorted(pairs))
        for name, pairs in grouped.items()
    }
