"""Encode benchmark: prometheus-rw-bridge side by side with collect() and the alternatives.

Run from the repository root (one command, 10-15 minutes with the defaults)::

    .venv/bin/python benchmarks/bench_encode.py

Options: ``--sizes 1k,10k,100k,1m``, ``--repeat 7`` (``--large-repeat 3`` for sizes of 1M and
more), ``--throughput-seconds 5 --throughput-rounds 6`` (the application-thread test),
``--skip-throughput``, ``--skip-large-baselines`` (no generate_latest/protobuf/
prometheus-remote-writer at 1M).  prometheus-remote-writer is optional
(``.venv/bin/pip install prometheus-remote-writer==1.1.3``, the ``benchmark`` extra); it is
skipped with a note when missing, and so is remote-write 2.0 until ``_encode_v2`` exists.

Every timing is a median over ``--repeat`` repetitions, and the candidates are interleaved:
each repetition runs every candidate once, starting at a different one each time, so drift on
a shared machine hits all of them alike.  Ratios divide by ``list(registry.collect())`` of
the same run.  The output is Markdown, ready for ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest

from prometheus_rw_bridge import generate_write_request
from prometheus_rw_bridge._protocol import schema as _schema
from prometheus_rw_bridge._protocol import snappy as _snappy
from prometheus_rw_bridge._protocol.encode import Encoder, collect

JOB = "checkout-api"
INSTANCE = "10.1.2.3:8000"
TIMESTAMP_MS = 1_763_900_000_000

# One "service" of the benchmark registry: 1,000 samples in four families.
ROUTES = [
    "/",
    "/healthz",
    "/api/v1/orders",
    "/api/v1/orders/{id}",
    "/api/v1/orders/{id}/items",
    "/api/v1/users/{id}",
    "/api/v1/users/{id}/cart",
    "/api/v1/products",
    "/api/v1/products/{id}",
    "/api/v1/search",
]
METHODS = ["GET", "POST", "PUT", "DELETE"]
CODES = ["200", "404", "500"]
SAMPLES_PER_SERVICE = 1000


def build_registry(samples: int, seed: int = 7) -> CollectorRegistry:
    """Build a registry of ``samples`` samples (rounded to 1,000) that looks like a web service's.

    Per 1,000 samples: a counter ``http_requests`` by method, route and code (``_total`` and
    ``_created``), a gauge of requests in progress by route, a default-bucket histogram of
    latency by method and route, and a summary of response sizes by route; values are drawn
    from a seeded generator so every run encodes the same bytes.
    """
    rnd = random.Random(seed)
    registry = CollectorRegistry()
    for index in range(max(1, samples // SAMPLES_PER_SERVICE)):
        prefix = f"svc{index:04d}_"
        requests = Counter(
            prefix + "http_requests", "HTTP requests served.", ["method", "route", "code"], registry=registry
        )
        in_progress = Gauge(
            prefix + "http_requests_in_progress", "Requests in flight.", ["route"], registry=registry
        )
        latency = Histogram(
            prefix + "http_request_duration_seconds",
            "Request latency.",
            ["method", "route"],
            registry=registry,
        )
        size = Summary(
            prefix + "http_response_size_bytes", "Response body size.", ["route"], registry=registry
        )
        for route in ROUTES:
            in_progress.labels(route).set(rnd.randint(0, 40))
            for _ in range(5):
                size.labels(route).observe(rnd.randint(100, 200_000))
            for method in METHODS:
                for _ in range(rnd.randint(1, 20)):
                    latency.labels(method, route).observe(rnd.lognormvariate(-3.5, 1.2))
                for code in CODES:
                    requests.labels(method, route, code).inc(rnd.randint(0, 50_000))
    return registry


def count_samples(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


# --- candidates -------------------------------------------------------------------------


def protobuf_objects(registry: CollectorRegistry) -> bytes:
    """Baseline: build protobuf message objects from collect(), serialise, snappy."""
    target = {"job": JOB, "instance": INSTANCE}
    request = _schema.WriteRequest()
    add_series = request.timeseries.add
    for family in registry.collect():
        for sample in family.samples:
            series = add_series()
            labels = dict(target)
            labels.update(sample.labels)
            labels["__name__"] = sample.name
            add_label = series.labels.add
            for name in sorted(labels):
                add_label(name=name, value=labels[name])
            series.samples.add(value=sample.value, timestamp=TIMESTAMP_MS)
    return _snappy.compress(request.SerializeToString())


class _NoOpAdapter:
    """A requests transport adapter that answers every request with 204 and sends nothing."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        import requests

        response = requests.Response()
        response.status_code = 204
        response.request = request
        response.url = request.url
        response._content = b""
        return response

    def close(self) -> None:
        pass


