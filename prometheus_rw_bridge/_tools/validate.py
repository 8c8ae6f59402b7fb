"""The rules of the remote-write specifications, checked on one request's headers and body.

:func:`validate` decides the protocol from ``Content-Type``, refuses what cannot be decoded
(text format 415, framed or missing snappy 400, not protobuf 400), decodes the rest and lists
every :class:`Violation` of the header and label rules, each naming the rule (a key of
:data:`RULES`) it breaks.  Pure: no I/O, no state; ordering across requests is the store's
business (``_receiver``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .._protocol import snappy as _snappy
from .._protocol.decode import DecodedRequest, _escape, decode_write_request
from .._protocol.wire import is_stale_nan

__all__ = [
    "RULES",
    "V1_PROTO",
    "V2_PROTO",
    "Checked",
    "Violation",
    "answer_for",
    "same_value",
    "series_text",
    "validate",
]

V2_PROTO = "io.prometheus.write.v2.Request"
V1_PROTO = "prometheus.WriteRequest"

RULES: Mapping[str, str] = {
    "text-format": "the body must be a snappy-compressed protobuf message, not the text exposition format",
    "framed-snappy": "the snappy block format must be used; the framed format must not",
    "not-snappy": "the body must be snappy (block format) compressed",
    "not-protobuf": "the body must be a protobuf WriteRequest (1.0) or io.prometheus.write.v2.Request (2.0)",
    "content-encoding": "the Content-Encoding header must be 'snappy'",
    "content-type": "the Content-Type header must be 'application/x-protobuf' (with ;proto= for 2.0)",
    "version-header": "the X-Prometheus-Remote-Write-Version header must be 0.1.0 (1.0) or 2.0.0 (2.0)",
    "user-agent": "a User-Agent header naming the sender must be sent",
    "missing-metric-name": "every series should have a non-empty __name__ label",
    "invalid-metric-name": "metric names must match [a-zA-Z_:][a-zA-Z0-9_:]*",
    "invalid-label-name": "label names must match [a-zA-Z_][a-zA-Z0-9_]*",
    "unsorted-labels": "label names must be sorted in lexicographical order",
    "duplicate-label": "a label name must not be repeated within a series",
    "empty-label-name": "label names must not be empty",
    "empty-label-value": "label values must not be empty (leave the label out instead)",
    "out-of-order": "samples of a series must be sent in timestamp order, across requests too",
    "duplicate-timestamp": "a series must not get two different values for the same timestamp",
    "symbols-table": "a 2.0 request's symbols table must start with the empty string",
}
"""Every rule the receiver checks, by id, with the requirement it enforces."""

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TEXT_LINE_RE = re.compile(rb"\s*(# (HELP|TYPE|UNIT|EOF)|[a-zA-Z_:][a-zA-Z0-9_:]*(\{|\s+[-+0-9NI]))")
_TEXT_TYPES = ("text/plain", "application/openmetrics-text")


@dataclass(frozen=True)
class Violation:
    """One broken rule: its id (a key of :data:`RULES`) and what exactly was wrong."""

    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


@dataclass
class Checked:
    """What validation found in one request.

    ``refused`` is None when the request may be accepted; otherwise it is the status the
    request must be refused with (its body undecodable, or in a format remote write is not),
    and the last of ``violations`` says why.
    """

    protocol: str | None = None
    decoded: DecodedRequest | None = None
    violations: list[Violation] = field(default_factory=list)
    refused: int | None = None
    samples: int = 0
    histograms: int = 0
    exemplars: int = 0


class _Refused(Exception):
    """A rule broken so badly that the request cannot be taken at all."""

    def __init__(self, status: int, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.violation = Violation(rule, detail)


def validate(headers: Mapping[str, str], body: bytes) -> Checked:
    """Check one request's headers and body against every rule of its protocol.

    Args:
        headers: the request's headers (a case-insensitive lookup).
        body: the raw (compressed) body.

    Returns:
        The protocol, the decoded request, the violations and the counts; ``refused`` set
        when the body cannot be taken (text format 415, framed or missing snappy 400, ...).
    """
    checked = Checked()
    violations = checked.violations
    try:
        checked.protocol = protocol = _protocol_of(headers, body, violations)
        _check_headers(headers, protocol, violations)
        checked.decoded = decoded = _decode(body, protocol)
    except _Refused as refused:
        violations.append(refused.violation)
        checked.refused = refused.status
        return checked
    violations.extend(_protocol_violations(decoded, body))
    for series in decoded.series:
        violations.extend(_label_violations(series.label_pairs))
        checked.samples += len(series.samples)
        checked.histograms += len(series.histograms)
        checked.exemplars += len(series.exemplars)
    return checked


def _protocol_of(headers: Mapping[str, str], body: bytes, violations: list[Violation]) -> str:
    """Return the protocol the ``Content-Type`` names; refuse the text format and other types."""
    content_type = headers.get("Content-Type") or ""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    proto = _param(params, "proto")
    if media in _TEXT_TYPES or (not _snappy.is_framed(body) and _looks_like_text(body)):
        raise _Refused(
            415,
            "text-format",
            "the body is the Prometheus text exposition format "
            f"(Content-Type {content_type or 'missing'}), "
            "the output of generate_latest(); /api/v1/write takes a snappy-compressed protobuf "
            "WriteRequest: use prometheus_rw_bridge.enable_remote_write() or generate_write_request()",
        )
    if media != "application/x-protobuf":
        if media:
            raise _Refused(
                415, "content-type", f"unsupported Content-Type {content_type!r}; {RULES['content-type']}"
            )
        violations.append(Violation("content-type", "no Content-Type header; assuming 1.0"))
    if proto not in (None, V1_PROTO, V2_PROTO):
        raise _Refused(415, "content-type", f"unsupported proto={proto!r}")
    return "2.0" if proto == V2_PROTO else "1.0"


def _check_headers(headers: Mapping[str, str], protocol: str, violations: list[Violation]) -> None:
    """Flag a missing or wrong encoding, version or User-Agent; refuse an encoding other than snappy."""
    encoding = (headers.get("Content-Encoding") or "").strip().lower()
    if encoding and encoding != "snappy":
        raise _Refused(
            415, "content-encoding", f"unsupported Content-Encoding {encoding!r}; it must be 'snappy'"
        )
    if not encoding:
        violations.append(Violation("content-encoding", "no Content-Encoding header; it must be 'snappy'"))
    version = headers.get("X-Prometheus-Remote-Write-Version")
    expected = ("2.",) if protocol == "2.0" else ("0.1.", "1.")
    if version is None or not version.strip().startswith(expected):
        want = "2.0.0" if protocol == "2.0" else "0.1.0"
        violations.append(
            Violation("version-header", f"X-Prometheus-Remote-Write-Version is {version!r}, expected {want}")
        )
    if not headers.get("User-Agent"):
        violations.append(Violation("user-agent", "no User-Agent header"))


def _decode(body: bytes, protocol: str) -> DecodedRequest:
    """Decode ``body`` as ``protocol``; refuse framed snappy, other compressions and non-protobuf."""
    if _snappy.is_framed(body):
        raise _Refused(
            400,
            "framed-snappy",
            "snappy: corrupt input: the body is framed snappy (it starts with the stream identifier "
            "ff 06 00 00 73 4e 61 50 70 59); remote write requires the snappy block format "
            "(cramjam.snappy.compress_raw, python-snappy's snappy.compress), not a framed stream",
        )
    try:
        return decode_write_request(body, protocol=protocol)
    except ValueError as exc:
        if "snappy" in str(exc):
            raise _Refused(400, "not-snappy", f"snappy: corrupt input: {exc}") from exc
        raise _Refused(400, "not-protobuf", str(exc)) from exc


def _protocol_violations(decoded: DecodedRequest, body: bytes) -> Iterator[Violation]:
    """Yield the rules of the message itself that ``decoded`` breaks."""
    if decoded.protocol == "2.0" and decoded.symbols and decoded.symbols[0] != "":
        yield Violation("symbols-table", f"symbols[0] is {decoded.symbols[0]!r}; it must be the empty string")
    if decoded.protocol == "1.0" and not decoded.series and not decoded.metadata and body:
        # A 2.0 message read as 1.0 is empty: its fields have other numbers.
        try:
            as_v2 = decode_write_request(body, protocol="2.0")
        except ValueError:
            return
        if as_v2.series:
            yield Violation(
                "content-type",
                f"the body is a remote-write 2.0 message ({len(as_v2.series)} series) sent with the 1.0 "
                f"Content-Type; send Content-Type: application/x-protobuf;proto={V2_PROTO}",
            )


def _label_violations(pairs: list[tuple[str, str]]) -> Iterator[Violation]:
    """Yield every label rule ``pairs`` breaks."""
    where = series_text(tuple(pairs))
    names = [name for name, _ in pairs]
    metric = dict(pairs).get("__name__")
    if not metric:
        yield Violation("missing-metric-name", f"{where}: no __name__ label")
    elif not _METRIC_NAME_RE.fullmatch(metric):
        yield Violation("invalid-metric-name", f"{where}: metric name {metric!r}")
    for previous, name in itertools.pairwise(names):
        if name < previous:
            yield Violation("unsorted-labels", f"{where}: label {name!r} comes after {previous!r}")
            break
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        yield Violation(
            "duplicate-label", f"{where}: label name(s) {', '.join(map(repr, duplicates))} repeated"
        )
    for name, value in pairs:
        if not name:
            yield Violation("empty-label-name", f"{where}: a label with an empty name (value {value!r})")
        elif name != "__name__" and not _LABEL_NAME_RE.fullmatch(name):
            yield Violation("invalid-label-name", f"{where}: label name {name!r}")
        if name and not value:
            yield Violation("empty-label-value", f"{where}: label {name!r} has an empty value")


def answer_for(violations: Sequence[Violation]) -> str:
    """Return the body a refusal answers with: the violations, one a line (at most 20)."""
    shown = violations[:20]
    more = f"\n... and {len(violations) - len(shown)} more" if len(violations) > len(shown) else ""
    return "\n".join(str(v) for v in shown) + more + "\n"


def _param(params: str, wanted: str) -> str | None:
    for part in params.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == wanted:
            return value.strip().strip('"')
    return None


def _looks_like_text(body: bytes) -> bool:
    """Tell whether ``body`` looks like uncompressed exposition text."""
    head = body[:512]
    if not head.strip():
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at 512 bytes; decide on the part before it.
        head = head[:-4]
    return _TEXT_LINE_RE.match(head) is not None and all(b >= 9 for b in head)


def same_value(a: float, b: float) -> bool:
    """Tell whether two sample values are the same (NaNs by kind: stale or not)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b) and is_stale_nan(a) == is_stale_nan(b)
    return a == b


def series_text(pairs: Sequence[tuple[str, str]]) -> str:
    """Render a label set as ``name{label=\"value\",...}`` in the order given, for messages."""
    labels = dict(pairs)
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs if k != "__name__")
    return labels.get("__name__", "") + "{" + inner + "}"
