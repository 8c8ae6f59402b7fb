"""The public test double, as a user's tests see it: its names, its guide's examples, reading values."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

import prometheus_rw_bridge.testing
from prometheus_rw_bridge import enable_remote_write, push_to_remote_write
from prometheus_rw_bridge.testing import Receiver

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def test_the_public_names() -> None:
    assert sorted(prometheus_rw_bridge.testing.__all__) == [
        "HANG",
        "RULES",
        "ReceivedRequest",
        "Receiver",
        "Reply",
        "StoredSeries",
        "Violation",
        "refused_url",
    ]
    assert prometheus_rw_bridge.testing.__all__ == sorted(prometheus_rw_bridge.testing.__all__)


def test_the_guides_example_tests_pass(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    tests = [block for block in blocks if "def test_" in block]
    assert tests, "docs/testing.md has no example test"
    for number, block in enumerate(tests):
        (tmp_path / f"test_example_{number}.py").write_text(block)

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b2 passed\b", result.stdout), result.stdout


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(strict=True) as running:
        yield running


def pushed(receiver: Receiver, registry: CollectorRegistry) -> Receiver:
    push_to_remote_write(receiver.write_url, registry=registry, job="app", instance="here")
    return receiver


def test_value_of_the_one_matching_series(receiver: Receiver, registry: CollectorRegistry) -> None:
    Counter("jobs", "Jobs.", ["queue"], registry=registry).labels("fast").inc(3)

    assert pushed(receiver, registry).value("jobs_total", queue="fast") == 3
    assert receiver.value("jobs_total", queue="fast", job="app", instance="here") == 3


def test_value_says_what_arrived_if_nothing_matches(receiver: Receiver, registry: CollectorRegistry) -> None:
    Counter("jobs", "Jobs.", ["queue"], registry=registry).labels("fast").inc(3)
    pushed(receiver, registry)

    with pytest.raises(AssertionError) as raised:
        receiver.value("jobs_total", queue="slow")

    message = str(raised.value)
    assert message.startswith('no series matches jobs_total{queue="slow"}; received:\n')
    assert 'jobs_total{instance="here",job="app",queue="fast"} 3.0 ' in message


def test_value_wants_labels_enough_to_pick_one(receiver: Receiver, registry: CollectorRegistry) -> None:
    counter = Counter("jobs", "Jobs.", ["queue"], registry=registry)
    counter.labels("fast").inc()
    counter.labels("slow").inc()
    pushed(receiver, registry)

    with pytest.raises(AssertionError, match=r"2 series match jobs_total\{\}; add labels to pick one"):
        receiver.value("jobs_total")


def test_value_of_an_ended_series_says_it_ended(receiver: Receiver, registry: CollectorRegistry) -> None:
    Gauge("temperature", "Now.", registry=registry).set(21.5)
    bridge = enable_remote_write(receiver.write_url, registry=registry, interval=3600, self_metrics=False)
    assert bridge.flush(timeout=10)
    assert receiver.value("temperature") == 21.5

    bridge.close(timeout=10)

    (series,) = receiver.series("temperature")
    assert series.stale
    with pytest.raises(AssertionError, match=r"ended with a stale marker .*stale_on_close=False"):
        receiver.value("temperature")


def test_series_are_filtered_typed_and_sorted(receiver: Receiver, registry: CollectorRegistry) -> None:
    Histogram("latency_seconds", "Latency.", buckets=(0.5, 10.0), registry=registry).observe(0.7)
    Gauge("up", "Up.", registry=registry).set(1)
    pushed(receiver, registry)

    buckets = receiver.series("latency_seconds_bucket")
    assert [(s.labels["le"], s.value) for s in buckets] == [("0.5", 0.0), ("10.0", 1.0), ("+Inf", 1.0)]
    assert {(s.family, s.metric_type) for s in buckets} == {("latency_seconds", "histogram")}
    assert buckets[0].labels == {"instance": "here", "job": "app", "le": "0.5"}
    assert [s.name for s in receiver.series(job="app")][-1] == "up"
    assert receiver.series("up", job="other") == []
    assert receiver.get("up") is not None and receiver.get("down") is None
