"""A fleet: 12 processes x 5,000 series, every second, through a real vmagent into two VictoriaMetrics.

vmagent replicates everything it receives to both stores, each with a persistent queue of its
own.  One store is stopped while the fleet keeps pushing, and started again (same port, same
data).  At the end every series of every process is in both stores with every sample, and no
process failed or dropped anything (its ``BridgeStats``), nor did vmagent (its own counters).
This is the topology docs/guides/many-instances.md describes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from servers import Server, start_victoriametrics, start_vmagent, wait_until

APP = Path(__file__).with_name("fleet_app.py")
PROCESSES = 12
SERIES = 5_000


def collections_in(store: Server) -> dict[str, int]:
    """Per instance, the samples of ``fleet_value`` the store holds, in whole collections."""
    store.flush()
    got = store.query_vector('sum by (instance) (count_over_time(fleet_value{job="fleet"}[1h]))')
    return {dict(labels)["instance"]: int(value) // SERIES for labels, value in got.items()}


def series_in(store: Server) -> dict[str, int]:
    """Per instance, how many series of ``fleet_value`` the store holds."""
    got = store.query_vector('count by (instance) (last_over_time(fleet_value{job="fleet"}[1h]))')
    return {dict(labels)["instance"]: int(value) for labels, value in got.items()}


def vmagent_counter(agent: Server, name: str) -> float:
    """Sum a counter of vmagent's own /metrics over its labels."""
    text = agent._client.get(agent.url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@pytest.mark.integration
def test_a_fleet_through_vmagent_reaches_both_stores_whole_while_one_is_restarted(tmp_path: Path) -> None:
    dedup = ["-dedup.minScrapeInterval=1ms"]  # a block vmagent sends twice (at least once) counts once
    stores = [start_victoriametrics(tmp_path / f"store-{i}", extra_args=dedup) for i in range(2)]
    apps: list[subprocess.Popen[str]] = []
    try:
        agent = start_vmagent(tmp_path / "vmagent", [store.write_url for store in stores])
        instances = [f"app-{i}" for i in range(PROCESSES)]
        for instance in instances:
            apps.append(
                subprocess.Popen(
                    [sys.executable, str(APP), agent.write_url, instance, str(SERIES)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for app in apps:
            assert app.stdout is not None and app.stdout.readline().strip() == "started"
        first, second = stores

        def every_instance_has(store: Server, at_least: dict[str, int]) -> bool:
            got = collections_in(store)
            return all(got.get(instance, 0) >= count for instance, count in at_least.items())

        wait_until(
            lambda: every_instance_has(second, dict.fromkeys(instances, 2)),
            timeout=120,
            message="two collections of every process in the second store",
        )
        second.stop()  # down while the fleet keeps pushing: vmagent queues for it on disk
        at_stop = collections_in(first)
        wait_until(
            lambda: every_instance_has(first, {i: at_stop.get(i, 0) + 3 for i in instances}),
            timeout=120,
            message="three more collections of every process while the second store is down",
        )
        second.restart()
        after = collections_in(first)
        wait_until(
            lambda: every_instance_has(first, {i: after[i] + 2 for i in instances}),
            timeout=120,
            message="two more collections after the restart",
        )
        stats = finish(apps)
        expected = {instance: s["collections"] for instance, s in zip(instances, stats, strict=True)}
        print(f"\ncollections per process: {expected}; second store stopped at {at_stop}")
        for s in stats:
            assert s["samples_failed"] == 0 and s["samples_dropped"] == 0, s
            assert s["samples_pending"] == 0 and s["collection_errors"] == 0, s
        for store in stores:
            wait_until(
                lambda store=store: collections_in(store) == expected,
                timeout=180,
                message=f"every sample of every process in {store.url}: {expected}",
            )
            assert series_in(store) == dict.fromkeys(instances, SERIES)
        assert vmagent_counter(agent, "vmagent_remotewrite_packets_dropped_total") == 0
        assert vmagent_counter(agent, "vm_persistentqueue_bytes_dropped_total") == 0
        agent.stop()
    finally:
        for app in apps:
            if app.poll() is None:
                app.kill()
                app.wait(30)
        for store in stores:
            store.stop()


def finish(apps: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Let every app close its bridge (a last collection each), and return their stats."""
    for app in apps:
        assert app.stdin is not None
        app.stdin.close()
    stats = []
    for app in apps:
        assert app.stdout is not None
        line = app.stdout.readline()
        assert app.wait(120) == 0, line
        stats.append(json.loads(line))
    return stats
