"""CPU per push of the library's threads beside a busy application thread, from the OS's own counters.

Imported by ``bench_encode.py``.  Each round runs two modes one after the other, the order
alternating, while an application thread spins on pure-Python work the whole time:

* **collect() alone**: a ticking thread calls ``list(registry.collect())`` once per push;
  its CPU is that thread's ``time.thread_time()`` around the call (what any exporter pays);
* **the library**: a real bridge (``enable_remote_write`` to a no-op receiver in a child
  process), its pushes triggered by ``flush()`` from the same ticking thread.  ``flush()``
  collects and encodes on the calling thread and waits for the sender thread to post; the
  push's CPU is the ticking thread's ``thread_time()`` plus the CPU the sender thread(s) used
  meanwhile, read from ``/proc/self/task/<tid>/schedstat`` (nanoseconds on the CPU).

Thread CPU time counts only the time a thread ran, so waiting for the GIL held by the
application thread, or for a CPU another process holds, does not inflate it: that is why this
measure is stable on a shared machine where throughput windows are not.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from workload import NoOpReceiver, bench_bridge


def _schedstat_ns(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/schedstat") as stat:
        return int(stat.read().split()[0])


class BusyApp:
    """An application thread doing CPU-bound pure-Python work until stopped."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.units = 0
        self.thread = threading.Thread(target=self._run, name="bench-app", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for i in range(200):
                total += i * i % 7
            self.units += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def _sender_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("prometheus-rw-bridge-send")]


def library_push_cpu(bridge: Any) -> tuple[float, float]:
    """Run one push through ``bridge.flush()``; return the CPU seconds of the pushing thread and the senders."""
    senders = [t.native_id for t in _sender_threads() if t.native_id is not None]
    before = [_schedstat_ns(tid) for tid in senders]
    start = time.thread_time()
    assert bridge.flush(timeout=120), "the no-op receiver did not take a push"
    own = time.thread_time() - start
    return own, sum(_schedstat_ns(tid) - b for tid, b in zip(senders, before, strict=True)) / 1e9


def collect_cpu(registry: Any) -> float:
    """``list(registry.collect())`` once; return the calling thread's CPU seconds."""
    start = time.thread_time()
    list(registry.collect())
    return time.thread_time() - start


def push_cpu(registry: Any, protocol: str, pushes: int, rounds: int) -> dict[str, list[float]]:
    """Per-push CPU of ``collect()`` alone and of the library, ``rounds`` interleaved rounds of ``pushes``."""
    results: dict[str, list[float]] = {"collect()": [], "library": [], "pushing": [], "senders": []}
    with NoOpReceiver() as url:
        bridge = bench_bridge(url, registry, protocol=protocol)  # pushes come from flush() below
        app = BusyApp()
        result: dict[str, list[float]] = {}
        try:
            for _ in range(2):  # the first pushes build templates (and settle auto): not measured
                library_push_cpu(bridge)
            for round_ in range(rounds):
                modes = ["collect()", "library"] if round_ % 2 == 0 else ["library", "collect()"]
                for mode in modes:
                    for _ in range(pushes):
                        if mode == "library":
                            own, senders = library_push_cpu(bridge)
                            results["library"].append(own + senders)
                            results["pushing"].append(own)
                            results["senders"].append(senders)
                        else:
                            results[mode].append(collect_cpu(registry))
            result = results
        finally:
            app.close()
            bridge.close(timeout=10)
    return result


def rows(registry: Any, samples: int, pushes: int, rounds: int) -> list[str]:
    """Markdown rows: per-push CPU medians and the ratio, for 1.0, 2.0 and auto."""
    out = []
    for protocol in ("1.0", "2.0", "auto"):
        got = push_cpu(registry, protocol, pushes, rounds)
        base = statistics.median(got["collect()"])
        lib = statistics.median(got["library"])
        own, senders = statistics.median(got["pushing"]), statistics.median(got["senders"])
        out.append(
            f"| {samples:,} | {protocol} | {len(got['library'])} | {base * 1000:.2f} ms | {lib * 1000:.2f} ms "
            f"({own * 1000:.2f} + {senders * 1000:.2f}) | **{lib / base:.2f}x** |"
        )
    return out
