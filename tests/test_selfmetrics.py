"""The self-metrics collector: Prometheus's names, cumulative buckets, no file in a multiprocess directory."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from prometheus_rw_bridge._delivery.ledger import EndpointStats
from prometheus_rw_bridge._delivery.selfmetrics import SelfMetricsCollector
from prometheus_rw_bridge.testing import Receiver


@dataclass
class FakeSender:
    """What the collector reads from a sender: its stats and the durations since the last call."""

    durations: list[float] = field(default_factory=list)

    def stats(self) -> EndpointStats:
        return EndpointStats(url="http://r.test/api/v1/write", remote_name="r", samples_sent=7)

    def take_batch_durations(self) -> list[float]:
        taken, self.durations = self.durations, []
        return taken


def buckets(collector: SelfMetricsCollector) -> dict[str, float]:
    [family] = [f for f in collector.collect() if f.name.endswith("sent_batch_duration_seconds")]
    return {
        s.labels.get("le", s.name.rsplit("_", 1)[-1]): s.value
        for s in family.samples
        if s.name.endswith(("_bucket", "_count", "_sum"))
    }


def test_durations_land_in_the_le_bucket_and_stay_cumulative_across_collections() -> None:
    sender = FakeSender([0.005, 0.0051, 0.3, 61.0])
    collector = SelfMetricsCollector(lambda: [sender])
    first = buckets(collector)
    assert first["0.005"] == 1.0  # a value equal to a bound counts in that bound's bucket
    assert first["0.01"] == 2.0
    assert first["0.25"] == 2.0 and first["0.5"] == 3.0
    assert first["60.0"] == 3.0 and first["+Inf"] == 4.0
    assert first["count"] == 4.0 and first["sum"] == pytest.approx(61.3101)
    sender.durations = [0.001]
    second = buckets(collector)
    assert second["0.005"] == 2.0 and second["+Inf"] == 5.0  # earlier observations are kept


def test_the_families_carry_prometheus_names_and_endpoint_labels() -> None:
    collector = SelfMetricsCollector(lambda: [FakeSender()])
    families = {f.name: f for f in collector.collect()}
    assert families["prometheus_remote_storage_samples"].samples[0].labels == {
        "remote_name": "r",
        "url": "http://r.test/api/v1/write",
    }
    assert families["prometheus_remote_storage_samples"].samples[0].value == 7


def test_under_prometheus_multiproc_dir_the_self_metrics_write_no_file(
    tmp_path: Path, fault_receiver: Receiver
) -> None:
    """A prometheus_client Histogram would leave histogram_<pid>.db in the directory (merged views)."""
    code = f"""
from prometheus_client import CollectorRegistry
import prometheus_rw_bridge as prw
registry = CollectorRegistry()
bridge = prw.enable_remote_write({fault_receiver.url!r}, registry=registry, interval=3600, job="j",
                                 instance="i", self_metrics=True)
assert bridge.flush(timeout=30) and bridge.flush(timeout=30)
bridge.close()
"""
    env: dict[str, Any] = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = {s.name for r in fault_receiver.requests if r.decoded for s in r.decoded.series}
    assert "prometheus_remote_storage_sent_batch_duration_seconds_bucket" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == []
