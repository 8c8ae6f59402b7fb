"""What every benchmark here measures on: the registry, the baselines, a no-op receiver, the machine.

Imported by ``bench_encode.py`` (the one command) and its helpers; not a command itself.
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

from prometheus_rw_bridge._protocol import schema as _schema
from prometheus_rw_bridge._protocol import snappy as _snappy

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


def bench_bridge(url: str, registry: CollectorRegistry, **options: Any) -> Any:
    """A real bridge for a benchmark: it pushes only when ``flush()`` asks, without self-metrics or
    closing stale markers, as ``JOB`` and ``INSTANCE`` unless ``options`` say otherwise."""
    import prometheus_rw_bridge

    settings: dict[str, Any] = {
        "interval": 3600,  # pushes come from flush(), one at a time
        "job": JOB,
        "instance": INSTANCE,
        "self_metrics": False,
        "stale_on_close": False,
    }
    settings.update(options)
    return prometheus_rw_bridge.enable_remote_write(url, registry=registry, **settings)


def count_samples(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


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


class NoOpReceiver:
    """A no-op remote-write receiver in a child process, so it takes no GIL from this one.

    It answers 204 with the ``X-Prometheus-Remote-Write-*-Written`` headers a 2.0 receiver
    sends, so ``protocol="auto"`` settles on 2.0 against it.
    """

    CODE = (
        "import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    protocol_version = 'HTTP/1.1'\n"
        "    def do_POST(self):\n"
        "        self.rfile.read(int(self.headers.get('Content-Length', 0)))\n"
        "        self.send_response(204); self.send_header('Content-Length', '0')\n"
        "        for kind in ('Samples', 'Histograms', 'Exemplars'):\n"
        "            self.send_header(f'X-Prometheus-Remote-Write-{kind}-Written', '0')\n"
        "        self.end_headers()\n"
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

