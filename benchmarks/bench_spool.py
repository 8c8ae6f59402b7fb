"""Spool benchmark: what spooling a collection costs, as ratios of compressing it.

Run from the repository root (about a minute)::

    .venv/bin/python benchmarks/bench_spool.py [--sizes 10k,100k] [--repeat 15] [--dir /tmp]

For each registry size the collection is encoded once and cut into the requests the sender
sends (2,000 samples each, snappy); then each repetition runs every candidate once over all of
those requests, starting at a different candidate each time, and the medians of per-thread CPU
time (``time.thread_time``) and wall time are printed with their ratio to ``compress``, the
snappy compression the sender does anyway:

- ``compress``: snappy over the uncompressed requests (the baseline);
- ``crc32``: ``zlib.crc32`` over the compressed requests (the part of an append that grows);
- ``append``: ``Spool.append`` of each request (no fsync);
- ``append+ack``: append, then ack each, as a delivered collection costs;
- ``append+sync``: append each, then one ``sync()`` with ``fsync_interval=0`` (per collection);
- ``replay``: reading every request back with ``Spool.records()``.

Then the wall time of one fsync after writes of several sizes, the CPU of an append+ack of a
tiny request (the fixed cost), and the wall time of opening (recovering) a spool of 64 MiB.
``--dir`` picks the filesystem (the default is the temp directory).  Nothing here runs in the
test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_encode import INSTANCE, JOB, TIMESTAMP_MS, build_registry

from prometheus_rw_bridge._delivery.spool import HEADER_BYTES, Spool
from prometheus_rw_bridge._protocol import snappy as _snappy
from prometheus_rw_bridge._protocol.encode import Encoder, collect


def parse_size(text: str) -> int:
    text = text.lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def requests_of(samples: int) -> tuple[list[bytes], list[bytes]]:
    """The uncompressed and compressed requests of one collection of ``samples`` samples."""
    encoded = Encoder(job=JOB, instance=INSTANCE).encode(collect(build_registry(samples)), TIMESTAMP_MS)
    raw = [body for body, _count in encoded.iter_split(2000)]
    return raw, [_snappy.compress(body) for body in raw]


def measure(
    directory: Path, raw: list[bytes], compressed: list[bytes], repeat: int
) -> dict[str, list[tuple[float, float]]]:
    spool = Spool(directory / "bench", max_bytes=1 << 34, fsync_interval=0)
    appended: list[int] = []

    def append_one(body: bytes) -> int:
        record_id = spool.append(
            body, protocol="1.0", samples=2000, seq=1, timestamp_ms=TIMESTAMP_MS
        ).record_id
        assert record_id is not None
        return record_id

    def append() -> None:
        appended.extend(append_one(body) for body in compressed)

    def append_ack() -> None:
        for body in compressed:
            spool.ack(append_one(body))

    def append_sync() -> None:
        append()
        spool.sync()

    def replay() -> None:
        count = sum(1 for _ in spool.records())
        assert count == len(compressed)

    def cleanup() -> None:  # outside the timings: keep the spool small
        for record_id in appended:
            spool.ack(record_id)
        appended.clear()

    candidates: dict[str, Callable[[], None]] = {
        "compress": lambda: [_snappy.compress(body) for body in raw] and None,
        "crc32": lambda: [zlib.crc32(body) for body in compressed] and None,
        "append": append,
        "append+ack": append_ack,
        "append+sync": append_sync,
    }
    names = [*candidates, "replay"]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for rep in range(repeat + 1):  # the first round warms up
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            if name == "replay":
                append()  # what is replayed, untimed
            cpu, wall = time.thread_time(), time.perf_counter()
            if name == "replay":
                replay()
            else:
                candidates[name]()
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            cleanup()
            if rep:
                results[name].append((cpu, wall))
    spool.close()
    return results


def fsync_costs(directory: Path, repeat: int) -> list[str]:
    rows = []
    fd = os.open(directory / "fsync-probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1024, 64 * 1024, 1024 * 1024):
            walls = []
            for _ in range(repeat):
                os.write(fd, b"x" * size)
                start = time.perf_counter()
                os.fsync(fd)
                walls.append(time.perf_counter() - start)
            rows.append(
                f"| fsync after a {size // 1024} KiB write | {statistics.median(walls) * 1000:.3f} ms |"
            )
    finally:
        os.close(fd)
        os.unlink(directory / "fsync-probe")
    return rows


def open_cost(directory: Path, compressed: list[bytes], megabytes: int) -> str:
    path = directory / "recover"
    with Spool(path, max_bytes=1 << 34, fsync_interval=None) as spool:
        written = 0
        while written < megabytes << 20:
            for body in compressed:
                spool.append(body, protocol="1.0", samples=2000, seq=1, timestamp_ms=TIMESTAMP_MS)
                written += HEADER_BYTES + len(body)
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        Spool(path, max_bytes=1 << 34, fsync_interval=None).close()
        walls.append(time.perf_counter() - start)
    wall = statistics.median(walls)
    mib = written / 2**20
    return (
        f"| open (recover, check every crc) {mib:.0f} MiB | {wall * 1000:.0f} ms ({mib / wall:.0f} MiB/s) |"
    )


def fixed_cost(directory: Path, repeat: int) -> str:
    """CPU of one append+ack of a 100-byte request: the part that does not grow with the body."""
    costs = []
    with Spool(directory / "fixed", fsync_interval=None) as spool:
        for _ in range(repeat):
            start = time.thread_time()
            for _ in range(1000):
                record_id = spool.append(
                    b"x" * 100, protocol="1.0", samples=1, seq=1, timestamp_ms=1
                ).record_id
                assert record_id is not None
                spool.ack(record_id)
            costs.append((time.thread_time() - start) / 1000)
    return f"| CPU of append+ack of a 100-byte request | {statistics.median(costs) * 1e6:.1f} µs |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--recover-mib", type=int, default=64)
    args = parser.parse_args()
    print(
        f"- Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"spool in {args.dir}; medians of {args.repeat} interleaved rounds.\n"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        compressed: list[bytes] = []
        for size_text in args.sizes.split(","):
            raw, compressed = requests_of(parse_size(size_text))
            total = sum(map(len, compressed))
            overhead = HEADER_BYTES * len(compressed) / total
            print(
                f"### {size_text} samples: {len(compressed)} requests, {total / 1024:.0f} KiB compressed; "
                f"header overhead {HEADER_BYTES} B/request = {overhead:.3%}\n"
            )
            print("| candidate | CPU per collection | ratio to compress | wall | ratio |")
            print("| --- | --- | --- | --- | --- |")
            results = measure(directory, raw, compressed, args.repeat)
            base_cpu = statistics.median(c for c, _ in results["compress"])
            base_wall = statistics.median(w for _, w in results["compress"])
            for name, values in results.items():
                cpu = statistics.median(c for c, _ in values)
                wall = statistics.median(w for _, w in values)
                print(
                    f"| {name} | {cpu * 1000:.3f} ms | {cpu / base_cpu:.2f} | {wall * 1000:.3f} ms | "
                    f"{wall / base_wall:.2f} |"
                )
            print()
        print("| disk | wall |")
        print("| --- | --- |")
        for row in fsync_costs(directory, args.repeat):
            print(row)
        print(fixed_cost(directory, args.repeat))
        print(open_cost(directory, compressed, args.recover_mib))


if __name__ == "__main__":
    main()