def remote_writer_candidate() -> tuple[Callable[[CollectorRegistry], Any] | None, str]:
    """prometheus-remote-writer 1.1.3, its ``send`` answered by a no-op transport (offline)."""
    try:
        import requests
        from prometheus_remote_writer import RemoteWriter  # type: ignore[import-untyped]
    except ImportError:
        return None, "prometheus-remote-writer not installed (pip install prometheus-remote-writer==1.1.3)"
    session = requests.Session()
    session.mount("http://", _NoOpAdapter())  # type: ignore[arg-type]
    writer = RemoteWriter("http://127.0.0.1:9/api/v1/write", session=session, sort_labels=True)

    def run(registry: CollectorRegistry) -> Any:
        # The library takes ready-made series dicts; building them from collect() is the
        # user's part of the work, so it is timed too.
        target = {"job": JOB, "instance": INSTANCE}
        items = []
        for family in registry.collect():
            for sample in family.samples:
                labels = dict(target)
                labels.update(sample.labels)
                labels["__name__"] = sample.name
                items.append({"metric": labels, "values": [sample.value], "timestamps": [TIMESTAMP_MS]})
        return writer.send(items)

    version = metadata.version("prometheus-remote-writer")
    return run, f"prometheus-remote-writer {version}: send() with a no-op requests adapter (no network)"


def v2_candidates() -> tuple[dict[str, Callable[[CollectorRegistry], Any]], str]:
    """The remote-write 2.0 forms, once ``prometheus_rw_bridge._protocol.encode_v2`` exists."""
    try:
        from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
    except ImportError:
        return {}, "remote-write 2.0 skipped: prometheus_rw_bridge._protocol.encode_v2 does not exist yet"
    encoder = EncoderV2(job=JOB, instance=INSTANCE)

    def cold(registry: CollectorRegistry) -> bytes:
        return generate_write_request(
            registry, timestamp_ms=TIMESTAMP_MS, job=JOB, instance=INSTANCE, protocol="2.0"
        )

    def warm(registry: CollectorRegistry) -> bytes:
        return _snappy.compress(encoder.encode(collect(registry), TIMESTAMP_MS).body())

    return {"generate_write_request 2.0": cold, "Encoder 2.0 warm": warm}, ""


def candidates(
    registry_size: int, args: argparse.Namespace
) -> tuple[dict[str, Callable[[Any], Any]], list[str]]:
    notes: list[str] = []
    warm_encoder = Encoder(job=JOB, instance=INSTANCE)

    def warm(registry: CollectorRegistry) -> bytes:
        return _snappy.compress(warm_encoder.encode(collect(registry), TIMESTAMP_MS).body())

    def cold(registry: CollectorRegistry) -> bytes:
        return generate_write_request(registry, timestamp_ms=TIMESTAMP_MS, job=JOB, instance=INSTANCE)

    result: dict[str, Callable[[Any], Any]] = {
        "collect()": lambda registry: list(registry.collect()),
        "Encoder warm (pusher)": warm,
        "generate_write_request": cold,
    }
    v2, note = v2_candidates()
    result.update(v2)
    if note:
        notes.append(note)
    large = registry_size >= 1_000_000 and args.skip_large_baselines
    if not large:
        result["generate_latest()"] = generate_latest
        result["protobuf objects + snappy"] = protobuf_objects
        prw, note = remote_writer_candidate()
        if prw is not None:
            result["prometheus-remote-writer"] = prw
        notes.append(note)
    return result, notes


# --- measurements -----------------------------------------------------------------------


