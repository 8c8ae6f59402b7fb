"""_samples: timestamps as a scrape gives them, exemplars as remote-write 1.0 entries."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.samples import Exemplar, Timestamp

from prometheus_rw_bridge._protocol import schema as _schema
from prometheus_rw_bridge._protocol.samples import exemplar_entry_v1, to_millis


class _Stamped:
    """A collector yielding one gauge sample with the given own timestamp."""

    def __init__(self, stamp: Any) -> None:
        self.stamp = stamp

    def collect(self) -> list[Metric]:
        family = Metric("t", "h", "gauge")
        family.add_sample("t", {}, 1.0, timestamp=self.stamp)
        return [family]


def _scraped_millis(stamp: Any) -> int:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Stamped(stamp))
    line = generate_latest(registry).decode().splitlines()[-1]
    return int(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(Timestamp(1, 3_000_000), id="float-rounding"),
        pytest.param(Timestamp(-1, 500_000_001), id="negative"),
        pytest.param(Timestamp(1_700_000_000, 999_999_999), id="rounds-up"),
        pytest.param(Timestamp(1_700_000_000, 123_000_000), id="exact"),
        pytest.param(1_700_000_000.0005, id="float"),
        pytest.param(-0.0015, id="negative-float"),
    ],
)
def test_to_millis_is_the_scrapes_millisecond(stamp: Any) -> None:
    assert to_millis(stamp) == _scraped_millis(stamp)


def test_to_millis_documented_examples() -> None:
    assert to_millis(Timestamp(1, 3_000_000)) == 1002
    assert to_millis(Timestamp(-1, 500_000_001)) == -1500


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(1.2e18, id="seconds-beyond-int64-ms"),
        pytest.param(-1.2e18, id="negative"),
        pytest.param(float("inf"), id="inf"),
        pytest.param(2**63 / 1000, id="just-above"),
    ],
)
def test_to_millis_refuses_timestamps_outside_int64(stamp: float) -> None:
    with pytest.raises(OverflowError):
        to_millis(stamp)


def test_to_millis_accepts_the_int64_edges() -> None:
    assert to_millis(-(2**63) / 1000) == -(2**63)
    assert to_millis(9_000_000_000_000_000.0) == 9_000_000_000_000_000_000


def test_exemplar_entry_v1_parses() -> None:
    entry = exemplar_entry_v1(Exemplar({"trace_id": "abc", "empty": ""}, 0.5, Timestamp(2, 0)), 1000)
    series = _schema.TimeSeries.FromString(entry)
    (ex,) = series.exemplars
    assert [(lab.name, lab.value) for lab in ex.labels] == [("trace_id", "abc")]
    assert ex.value == 0.5 and ex.timestamp == 2000


def test_exemplar_entry_v1_raises_for_a_bad_label_value() -> None:
    with pytest.raises(UnicodeEncodeError):
        exemplar_entry_v1(Exemplar({"trace_id": "\ud800"}, 0.5), 1000)
