"""Transport benchmark: the CPU of a whole push through the bridge, with each HTTP transport.

Run from the repository root (a minute or two with the defaults)::

    .venv/bin/python benchmarks/bench_transport.py [--sizes 1k,10k,100k] [--rounds 40] \
        [--transport LABEL=module:Class ...]

One bridge per candidate, all pushing the same registry to the same no-op receiver in a child
process (so the receiver takes no GIL from this one):

* the bridge's own client: httpx's default transport (httpcore + h11);
* each ``--transport``: an ``httpx.BaseTransport`` class, under an ``httpx.Client`` given to
  the bridge with ``http_client=`` (the library's former ``Http11Transport`` over
  ``http.client`` was measured so before it was removed; see docs/performance.md);
* no wire at all: ``httpx.MockTransport`` answering 204, given the same way.  The bridge
  still builds, authenticates and hands over every request, so the difference to the others
  is what the wire costs: the most any transport could save.

A push is ``bridge.flush()``: read, encode, compress and queue on the calling thread, then
the sender thread POSTs every request and the flush returns when all are answered.  Its CPU is
the per-thread CPU time the OS accounts to the calling thread and to the sender threads
(``thread_cpu.library_push_cpu``, as ``bench_encode.py --sections cpu`` measures it), so
waiting and other processes count for nothing.  Rounds are interleaved, each starting at a
different candidate; medians are printed, and ratios to the bridge's own client of the same run.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
from collections.abc import Callable
from typing import Any

import httpx
from thread_cpu import library_push_cpu
from workload import NoOpReceiver, bench_bridge, build_registry, count_samples, machine, parse_size

from prometheus_rw_bridge._delivery.bridge import RemoteWriteBridge

DEFAULT = "httpx's default transport (httpcore + h11), the bridge's own"
NO_WIRE = "no wire: `httpx.MockTransport` answering 204"

Candidates = dict[str, Callable[[], "httpx.Client | None"]]
"""A label, and how to build the client the bridge is given (None: the bridge's own)."""


def candidates(transports: list[str]) -> Candidates:
    """The bridge's own client, each ``LABEL=module:Class`` transport, and no wire."""
    found: Candidates = {DEFAULT: lambda: None}
    for given in transports:
        label, _, where = given.rpartition("=")
        module, _, name = where.partition(":")
        transport_class = getattr(importlib.import_module(module), name)
        found[label or name] = lambda cls=transport_class: httpx.Client(
            transport=cls(), follow_redirects=False
        )
    found[NO_WIRE] = lambda: httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    return found


def push_cpu(bridge: RemoteWriteBridge) -> float:
    """The CPU seconds of one whole push through ``bridge``: the pushing thread's and the senders'."""
    own, senders = library_push_cpu(bridge)
    return own + senders


def measure(samples: int, rounds: int, url: str, made: Candidates) -> tuple[int, int, dict[str, list[float]]]:
    """Push a registry of ``samples`` through each candidate ``rounds`` times, interleaved."""
    registry = build_registry(samples)
    bridges: dict[str, RemoteWriteBridge] = {}
    given: list[httpx.Client] = []
    try:
        for index, (label, make) in enumerate(made.items()):
            client = make()
            options: dict[str, Any] = {} if client is None else {"http_client": client}
            if client is not None:
                given.append(client)
            # A URL of its own per candidate: the same registry and URL would share one bridge.
            bridges[label] = bench_bridge(f"{url}?candidate={index}", registry, **options)
        for bridge in bridges.values():  # warm: templates built, connections open
            push_cpu(bridge)
            push_cpu(bridge)
        costs: dict[str, list[float]] = {label: [] for label in bridges}
        labels = list(bridges)
        for turn in range(rounds):
            for label in labels[turn % len(labels) :] + labels[: turn % len(labels)]:
                gc.collect()
                costs[label].append(push_cpu(bridges[label]))
        requests = sum(stats.successes for stats in bridges[DEFAULT].endpoint_stats())
    finally:
        for bridge in bridges.values():
            bridge.close(timeout=10)
        for client in given:
            client.close()
    return count_samples(registry), requests // (rounds + 2), costs


def table(samples: int, requests: int, costs: dict[str, list[float]]) -> list[str]:
    """Markdown rows: median CPU per push, per POST, and against the bridge's own client."""
    base = statistics.median(costs[DEFAULT])
    wire = base - statistics.median(costs[NO_WIRE])
    lines = [
        f"### {samples:,} samples, {requests} POST(s) per push, {len(costs[DEFAULT])} interleaved rounds",
        "",
        "| transport | CPU per push (median) | vs the bridge's own | CPU per POST above no wire |",
        "|---|---|---|---|",
    ]
    no_wire = statistics.median(costs[NO_WIRE])
    for label, values in costs.items():
        median = statistics.median(values)
        per_post = (median - no_wire) / max(1, requests)
        lines.append(
            f"| {label} | {median * 1000:.2f} ms | {median / base:.3f}x | {per_post * 1000:.3f} ms |"
        )
    lines += ["", f"The wire (httpcore + h11 + sockets) is {wire / base * 100:.1f} % of a push here.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sizes", default="1k,10k,100k", help="registry sizes in samples (default 1k,10k,100k)"
    )
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds per size (default 40)")
    parser.add_argument(
        "--transport",
        action="append",
        default=[],
        metavar="LABEL=module:Class",
        help="also measure this httpx.BaseTransport class (repeatable)",
    )
    args = parser.parse_args(argv)
    made = candidates(args.transport)
    print("## CPU of a push through the bridge, by HTTP transport\n")
    print("\n".join(machine()) + "\n")
    with NoOpReceiver() as url:
        for size in (parse_size(text) for text in args.sizes.split(",")):
            print("\n".join(table(*measure(size, args.rounds, url, made))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
