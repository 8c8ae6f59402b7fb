"""Per-request rules, checked without a server."""

from __future__ import annotations

import cramjam
import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from prometheus_rw_bridge import REMOTE_WRITE_HEADERS, REMOTE_WRITE_V2_HEADERS, generate_write_request
from prometheus_rw_bridge._protocol.wire import STALE_NAN
from prometheus_rw_bridge._tools.validate import RULES, answer_for, same_value, validate


def registry() -> CollectorRegistry:
    result = CollectorRegistry()
    Gauge("temperature", "Now.", ["room"], registry=result).labels("hall").set(21.5)
    return result


def test_a_correct_request_has_no_violations() -> None:
    result = validate(dict(REMOTE_WRITE_HEADERS), generate_write_request(registry(), timestamp_ms=1000))

    assert (result.refused, result.violations, result.protocol, result.samples) == (None, [], "1.0", 1)
    assert result.decoded is not None


@pytest.mark.parametrize(
    ("headers", "body", "status", "rule"),
    [
        pytest.param({}, generate_latest(registry()), 415, "text-format", id="text-no-headers"),
        pytest.param(
            dict(REMOTE_WRITE_HEADERS),
            bytes(cramjam.snappy.compress(b"\x0a\x00")),
            400,
            "framed-snappy",
            id="framed",
        ),
        pytest.param(dict(REMOTE_WRITE_HEADERS), b"\xff\x00\x01", 400, "not-snappy", id="not-snappy"),
        pytest.param(
            dict(REMOTE_WRITE_V2_HEADERS, **{"Content-Type": "application/x-protobuf;proto=foo.Bar"}),
            b"",
            415,
            "content-type",
            id="unknown-proto",
        ),
    ],
)
def test_refused_requests(headers: dict[str, str], body: bytes, status: int, rule: str) -> None:
    result = validate(headers, body)

    assert result.refused == status
    assert [v.rule for v in result.violations] == [rule]
    assert answer_for(result.violations).startswith(rule + ":")
    assert rule in RULES


def test_a_header_violation_is_listed_but_does_not_refuse_the_request() -> None:
    headers = {k: v for k, v in REMOTE_WRITE_HEADERS.items() if k != "User-Agent"}
    body = generate_write_request(registry(), timestamp_ms=1000)

    result = validate(headers, body)

    assert result.refused is None and result.decoded is not None
    assert answer_for(result.violations) == "user-agent: no User-Agent header\n"


def test_the_answer_lists_at_most_twenty_violations() -> None:
    headers: dict[str, str] = {}
    body = generate_write_request(registry(), timestamp_ms=1000)
    violations = validate(headers, body).violations * 10

    answer = answer_for(violations)

    assert answer.count("\n") == 21
    assert answer.endswith(f"... and {len(violations) - 20} more\n")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param(1.0, 1.0, True, id="equal"),
        pytest.param(1.0, 2.0, False, id="different"),
        pytest.param(float("nan"), float("nan"), True, id="nan"),
        pytest.param(STALE_NAN, float("nan"), False, id="stale-vs-nan"),
        pytest.param(STALE_NAN, STALE_NAN, True, id="stale"),
    ],
)
def test_same_value(a: float, b: float, same: bool) -> None:
    assert same_value(a, b) is same
