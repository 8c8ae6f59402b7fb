"""The merged view of prometheus_client's multiprocess files that pre-fork servers' parents push."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prometheus_rw_bridge._multiprocess import ProcessFiles

CHILD = """
import os
from prometheus_client import Counter, Gauge
Counter("jobs", "Jobs.").inc(3)
Gauge("busy", "Busy.", multiprocess_mode="livesum").set(1)
os._exit(0)  # killed, as it were: nothing marks it dead
"""


def run_child(directory: Path) -> None:
    """Run a process that writes a counter and a live gauge to ``directory`` and exits without a word."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": ""}
    subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, timeout=60)


def values(files: ProcessFiles) -> dict[str, float]:
    return {sample.name: sample.value for family in files.collect() for sample in family.samples}


@pytest.mark.parametrize("forget_dead", [False, True])
def test_a_dead_process_keeps_its_counts_and_loses_its_live_gauges_only_if_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_dead: bool
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    run_child(tmp_path)

    seen = values(ProcessFiles(str(tmp_path), forget_dead=forget_dead))

    assert seen["jobs_total"] == 3
    assert ("busy" in seen) is not forget_dead
    assert any(path.name.startswith("gauge_livesum_") for path in tmp_path.iterdir()) is not forget_dead


def test_an_empty_file_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # prometheus_client creates a process's file a moment before it sizes it (client_python#1199).
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    run_child(tmp_path)
    (tmp_path / "counter_999999.db").touch()

    assert values(ProcessFiles(str(tmp_path)))["jobs_total"] == 3
