"""Pieces of prometheus_client samples that every encoder needs: timestamps and exemplars."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from . import tags as _tags
from . import wire as _wire
from .encoded import packed_refs
from .names import escape_label_name

__all__ = [
    "exemplar_entry_v1",
    "exemplar_entry_v2",
    "exemplar_label_pairs",
    "start_key",
    "start_times",
    "to_millis",
]

# What a bad exemplar raises: a label value that is not UTF-8, a timestamp out of range, a
# value that is no number.  Callers drop just the exemplar.
EXEMPLAR_ERRORS = (TypeError, ValueError, OverflowError, AttributeError)
_DOUBLE = struct.Struct("<d")


_MIN_MS = -(1 << 63)
_MAX_MS = 1 << 63


def to_millis(timestamp: Any) -> int:
    """Convert a prometheus_client sample timestamp (seconds or ``Timestamp``) to int milliseconds.

    Uses the text exposition's arithmetic, ``int(float(timestamp) * 1000)``, for numbers and
    ``Timestamp`` objects alike, so a scrape and a push give the same millisecond (float
    rounding included: ``Timestamp(1, 3_000_000)`` is 1002 ms in both).

    Raises:
        OverflowError: the result does not fit a protobuf ``int64`` (or is infinite).
        ValueError: the timestamp is NaN.
    """
    millis = int(float(timestamp) * 1000)
    if not _MIN_MS <= millis < _MAX_MS:
        raise OverflowError(f"timestamp {timestamp!r} is outside the int64 millisecond range")
    return millis


def exemplar_label_pairs(exemplar: Any) -> list[tuple[str, str]]:
    """Return an exemplar's labels as sorted, escaped ``(name, value)`` pairs, empty values dropped."""
    return sorted((escape_label_name(k), str(v)) for k, v in exemplar.labels.items() if k and v != "")


def exemplar_entry_v1(exemplar: Any, timestamp_ms: int) -> bytes:
    """Encode one remote-write 1.0 ``TimeSeries.exemplars`` entry.

    An exemplar without a timestamp takes ``timestamp_ms``, as a scrape would give it.

    Raises:
        UnicodeEncodeError: a label value is not valid UTF-8.
        OverflowError: the exemplar's timestamp does not fit an ``int64``.
    """
    pairs = [(k.encode(), v.encode("utf-8")) for k, v in exemplar_label_pairs(exemplar)]
    ts = timestamp_ms if exemplar.timestamp is None else to_millis(exemplar.timestamp)
    return _wire.exemplar(_wire.labels(pairs, _tags.EXEMPLAR_LABEL), float(exemplar.value), ts)


def exemplar_entry_v2(exemplar: Any, timestamp_ms: int, ref: Callable[[bytes], int]) -> tuple[bytes, int]:
    """Encode one 2.0 ``TimeSeries.exemplars`` entry; return it with its highest symbol reference.

    2.0 requires a timestamp on every exemplar; one without takes ``timestamp_ms``.  ``ref``
    returns a string's symbol reference, adding it to the table if new; it is called only
    once nothing can fail any more, so a dropped exemplar leaves no symbols behind.

    Raises:
        UnicodeEncodeError, OverflowError, TypeError, ValueError: as :func:`exemplar_entry_v1`.
    """
    pairs = [(k.encode(), v.encode("utf-8")) for k, v in exemplar_label_pairs(exemplar)]
    ts = timestamp_ms if exemplar.timestamp is None else to_millis(exemplar.timestamp)
    value = bytes([_tags.EXEMPLAR_VALUE]) + _DOUBLE.pack(float(exemplar.value))
    timestamp = bytes([_tags.EXEMPLAR_TIMESTAMP]) + _wire.varint(ts)
    refs = [ref(s) for pair in pairs for s in pair]
    body = packed_refs(_tags.V2_EXEMPLAR_LABELS_REFS, refs) + value + timestamp
    return _wire.length_delimited(_tags.V2_TS_EXEMPLAR, body), max(refs, default=0)


def start_key(labels: dict[str, str], per_series_label: str | None) -> tuple[tuple[str, str], ...]:
    """Return the key matching a sample to its ``_created`` sample: its labels less ``le``/``quantile``."""
    return tuple(sorted((k, str(v)) for k, v in labels.items() if k != per_series_label))


def start_times(
    family_name: str,
    indices: list[int],
    values: list[Any],
    where: Callable[[int], Any],
    warn: Callable[[str, str], None],
) -> dict[Any, int]:
    """Map ``where(index)`` of each ``_created`` sample at ``indices`` to its value in milliseconds.

    A value that is no timestamp is logged and left out: its series go without a start time.
    """
    starts: dict[Any, int] = {}
    for index in indices:
        value = values[index]
        try:
            start = to_millis(value)
        except (TypeError, ValueError, OverflowError) as exc:
            warn(
                family_name,
                f"has a _created value {value!r} that is no start timestamp ({exc}); "
                "its series are sent without one",
            )
            continue
        # 0 means "unset" on the wire; the spec asks for 1 ms instead of a real epoch start.
        starts[where(index)] = start or 1
    return starts
