"""Encode benchmark: prometheus-rw-bridge side by side with collect() and the alternatives.

Run from the repository root (one command; about 20 minutes with the defaults)::

    .venv/bin/python benchmarks/bench_encode.py

Sections (``--sections``, default all): ``time`` (interleaved medians per call at each
``--sizes``, ratios to ``collect()``, and how cost per sample grows from the smallest size to
the largest), ``bytes`` (wire bytes per sample), ``cpu`` (the library's threads' CPU per
push beside a busy application thread, from per-thread OS counters; see ``thread_cpu.py``),
``memory`` (what the bridge keeps and the peak of one push, per protocol, each in a fresh
process; see ``memory.py``).  HTTP transports have a benchmark of their own,
``bench_transport.py``.

Every timing is the CPU time of the calling thread (``time.thread_time``), so other
processes on a shared machine do not inflate it; candidates are interleaved (each repetition
runs all of them once, starting at a different one each time) and the median is taken.
prometheus-remote-writer is optional (``.venv/bin/pip install prometheus-remote-writer==1.1.3``,
the ``benchmark`` extra); it is skipped, with a note, when missing.  The output is Markdown,
ready for ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from workload import (
    INSTANCE,
    JOB,
    TIMESTAMP_MS,
    build_registry,
    count_samples,
    machine,
    parse_size,
    protobuf_objects,
    remote_writer_candidate,
)

from prometheus_rw_bridge import generate_write_request
from prometheus_rw_bridge._protocol import snappy as _snappy
from prometheus_rw_bridge._protocol.batching import RequestStream, compress_requests
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
from prometheus_rw_bridge._protocol.registry import collect, read

SECTIONS = ("time", "bytes", "cpu", "memory")
BATCH = 2000  # series per request: Prometheus's default (the bridge's is 10,000; see docs/performance.md)


def candidates(samples: int, skip_large_baselines: bool) -> tuple[dict[str, Callable[[Any], Any]], list[str]]:
    """Every way of getting from the registry to request bytes (or, for collect(), to families)."""
    warm_v1 = Encoder(job=JOB, instance=INSTANCE, track_staleness=True)
    warm_v2 = EncoderV2(job=JOB, instance=INSTANCE, track_staleness=True)
    via_collect = Encoder(job=JOB, instance=INSTANCE, track_staleness=True)

    def push(encoder: Any, protocol: str, source: Callable[[Any], Any]) -> Callable[[Any], Any]:
        # What the bridge does each interval, less HTTP: read, encode, and cut and compress each
        # request while the encoder writes (a RequestStream, as the bridge does).
        def run(registry: CollectorRegistry) -> Any:
            stream = RequestStream(protocol, BATCH)
            encoder.encode(source(registry), TIMESTAMP_MS, stream=stream)
            return stream.finish()

        return run

    def cold(protocol: str) -> Callable[[Any], Any]:
        def run(registry: CollectorRegistry) -> bytes:
            return generate_write_request(
                registry, timestamp_ms=TIMESTAMP_MS, job=JOB, instance=INSTANCE, protocol=protocol
            )

        return run

    funcs: dict[str, Callable[[Any], Any]] = {
        "collect()": lambda registry: list(registry.collect()),
        "push 1.0 (warm)": push(warm_v1, "1.0", read),
        "push 2.0 (warm)": push(warm_v2, "2.0", read),
        "push 1.0 via collect() (warm)": push(via_collect, "1.0", collect),
        "generate_write_request 1.0 (cold)": cold("1.0"),
        "generate_write_request 2.0 (cold)": cold("2.0"),
    }
    notes = []
    if samples >= 1_000_000 and skip_large_baselines:
        notes.append("generate_latest(), protobuf objects and prometheus-remote-writer skipped at 1 M")
        return funcs, notes
    funcs["generate_latest()"] = generate_latest
    funcs["protobuf objects + snappy"] = protobuf_objects
    remote_writer, note = remote_writer_candidate()
    if remote_writer is not None:
        funcs["prometheus-remote-writer"] = remote_writer
    notes.append(note)
    return funcs, notes


def interleaved(funcs: dict[str, Callable[[Any], Any]], registry: Any, repeat: int) -> dict[str, float]:
    """Median thread CPU seconds of each function over ``repeat`` round-robin repetitions."""
    names = list(funcs)
    for name in names:  # warm up: builds the warm encoders' templates, imports, caches
        funcs[name](registry)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            gc.collect()
            start = time.thread_time()
            funcs[name](registry)
            times[name].append(time.thread_time() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def time_section(sizes: list[int], repeat: int, large_repeat: int, skip_large: bool) -> None:
    print("## Time per call: median thread CPU (ratio to collect() of the same run)\n")
    per_sample: dict[str, dict[int, float]] = {}
    columns: list[str] = []
    notes: list[str] = []
    for size in sizes:
        registry = build_registry(size)
        samples = count_samples(registry)
        funcs, more = candidates(samples, skip_large)
        notes += [n for n in more if n and n not in notes]
        reps = large_repeat if samples >= 1_000_000 else repeat
        medians = interleaved(funcs, registry, reps)
        if not columns:
            columns = list(funcs)
            print("| samples | reps | " + " | ".join(f"`{c}`" for c in columns) + " |")
            print("|---|---|" + "---|" * len(columns))
        base = medians["collect()"]
        cells = [f"{fmt_ms(medians[c])} ({medians[c] / base:.2f}x)" if c in medians else "skipped" for c in columns]
        print(f"| {samples:,} | {reps} | " + " | ".join(cells) + " |", flush=True)
        for name, value in medians.items():
            per_sample.setdefault(name, {})[samples] = value / samples
        del registry, funcs
        gc.collect()
    print()
    for note in notes:
        print(f"- {note}")
    print("\n### Cost per sample, and its growth from the smallest size\n")
    counts = sorted({n for values in per_sample.values() for n in values})
    print("| candidate | " + " | ".join(f"{n:,}" for n in counts) + f" | {counts[-1]:,} vs {counts[0]:,} |")
    print("|---|" + "---|" * (len(counts) + 1))
    for name in columns:
        values = per_sample.get(name, {})
        cells = [f"{values[n] * 1e9:.0f} ns" if n in values else "-" for n in counts]
        growth = values[counts[-1]] / values[counts[0]] if counts[-1] in values and counts[0] in values else None
        print(f"| `{name}` | " + " | ".join(cells) + f" | {f'{growth:.2f}x' if growth else '-'} |")
    print()


def bytes_section(samples: int) -> None:
    registry = build_registry(samples)
    samples = count_samples(registry)
    print(f"## Wire bytes per sample ({samples:,} samples, job and instance set)\n")
    print("| protocol | uncompressed B/sample | snappy B/sample | as sent: 2,000-series requests | body bytes |")
    print("|---|---|---|---|---|")
    for protocol, cls in (("1.0", Encoder), ("2.0", EncoderV2)):
        collection = cls(job=JOB, instance=INSTANCE).encode(read(registry), TIMESTAMP_MS)
        body = collection.body()
        compressed = _snappy.compress(body)
        sent = sum(len(r.body) for r in compress_requests(collection, protocol, BATCH, metadata=protocol == "1.0"))
        print(
            f"| {protocol} | {len(body) / samples:.1f} | {len(compressed) / samples:.2f} | "
            f"{sent / samples:.2f} | {len(compressed):,} |"
        )
    print()


def cpu_section(sizes: list[int], pushes: int, rounds: int) -> None:
    import thread_cpu

    print("## CPU of the library's threads per push, beside a busy application thread\n")
    print(
        "Per-thread CPU from the OS (`thread_time()` of the pushing thread, `schedstat` of the "
        f"sender threads); {rounds} interleaved rounds of {pushes} pushes per mode; medians. "
        "Target: <= 0.3x collect().\n"
    )
    print(
        "| samples | protocol | pushes | `collect()` | the library: read, encode, compress, POST "
        "(pushing thread + senders) | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for size in sizes:
        registry = build_registry(size)
        print("\n".join(thread_cpu.rows(registry, count_samples(registry), pushes, rounds)), flush=True)
    print()


def memory_section(samples: int) -> None:
    import memory

    print(f"## Memory: what the bridge keeps after 3 pushes, and one push's peak ({samples:,} samples)\n")
    print(
        "Each protocol in fresh processes. RSS / traced (tracemalloc) growth; kept = after 3 "
        "pushes, against the registry's own growth; RSS after `malloc_trim(0)` shows how much "
        "of it is free memory glibc keeps (the bridge trims only once, when auto mode drops an "
        "encoder's state).\n"
    )
    print(
        "| protocol | samples | registry: RSS / traced | kept: RSS / traced | kept vs registry: RSS / traced "
        "| kept RSS after malloc_trim | traced per series kept | peak of one push (traced) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(memory.rows(samples)), flush=True)
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1k,10k,100k,1m", help="registry sizes in samples (%(default)s)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="what to run (%(default)s)")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions per candidate (%(default)s)")
    parser.add_argument("--large-repeat", type=int, default=3, help="repetitions at 1M samples and more")
    parser.add_argument("--skip-large-baselines", action="store_true", help="only ours and collect() at 1M+")
    parser.add_argument("--cpu-sizes", default="10k,100k", help="sizes of the cpu section (%(default)s)")
    parser.add_argument("--cpu-pushes", type=int, default=5, help="pushes per mode and round (%(default)s)")
    parser.add_argument("--cpu-rounds", type=int, default=4, help="interleaved rounds (%(default)s)")
    parser.add_argument("--memory-size", default="100k", help="size of the memory section (%(default)s)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))} (allowed: {', '.join(SECTIONS)})")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]

    print("# prometheus-rw-bridge encode benchmark\n")
    print("\n".join(machine()))
    print(f"- Job `{JOB}`, instance `{INSTANCE}` on every series; medians of interleaved runs.\n")
    if "time" in sections:
        time_section(sizes, args.repeat, args.large_repeat, args.skip_large_baselines)
    if "bytes" in sections:
        bytes_section(10_000)
    if "cpu" in sections:
        cpu_section([parse_size(s) for s in args.cpu_sizes.split(",")], args.cpu_pushes, args.cpu_rounds)
    if "memory" in sections:
        memory_section(parse_size(args.memory_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