def interleaved(
    funcs: dict[str, Callable[[Any], Any]], registry: CollectorRegistry, repeat: int
) -> dict[str, list[float]]:
    """Time each function ``repeat`` times, round-robin, rotating the starting candidate."""
    names = list(funcs)
    for name in names:  # warm up: fills the warm encoder's templates, imports, caches
        funcs[name](registry)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            gc.collect()
            start = time.perf_counter()
            funcs[name](registry)
            times[name].append(time.perf_counter() - start)
    return times


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def wire_sizes(registry: CollectorRegistry, samples: int) -> list[str]:
    """Bytes per sample, uncompressed and snappy: the whole body, and as the pusher sends it."""
    from prometheus_rw_bridge._delivery.sender import compress_requests

    def as_sent(collection: Any, protocol: str) -> int:
        requests = compress_requests(collection, protocol, 2000, metadata=protocol == "1.0")
        return sum(len(request.body) for request in requests)

    encoder = Encoder(job=JOB, instance=INSTANCE)
    collection = encoder.encode(collect(registry), TIMESTAMP_MS)
    body = collection.body()
    compressed = _snappy.compress(body)
    series_only = _snappy.compress(collection.body(metadata=False))
    sent = as_sent(collection, "1.0")
    rows = [
        f"| 1.0 | {len(body) / samples:.1f} | {len(compressed) / samples:.2f} | "
        f"{len(series_only) / samples:.2f} | {sent / samples:.2f} | {len(compressed):,} |"
    ]
    try:
        from prometheus_rw_bridge._protocol.encode_v2 import EncoderV2
    except ImportError:
        rows.append("| 2.0 | (not yet implemented) | | | | |")
        return rows
    v2 = EncoderV2(job=JOB, instance=INSTANCE).encode(collect(registry), TIMESTAMP_MS)
    body2 = v2.body()
    compressed2 = _snappy.compress(body2)
    rows.append(
        f"| 2.0 | {len(body2) / samples:.1f} | {len(compressed2) / samples:.2f} | (symbols carry metadata) | "
        f"{as_sent(v2, '2.0') / samples:.2f} | {len(compressed2):,} |"
    )
    return rows


def peak_memory(registry: CollectorRegistry) -> list[str]:
    """Peak traced allocation of one warm push and one cold encode, vs the uncompressed body."""
    encoder = Encoder(job=JOB, instance=INSTANCE)
    body_size = len(encoder.encode(collect(registry), TIMESTAMP_MS).body())
    families = list(collect(registry))

    def measure(func: Callable[[], Any]) -> int:
        gc.collect()
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = func()
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        del result
        return peak

    def bridge_push() -> Any:
        # What the 1.0 pusher does: encode straight from the collect() generator, then cut
        # 2,000-sample requests one at a time, compressing each as it is cut.
        encoded = encoder.encode(collect(registry), TIMESTAMP_MS)
        return [_snappy.compress(body) for body, _ in encoded.iter_split(2000)]

    cases = [
        ("warm encode + body() + snappy, families already collected", lambda: push(families)),
        ("warm encode + body() + snappy, collect() generator included", lambda: push(collect(registry))),
        ("warm push as the pusher does it: collect(), iter_split(2000), snappy each", bridge_push),
        ("list(collect()) alone", lambda: list(collect(registry))),
        ("cold encode + body() (new Encoder: templates built)", lambda: cold(families)),
    ]

    def push(source: Any) -> bytes:
        return _snappy.compress(encoder.encode(source, TIMESTAMP_MS).body())

    def cold(source: Any) -> bytes:
        return Encoder(job=JOB, instance=INSTANCE).encode(source, TIMESTAMP_MS).body()

    rows = [f"| uncompressed body | {body_size / 1e6:.2f} MB | 1.00x |"]
    for label, func in cases:
        peak = measure(func)
        rows.append(f"| {label} | {peak / 1e6:.2f} MB | {peak / body_size:.2f}x |")
    return rows


def push_once(encoder: Encoder, registry: CollectorRegistry) -> bytes:
    return _snappy.compress(encoder.encode(collect(registry), int(time.time() * 1000)).body())


def pusher_cpu(registry: CollectorRegistry, seconds: float) -> list[str]:
    """CPU of a simulated pusher pushing every second, measured as its thread's CPU time."""
    encoder = Encoder(job=JOB, instance=INSTANCE)
    pusher = SimulatedPusher(lambda: push_once(encoder, registry), 1.0)
    pusher.active = True
    wall = time.perf_counter()
    cpu0, pushes0 = pusher.cpu, pusher.pushes
    time.sleep(seconds)
    cpu, pushes = pusher.cpu - cpu0, pusher.pushes - pushes0
    wall = time.perf_counter() - wall
    pusher.stop()
    per_push = cpu / max(1, pushes)
    return [
        f"| simulated pusher thread, every 1 s for {wall:.0f} s (thread CPU time) | {pushes} | "
        f"{per_push * 1000:.1f} ms | {cpu / wall * 100:.2f} % | {per_push / 15 * 100:.3f} % |"
    ]


