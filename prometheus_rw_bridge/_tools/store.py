"""What the validating receiver keeps: every request as it arrived, and the latest value per series.

:class:`SeriesStore` records each :class:`ReceivedRequest` (headers, raw and decoded body, the
rules it broke, the answer it got) and, for accepted requests, the latest sample of every series
as a :class:`StoredSeries`.  It checks the one rule that spans requests, sample order per series,
and wakes waiters after every request.  Thread-safe: the receiver's handler threads call
:meth:`SeriesStore.apply`, tests read from theirs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .._protocol.decode import DecodedRequest, _escape, _format_value
from .._protocol.wire import is_stale_nan
from .validate import Checked, Violation, same_value, series_text

__all__ = ["ReceivedRequest", "SeriesStore", "StoredSeries", "render"]

_SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_total", "_info", "_gcount", "_gsum")
_SeriesKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class StoredSeries:
    """The latest sample of one series.

    Attributes:
        name: the metric name (``__name__``), for example ``jobs_total``.
        labels: every other label, sorted by name.
        value: the sample's value.
        timestamp_ms: its timestamp, in milliseconds since the epoch.
        metric_type: the family's type from the sender's metadata (``counter``, ``gauge``,
            ``histogram``, ...), or ``""`` if it sent none.
        family: the family the series belongs to (``jobs`` for ``jobs_total``), or ``""``.
    """

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp_ms: int
    metric_type: str = ""
    family: str = ""

    @property
    def stale(self) -> bool:
        """Tell whether the latest sample is a stale marker: the sender ended the series."""
        return is_stale_nan(self.value)

    def matches(self, name: str | None = None, **labels: str) -> bool:
        """Tell whether the series is named ``name`` (if given) and has all of ``labels``."""
        return (name is None or self.name == name) and all(self.labels.get(k) == v for k, v in labels.items())

    def to_text(self) -> str:
        """Render as one exposition-format line with a millisecond timestamp."""
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in self.labels.items())
        name = self.name + (f"{{{inner}}}" if inner else "")
        return f"{name} {_format_value(self.value)} {self.timestamp_ms}"


@dataclass(kw_only=True)
class ReceivedRequest:
    """One request as the receiver saw it, what it found in it, and how it answered.

    Attributes:
        number: its sequence number, from 1.
        arrived: ``time.monotonic()`` when its headers and body had been read.
        method: the HTTP method.
        path: the request target as sent (absolute, ``http://host/...``, through a proxy).
        headers: the headers, names as sent.
        body: the raw (compressed) body.
        protocol: ``"1.0"`` or ``"2.0"`` as its ``Content-Type`` says, or None for a body that
            is not remote write at all (the text format, another media type).
        decoded: the decoded request, or None if the body did not decode.
        violations: every rule of the specification it broke.
        samples: its float samples; ``histograms`` and ``exemplars`` likewise.
        series: the latest sample of each of its series.
        status: the status answered, or None when the receiver answered nothing (a scripted
            hang or drop).
        answer: the body answered.
    """

    number: int
    arrived: float
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    protocol: str | None = None
    decoded: DecodedRequest | None = None
    violations: list[Violation] = field(default_factory=list)
    samples: int = 0
    histograms: int = 0
    exemplars: int = 0
    series: list[StoredSeries] = field(default_factory=list)
    status: int | None = None
    answer: str = ""

    @property
    def accepted(self) -> bool:
        """Tell whether the request was answered 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def decode_error(self) -> str | None:
        """Why the body did not decode (the rule it broke, and how), or None if it did."""
        if self.decoded is not None:
            return None
        return str(self.violations[-1]) if self.violations else "the body was not decoded"

    def header(self, name: str) -> str | None:
        """Return a header's value, matching its name case-insensitively."""
        lowered = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == lowered), None)

    def to_text(self) -> str:
        """Render the request's series (the last sample of each) as exposition-format text."""
        return render(sorted(self.series, key=_sort_key))

    def take(self, checked: Checked) -> None:
        """Copy in what validation found."""
        self.protocol, self.decoded = checked.protocol, checked.decoded
        self.violations.extend(checked.violations)
        self.samples, self.histograms, self.exemplars = checked.samples, checked.histograms, checked.exemplars


