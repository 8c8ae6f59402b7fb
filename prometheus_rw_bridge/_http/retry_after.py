"""``Retry-After``: how long a receiver asks us to wait, from its answer's headers.

The one place that parses HTTP dates: ``Retry-After`` may be delta-seconds or an HTTP date,
and a date is measured against the answer's own ``Date`` header, which removes clock skew.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time
from collections.abc import Callable, Mapping

__all__ = ["parse_http_date", "parse_retry_after", "retry_after_from_headers"]


def parse_http_date(text: str) -> float | None:
    """Return an HTTP date (``Wed, 21 Oct 2015 07:28:00 GMT``) as a Unix timestamp, or None."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" dates; HTTP dates are always UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Parse a ``Retry-After`` header into seconds from ``now``.

    Args:
        value: the header: delta-seconds (``"120"``, leniently ``"1.5"``) or an HTTP date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
        now: the current time as a Unix timestamp, to turn a date into a delay (ideally the
            response's own ``Date``, which removes clock skew).

    Returns:
        Seconds to wait (a time in the past gives 0), or None if absent or unparseable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        when = parse_http_date(text)
        if when is None:
            return None
        seconds = when - now
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def retry_after_from_headers(
    headers: Mapping[str, str], clock: Callable[[], float] = time.time
) -> float | None:
    """Parse an answer's ``Retry-After``, measuring an HTTP date against its own ``Date``.

    Args:
        headers: the answer's headers.
        clock: the local wall clock (Unix time), for an answer without a ``Date``.
    """
    date = headers.get("Date")
    now = parse_http_date(date) if date else None
    return parse_retry_after(headers.get("Retry-After"), clock() if now is None else now)