def http_cost(registry: CollectorRegistry, repeat: int) -> list[str]:
    """CPU per POST of one 2,000-sample request: httpx's default transport against ours."""
    import httpx

    from prometheus_rw_bridge._delivery.sender import compress_requests
    from prometheus_rw_bridge._http.http11 import Http11Transport
    from prometheus_rw_bridge._http.transport import Transport

    encoder = Encoder(job=JOB, instance=INSTANCE)
    requests = compress_requests(encoder.encode(collect(registry), TIMESTAMP_MS), "1.0", 2000, metadata=False)
    with _Receiver() as url:
        transports = {
            "httpx's default (httpcore + h11)": Transport(url, client=httpx.Client(), owns_client=True),
            "`Http11Transport` (http.client), the library's": Transport(
                url, client=httpx.Client(transport=Http11Transport()), owns_client=True
            ),
        }
        costs: dict[str, list[float]] = {name: [] for name in transports}
        for _ in range(repeat * 3):
            for name, transport in transports.items():
                start = time.thread_time()
                for request in requests:
                    transport.send(request.body)
                costs[name].append((time.thread_time() - start) / len(requests))
        for transport in transports.values():
            transport.close()
    return [f"| {name} | {statistics.median(values) * 1000:.2f} ms |" for name, values in costs.items()]


def work_unit() -> int:
    """A small CPU-bound piece of pure-Python application work (a few microseconds)."""
    total = 0
    for i in range(100):
        total += i * i % 7
    return total


@dataclass
class AppRun:
    """One window of the application thread: its throughput and every stall it suffered."""

    start: float
    end: float
    units: int
    stalls: list[tuple[float, float]]  # (when, seconds lost beyond a normal work unit)

    @property
    def throughput(self) -> float:
        return self.units / (self.end - self.start)

    def lost_per_push(self, windows: list[tuple[float, float]]) -> tuple[int, float]:
        """App time lost inside push windows, less the background stall rate, per push."""
        windows = [(a, b) for a, b in windows if a >= self.start and b <= self.end]
        if not windows:
            return 0, 0.0
        inside = 0.0
        for when, lost in self.stalls:
            for a, b in windows:
                if when < b and when + lost > a:
                    inside += min(when + lost, b) - max(when, a)
                    break
        covered = sum(b - a for a, b in windows)
        outside_rate = (sum(lost for _, lost in self.stalls) - inside) / max(
            1e-9, self.end - self.start - covered
        )
        return len(windows), (inside - outside_rate * covered) / len(windows)


def app_run(seconds: float) -> AppRun:
    """Run work units on the calling thread for ``seconds``, timing each one.

    A unit that takes more than four times the usual is a stall: the thread waited for the
    GIL (or for the CPU).  The usual time is the median of the first 2,000 units.
    """
    durations: list[float] = []
    units = 0
    start = time.perf_counter()
    prev = start
    while len(durations) < 2000:
        work_unit()
        now = time.perf_counter()
        durations.append(now - prev)
        prev = now
    usual = statistics.median(durations)
    threshold = 4 * usual
    stalls = [(start, d - usual) for d in durations if d > threshold]  # rare; when is approximate
    units = len(durations)
    deadline = start + seconds
    while prev < deadline:
        work_unit()
        now = time.perf_counter()
        if now - prev > threshold:
            stalls.append((prev, now - prev - usual))
        prev = now
        units += 1
    return AppRun(start, prev, units, stalls)


class _Receiver:
    """A no-op remote-write receiver in a child process, so it takes no GIL from this one."""

    CODE = (
        "import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    protocol_version = 'HTTP/1.1'\n"
        "    def do_POST(self):\n"
        "        self.rfile.read(int(self.headers.get('Content-Length', 0)))\n"
        "        self.send_response(204); self.send_header('Content-Length', '0'); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
        "print(s.server_address[1], flush=True)\n"
        "s.serve_forever()\n"
    )

    def __enter__(self) -> str:
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        return f"http://127.0.0.1:{port}/api/v1/write"

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait()


class SimulatedPusher:
    """A thread calling ``push`` on every ``interval`` tick while ``active``.

    The thread lives across measurement windows and is switched on and off, so windows with
    and without pushing differ in nothing else; pushes land on whole-interval ticks.  It
    records its CPU time and each push's (start, end) on ``time.perf_counter``.
    """

    def __init__(self, push: Callable[[], Any], interval: float) -> None:
        self.push = push
        self.interval = interval
        push()  # templates exist before any measurement
        self.active = False
        self.cpu = 0.0
        self.pushes = 0
        self.windows: list[tuple[float, float]] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-pusher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        tick = time.monotonic()
        while True:
            tick += self.interval
            if self.stop_event.wait(max(0.0, tick - time.monotonic())):
                return
            if self.active:
                began, start = time.perf_counter(), time.thread_time()
                self.push()
                self.cpu += time.thread_time() - start
                self.windows.append((began, time.perf_counter()))
                self.pushes += 1

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()


