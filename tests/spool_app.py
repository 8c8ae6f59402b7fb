"""An application for tests/test_integration_spool.py: a bridge with a spool, driven line by line.

    python spool_app.py URL SPOOL_DIR FIRST_VALUE

It sets the gauge ``spooled_value`` to FIRST_VALUE, enables remote write (interval one hour, so
only the start-up collection and the commands collect) and waits until the start-up collection
has run.  Every answer is a line on stdout, written once the step is done:

    ready                   the start-up collection (value FIRST_VALUE) is being made
    push   -> spooled V     the gauge was set to V (the previous value + 1), collected, spooled;
                            so was every collection before it, the start-up one included
    close  -> closed JSON   the bridge was closed; JSON holds its stats; then the process exits

A collection is spooled before ``flush()`` starts waiting for it, so ``spooled V`` means V is
on disk.  The parent may SIGKILL this process at any point.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from prometheus_rw_bridge import enable_remote_write


class Collections:
    """A collector yielding nothing, counting the collections that read it."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.count = 0

    def collect(self) -> list[Any]:
        with self.cond:
            self.count += 1
            self.cond.notify_all()
        return []

    def wait_for(self, count: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.count >= count, timeout=60):
                raise SystemExit(f"collection {count} never ran")


def main() -> None:
    url, spool_dir, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    registry = CollectorRegistry()
    collections = Collections()
    registry.register(collections)
    gauge = Gauge("spooled_value", "The value of each collection, one apart.", registry=registry)
    value = first
    gauge.set(value)
    bridge = enable_remote_write(
        url,
        registry=registry,
        interval=3600,
        job="spool",
        instance="app",
        spool_dir=spool_dir,
        self_metrics=False,
        stale_on_close=False,
        timeout=2,
    )
    collections.wait_for(1)
    say("ready")
    for line in sys.stdin:
        command = line.strip()
        if command == "push":
            value += 1
            gauge.set(value)
            before = collections.count
            while collections.count == before:  # flush() skips its collection only if another runs
                bridge.flush(timeout=0.01)
            say(f"spooled {value}")
        elif command == "close":
            bridge.close(timeout=30)
            say(f"closed {json.dumps(dataclasses.asdict(bridge.stats))}")
            return


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
