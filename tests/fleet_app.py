"""One process of the fleet test (tests/test_integration_fleet.py): SERIES gauges pushed every second.

    python fleet_app.py URL INSTANCE SERIES

Pushes ``fleet_value{n="0".."SERIES-1"}`` every second (job ``fleet``, the given instance) until
stdin ends, then closes the bridge and prints its stats as one line of JSON.  Each value is the
number of the collection, so a store can be checked sample by sample.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from prometheus_rw_bridge import enable_remote_write


class Fleet:
    """``SERIES`` gauge series whose value is the number of the collection."""

    def __init__(self, series: int) -> None:
        self.series = [str(n) for n in range(series)]
        self.collections = 0

    def collect(self) -> Iterator[Any]:
        self.collections += 1
        family = GaugeMetricFamily("fleet_value", "The collection's number.", labels=["n"])
        for n in self.series:
            family.add_metric([n], self.collections)
        yield family


def main() -> None:
    url, instance, series = sys.argv[1], sys.argv[2], int(sys.argv[3])
    registry = CollectorRegistry()
    registry.register(Fleet(series))
    bridge = enable_remote_write(
        url,
        registry=registry,
        interval=1,
        job="fleet",
        instance=instance,
        self_metrics=False,
        stale_on_close=False,
    )
    print("started", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    bridge.close(timeout=60)
    print(json.dumps(dataclasses.asdict(bridge.stats)), flush=True)


if __name__ == "__main__":
    main()