APP_MODES = ("no pusher", "collect() alone", "simulated pusher", "the library")


def app_thread_cost(registry: CollectorRegistry, seconds: float, rounds: int) -> list[str]:
    """The application thread's loss with each kind of pusher every 1 s, interleaved rounds.

    Modes: no pusher; a thread doing only ``list(collect())`` (the floor every exporter
    pays); the simulated pusher (collect + encode + snappy of 2,000-sample requests, no
    HTTP); the library, posting to a no-op receiver in a child process.  The library's bridge
    lives through the whole run, as in an application: ``enable_remote_write`` with an
    interval of an hour, its pushes triggered by ``flush()`` from the same 1 s ticking thread
    as the other modes (so a push window ends when its last request has been answered).
    """
    import prometheus_rw_bridge
    from prometheus_rw_bridge._delivery.sender import compress_requests

    encoder = Encoder(job=JOB, instance=INSTANCE, track_staleness=True)

    def simulated() -> None:
        encoded = encoder.encode(collect(registry), int(time.time() * 1000))
        compress_requests(encoded, "1.0", 2000, metadata=False)

    throughput: dict[str, list[float]] = {mode: [] for mode in APP_MODES}
    lost: dict[str, list[float]] = {mode: [] for mode in APP_MODES[1:]}
    pushes: dict[str, int] = dict.fromkeys(APP_MODES[1:], 0)
    with _Receiver() as url:
        bridge = prometheus_rw_bridge.enable_remote_write(
            url, registry=registry, interval=3600.0, job=JOB, instance=INSTANCE
        )
        threads = {
            "collect() alone": SimulatedPusher(lambda: list(collect(registry)), 1.0),
            "simulated pusher": SimulatedPusher(simulated, 1.0),
            "the library": SimulatedPusher(lambda: bridge.flush(timeout=10), 1.0),
        }
        for round_ in range(rounds):
            order = APP_MODES[round_ % len(APP_MODES) :] + APP_MODES[: round_ % len(APP_MODES)]
            for mode in order:
                gc.collect()
                if mode in threads:
                    threads[mode].active = True
                run = app_run(seconds)
                for pusher in threads.values():
                    pusher.active = False
                throughput[mode].append(run.throughput)
                if mode in threads:
                    count, per_push = run.lost_per_push(threads[mode].windows)
                    lost[mode].append(per_push)
                    pushes[mode] += count
                    threads[mode].windows.clear()
        for pusher in threads.values():
            pusher.stop()
        bridge.close()
    none = statistics.median(throughput["no pusher"])
    floor = statistics.median(lost["collect() alone"])
    rows = [
        "| pusher every 1 s | app throughput (median) | loss vs no pusher (median of rounds) "
        "| app time lost per push (median) | = loss at 1 s | ratio to `collect()` alone |",
        "|---|---|---|---|---|---|",
        f"| no pusher | {none:,.0f} units/s | | | | |",
    ]
    for mode in APP_MODES[1:]:
        paired = statistics.median(
            1 - on / off for on, off in zip(throughput[mode], throughput["no pusher"], strict=True)
        )
        per_push = statistics.median(lost[mode])
        rows.append(
            f"| {mode} ({pushes[mode]} pushes) | {statistics.median(throughput[mode]):,.0f} units/s | "
            f"{paired * 100:.2f} % | {per_push * 1000:.1f} ms | {per_push * 100:.2f} % | "
            f"**{per_push / floor:.2f}x** |"
        )
    return rows


