"""Shards benchmark: how long one push takes over a slow link, by ``max_shards``.

Run from the repository root (about a minute with the defaults)::

    .venv/bin/python benchmarks/bench_shards.py [--samples 50000] [--delay 0.2] [--shards 1,2,4,8] [--repeat 3]

A receiver on loopback that only waits ``--delay`` seconds before answering each request 204 (it
reads the body and decodes nothing, so its own CPU does not hide the sender's lanes) stands for
a link with that round trip.  A bridge pushes a gauge with ``--samples`` labelled children
(2,000 samples a request) through it; each repetition times ``flush()`` once per shard count,
starting at a different one each time, and the medians are printed with the requests the
receiver held at once and the ratio to one lane.  One lane needs about requests x delay; ``n``
lanes about ``ceil(requests / n)`` x delay.  Wall time is the point here (the sender waits on
the network); nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import math
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from prometheus_rw_bridge import enable_remote_write


class SlowReceiver(ThreadingHTTPServer):
    """Answers every POST 204 after ``delay`` seconds; counts the requests held at once."""

    daemon_threads = True

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1/write"

    def reset(self) -> None:
        with self.lock:
            self.most_in_flight = self.requests = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SlowReceiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.requests += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        time.sleep(server.delay)  # the link's round trip
        with server.lock:
            server.in_flight -= 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds each answer waits")
    parser.add_argument("--shards", default="1,2,4,8", help="max_shards values, comma separated")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shard_counts = [int(text) for text in args.shards.split(",")]

    registry = CollectorRegistry()
    gauge = Gauge("wide", "Wide.", ["n"], registry=registry)
    for n in range(args.samples):
        gauge.labels(str(n)).set(n)
    receiver = SlowReceiver(args.delay)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    bridges = {
        shards: enable_remote_write(
            f"{receiver.url}/{shards}",  # a URL each: one registry and URL make one bridge
            registry=registry,
            interval=3600,
            max_shards=shards,
            timeout=120,
            self_metrics=False,
            stale_on_close=False,
            environ={},
            job="bench",
            instance="shards",
        )
        for shards in shard_counts
    }
    for bridge in bridges.values():  # the start-up collections (cold encodes) out of the way
        assert bridge.flush(timeout=300)
    times: dict[int, list[float]] = {shards: [] for shards in shard_counts}
    held: dict[int, int] = {}
    requests = 0
    for round_ in range(args.repeat):
        order = shard_counts[round_ % len(shard_counts) :] + shard_counts[: round_ % len(shard_counts)]
        for shards in order:
            receiver.reset()
            started = time.perf_counter()
            assert bridges[shards].flush(timeout=300)
            times[shards].append(time.perf_counter() - started)
            held[shards] = max(held.get(shards, 0), receiver.most_in_flight)
            requests = receiver.requests
    for bridge in bridges.values():
        bridge.close(timeout=10)
    receiver.shutdown()

    print(
        f"One push of {args.samples:,} samples ({requests} requests) to a receiver answering each in "
        f"{args.delay * 1000:.0f} ms; medians of {args.repeat} interleaved runs\n"
    )
    print("| max_shards | push (wall) | ratio to 1 lane | requests held at once | floor (requests / shards x delay) |")
    print("|---:|---:|---:|---:|---:|")
    base = statistics.median(times[shard_counts[0]])
    for shards in shard_counts:
        median = statistics.median(times[shards])
        floor = math.ceil(requests / shards) * args.delay
        print(f"| {shards} | {median:.2f} s | {median / base:.3f} | {held[shards]} | {floor:.2f} s |")


if __name__ == "__main__":
    main()
