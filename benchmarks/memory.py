"""Memory the bridge keeps between pushes, and the peak of one push, per protocol; one fresh process each.

Imported by ``bench_encode.py``, which runs ``python benchmarks/memory.py PROTOCOL SAMPLES``
once per protocol, so that no measurement inherits another's heap.  The child:

1. measures RSS and traced memory (``tracemalloc``, started first), builds the benchmark
   registry and measures again: the registry's own growth;
2. starts a real bridge (``enable_remote_write``, protocol as given, to a no-op receiver in a
   grandchild process), pushes three times with ``flush()``, collects garbage and measures
   again: what the bridge keeps;
3. pushes once more with the peak reset: the peak extra traced memory of one push, against
   the size of that protocol's uncompressed body.

It prints one JSON line.  RSS includes what the allocator keeps after frees (and the bridge's
threads' stacks); traced memory counts only live Python allocations, so both are given.
``tracemalloc`` itself costs memory per allocation, so RSS comes from a second child that
does not trace.
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from typing import Any


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        import os

        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _trimmed_rss() -> int:
    """RSS once glibc has returned the free memory it caches (diagnostic; the bridge trims only when auto settles)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return _rss()


def measure(protocol: str, samples: int, traced: bool) -> dict[str, Any]:
    from workload import INSTANCE, JOB, NoOpReceiver, bench_bridge, build_registry

    from prometheus_rw_bridge._protocol.encode import Encoder
    from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
    from prometheus_rw_bridge._protocol.registry import read

    def start(url: str, registry: Any) -> Any:
        return bench_bridge(url, registry, protocol=protocol)

    with NoOpReceiver() as url:
        # Import and warm up everything a push uses (httpx, ssl, ...) before the first measurement.
        warm_up = start(url, build_registry(1000))
        assert warm_up.flush(timeout=60)
        warm_up.close(timeout=10)
        del warm_up
        if traced:
            tracemalloc.start()
        gc.collect()
        rss0, traced0 = _rss(), tracemalloc.get_traced_memory()[0]
        registry = build_registry(samples)
        gc.collect()
        rss1, traced1 = _rss(), tracemalloc.get_traced_memory()[0]
        bridge = start(url, registry)
        for _ in range(3):
            assert bridge.flush(timeout=300)
        gc.collect()
        rss2, traced2 = _rss(), tracemalloc.get_traced_memory()[0]
        rss_trimmed = _trimmed_rss()
        encoders = bridge._makers[0].encoders.values()
        series = sum(encoder.series_kept for encoder in encoders if encoder is not None)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert bridge.flush(timeout=300)
        peak = tracemalloc.get_traced_memory()[1] - base
        bridge.close(timeout=10)
    cls = EncoderV2 if protocol == "2.0" or protocol == "auto" else Encoder
    body = len(cls(job=JOB, instance=INSTANCE).encode(read(registry), 1).body())
    return {
        "protocol": protocol,
        "samples": samples,
        "registry_rss": rss1 - rss0,
        "registry_traced": traced1 - traced0,
        "kept_rss": rss2 - rss1,
        "kept_rss_trimmed": rss_trimmed - rss1,
        "kept_traced": traced2 - traced1,
        "series_kept": series,
        "push_peak": peak,
        "body": body,
    }


def run(protocol: str, samples: int) -> dict[str, Any]:
    """Measure in two fresh child processes (traced, and not for RSS); return the numbers."""
    traced = _child(protocol, samples, "traced")
    plain = _child(protocol, samples, "rss")
    for key in ("registry_rss", "kept_rss", "kept_rss_trimmed"):
        traced[key] = plain[key]
    return traced


def _child(protocol: str, samples: int, mode: str) -> dict[str, Any]:
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, os.path.join(here, "memory.py"), protocol, str(samples), mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=here,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def rows(samples: int) -> list[str]:
    """Markdown rows for 1.0, 2.0 and auto (settled on 2.0)."""
    out = []
    for protocol in ("1.0", "2.0", "auto"):
        m = run(protocol, samples)
        out.append(
            f"| {protocol} | {m['samples']:,} | {m['registry_rss'] / 1e6:.1f} MB / {m['registry_traced'] / 1e6:.1f} MB "
            f"| {m['kept_rss'] / 1e6:.1f} MB / {m['kept_traced'] / 1e6:.1f} MB "
            f"| **{m['kept_rss'] / m['registry_rss']:.2f}x** / {m['kept_traced'] / m['registry_traced']:.2f}x "
            f"| {m['kept_rss_trimmed'] / 1e6:.1f} MB = {m['kept_rss_trimmed'] / m['registry_rss']:.2f}x "
            f"| {m['kept_traced'] / max(1, m['series_kept']):.0f} B "
            f"| {m['push_peak'] / 1e6:.1f} MB = **{m['push_peak'] / m['body']:.2f}x** the {m['body'] / 1e6:.1f} MB body |"
        )
    return out


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "traced")))