def machine() -> list[str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for dist in (
        "prometheus-rw-bridge",
        "prometheus_client",
        "protobuf",
        "cramjam",
        "prometheus-remote-writer",
    ):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return [
        f"- Machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
        f"load average at start {load[0]:.2f}"
        if load[0] != "?"
        else f"- Machine: {cpu}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); " + ", ".join(versions),
        f"- Command: `{' '.join([os.path.relpath(sys.executable), *sys.argv])}`",
    ]


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1k,10k,100k,1m", help="registry sizes in samples (default %(default)s)"
    )
    parser.add_argument(
        "--repeat", type=int, default=7, help="repetitions per candidate (default %(default)s)"
    )
    parser.add_argument("--large-repeat", type=int, default=3, help="repetitions at 1M samples and more")
    parser.add_argument("--skip-large-baselines", action="store_true", help="only ours and collect() at 1M+")
    parser.add_argument("--throughput-seconds", type=float, default=5.0, help="app-thread window length")
    parser.add_argument("--throughput-rounds", type=int, default=6, help="rounds of app-thread windows")
    parser.add_argument(
        "--skip-throughput", action="store_true", help="skip the pusher CPU and app-thread tests"
    )
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]

    print("# prometheus-rw-bridge encode benchmark\n")
    print("\n".join(machine()))
    print(f"- Job `{JOB}`, instance `{INSTANCE}` on every series; timings are medians, interleaved runs.\n")

    registries: dict[int, tuple[CollectorRegistry, int]] = {}
    all_notes: list[str] = []
    header_done = False
    columns: list[str] = []
    for size in sizes:
        registry = build_registry(size)
        samples = count_samples(registry)
        registries[size] = (registry, samples)
        funcs, notes = candidates(samples, args)
        all_notes += [n for n in notes if n and n not in all_notes]
        repeat = args.large_repeat if samples >= 1_000_000 else args.repeat
        times = interleaved(funcs, registry, repeat)
        medians = {name: statistics.median(values) for name, values in times.items()}
        base = medians["collect()"]
        if not header_done:
            columns = list(funcs)
            print("## Time per call: median (ratio to collect() alone)\n")
            print("| samples | reps | " + " | ".join(f"`{c}`" for c in columns) + " |")
            print("|---|---|" + "---|" * len(columns))
            header_done = True
        cells = []
        for name in columns:
            if name in medians:
                cells.append(f"{fmt_ms(medians[name])} ({medians[name] / base:.2f}x)")
            else:
                cells.append("skipped")
        print(f"| {samples:,} | {repeat} | " + " | ".join(cells) + " |", flush=True)
        del funcs, times
    print()
    for note in all_notes:
        print(f"- {note}")

    size_10k = min(registries, key=lambda s: abs(s - 10_000))
    registry, samples = registries[size_10k]
    print(f"\n## Wire bytes per sample ({samples:,} samples, job and instance set)\n")
    print(
        "| protocol | uncompressed B/sample | snappy B/sample | snappy, no metadata "
        "| as sent: 2,000-series requests, each compressed | body bytes |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(wire_sizes(registry, samples)))

    print("\n## Peak extra memory of one encode (tracemalloc)\n")
    for reg, n in registries.values():
        if n > 100_000:
            continue
        print(f"{n:,} samples:\n")
        print("| what | peak traced | vs uncompressed body |")
        print("|---|---|---|")
        print("\n".join(peak_memory(reg)))
        print()

    if args.skip_throughput:
        return 0
    print(f"## Background pusher CPU ({samples:,} samples)\n")
    encoder = Encoder(job=JOB, instance=INSTANCE)
    push_once(encoder, registry)
    costs = []
    for _ in range(args.repeat * 3):
        gc.collect()
        start = time.process_time()
        push_once(encoder, registry)
        costs.append(time.process_time() - start)
    cost = statistics.median(costs)
    print("| how | pushes | CPU per push | share of a core, every 1 s | share of a core, every 15 s |")
    print("|---|---|---|---|---|")
    print(
        f"| collect + encode + snappy, median process CPU x rate | {len(costs)} | {cost * 1000:.1f} ms | "
        f"{cost * 100:.2f} % | {cost / 15 * 100:.3f} % |"
    )
    print("\n".join(pusher_cpu(registry, args.throughput_seconds * 2)))

    print("\n### HTTP: CPU per POST of a 2,000-sample request (median)\n")
    print("| transport | CPU per request |")
    print("|---|---|")
    print("\n".join(http_cost(registry, args.repeat)))

    print(f"\n## CPU-bound application thread while a pusher runs every 1 s ({samples:,} samples)\n")
    print(
        f"{args.throughput_rounds} rounds of {args.throughput_seconds:g} s windows, one per mode, "
        "order rotating; loss per push is the app thread's stall time inside push windows "
        "less its stall rate outside them. Target: <= 2.5 % where collect() alone costs 2 %, "
        "i.e. a ratio <= 1.25x.\n"
    )
    print("\n".join(app_thread_cost(registry, args.throughput_seconds, args.throughput_rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