class SeriesStore:
    """The requests seen (the most recent ``keep_requests``) and the latest value per series."""

    def __init__(self, *, keep_requests: int = 10_000) -> None:
        self._cond = threading.Condition()
        self._latest: dict[_SeriesKey, StoredSeries] = {}
        self._types: dict[str, str] = {}
        self._requests: deque[ReceivedRequest] = deque(maxlen=keep_requests)
        self._count = 0
        self._handled = 0
        self._accepted = 0
        self._samples = 0

    def next_number(self) -> int:
        """Reserve the sequence number of a new request."""
        with self._cond:
            self._count += 1
            return self._count

    def apply(self, received: ReceivedRequest, answer: Callable[[ReceivedRequest], None]) -> None:
        """Check order against what is stored, let ``answer`` set the status, store if accepted.

        All under the store's lock, so order checks and updates are atomic across concurrent
        requests; ``answer`` sees the order violations too.
        """
        with self._cond:
            latest: dict[_SeriesKey, StoredSeries] = {}
            if received.decoded is not None:
                received.violations.extend(self._ordering(received.decoded))
                latest = self._series_of(received.decoded)
                received.series = list(latest.values())
            answer(received)
            if received.decoded is not None and received.accepted:
                for key, one in latest.items():
                    previous = self._latest.get(key)
                    if previous is None or one.timestamp_ms > previous.timestamp_ms:
                        self._latest[key] = one
                self._accepted += 1
                self._samples += received.samples
            self._requests.append(received)
            self._handled += 1
            self._cond.notify_all()

    def _ordering(self, decoded: DecodedRequest) -> list[Violation]:
        """Return the samples of ``decoded`` older than, or clashing with, those already received."""
        found: list[Violation] = []
        # A series may appear more than once in one request; order holds across all of them.
        last: dict[_SeriesKey, tuple[int, float]] = {}
        for series in decoded.series:
            key = _key(series.label_pairs)
            previous = self._latest.get(key)
            last_ts, last_value = (previous.timestamp_ms, previous.value) if previous else (None, 0.0)
            last_ts, last_value = last.get(key, (last_ts, last_value))
            for sample in series.samples:
                if last_ts is not None and sample.timestamp_ms < last_ts:
                    found.append(
                        Violation(
                            "out-of-order",
                            f"{series_text(key)}: sample at {sample.timestamp_ms} ms is older than "
                            f"the one already received at {last_ts} ms",
                        )
                    )
                elif last_ts == sample.timestamp_ms and not same_value(sample.value, last_value):
                    found.append(
                        Violation(
                            "duplicate-timestamp",
                            f"{series_text(key)}: two values ({_format_value(last_value)} and "
                            f"{_format_value(sample.value)}) at {last_ts} ms",
                        )
                    )
                if last_ts is None or sample.timestamp_ms >= last_ts:
                    last_ts, last_value = sample.timestamp_ms, sample.value
            if last_ts is not None:
                last[key] = (last_ts, last_value)
        return found

    def _series_of(self, decoded: DecodedRequest) -> dict[_SeriesKey, StoredSeries]:
        """Return the last sample of each series in ``decoded``, typed by all metadata seen so far."""
        self._types.update((md.metric_family_name, md.type) for md in decoded.metadata)
        latest: dict[_SeriesKey, StoredSeries] = {}
        for series in decoded.series:
            key = _key(series.label_pairs)
            family = _family_of(series.name, self._types)
            metric_type = self._types.get(family, "")
            if series.metadata is not None and series.metadata.type != "unknown":
                metric_type = series.metadata.type
                family = _v2_family(series.name, metric_type)
            labels = {k: v for k, v in key if k != "__name__"}
            for sample in series.samples:
                previous = latest.get(key)
                if previous is None or sample.timestamp_ms > previous.timestamp_ms:
                    latest[key] = StoredSeries(
                        series.name, labels, sample.value, sample.timestamp_ms, metric_type, family
                    )
        return latest

    def wait_for(self, count: int, timeout: float | None, *, accepted: bool = False) -> bool:
        """Wait until ``count`` requests (only accepted ones if ``accepted``) have been handled."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (self._accepted if accepted else self._handled) >= count, timeout
            )

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests handled so far (the most recent ``keep_requests``), oldest first."""
        with self._cond:
            return list(self._requests)

    @property
    def samples_received(self) -> int:
        """The number of samples in accepted requests."""
        with self._cond:
            return self._samples

    def series(self, name: str | None = None, **labels: str) -> list[StoredSeries]:
        """The latest sample of every series (named ``name``, with all of ``labels``), sorted."""
        with self._cond:
            found = [one for one in self._latest.values() if one.matches(name, **labels)]
        return sorted(found, key=_sort_key)

    def clear(self) -> None:
        """Forget every stored series and request (order checks start afresh)."""
        with self._cond:
            self._latest.clear()
            self._requests.clear()


def _key(pairs: Iterable[tuple[str, str]]) -> _SeriesKey:
    return tuple(sorted(pairs))


def render(series: Iterable[StoredSeries]) -> str:
    """Render ``series`` (already in order) as exposition-format text with ``# TYPE`` lines."""
    lines: list[str] = []
    last_family = None
    for one in series:
        family = one.family or one.name
        if one.metric_type and family != last_family:
            lines.append(f"# TYPE {family} {one.metric_type}")
        last_family = family
        lines.append(one.to_text())
    return "\n".join(lines) + ("\n" if lines else "")


def _v2_family(name: str, metric_type: str) -> str:
    """Return the family of a 2.0 series, whose metadata gives a type but no family name."""
    if metric_type in ("histogram", "gaugehistogram", "summary"):
        for suffix in ("_bucket", "_count", "_sum", "_gcount", "_gsum"):
            if name.endswith(suffix):
                return name[: -len(suffix)]
    return name


def _family_of(name: str, known: Mapping[str, str]) -> str:
    """Return the metric family ``name`` belongs to: a known family, else ``name`` less a known suffix."""
    if name in known:
        return name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return name


def _sort_key(series: StoredSeries) -> tuple[str, str, tuple[tuple[str, str], ...], float]:
    """Order by family, name, then labels other than ``le``, then ``le`` numerically."""
    labels = tuple(p for p in series.labels.items() if p[0] != "le")
    le = series.labels.get("le")
    try:
        bound = float(le) if le is not None else 0.0
    except ValueError:
        bound = 0.0
    return (series.family or series.name, series.name, labels, bound)
