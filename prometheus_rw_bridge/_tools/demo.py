"""The sample app of ``prometheus-rw-bridge demo``: one metric of each prometheus_client type."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["SampleApp"]


class SampleApp:
    """A pretend web app: one metric of each prometheus_client type, changed by a thread."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Enum, Gauge, Histogram, Info, Summary

        self.requests = Counter("demo_requests", "Requests handled.", ["method", "path"], registry=registry)
        self.in_progress = Gauge("demo_requests_in_progress", "Requests being handled.", registry=registry)
        self.latency = Histogram(
            "demo_request_duration_seconds",
            "Request latency.",
            buckets=(0.01, 0.05, 0.1, 0.5, 1.0),
            registry=registry,
        )
        self.payload = Summary("demo_response_size_bytes", "Response sizes.", registry=registry)
        Info("demo_build", "Build information.", registry=registry).info(
            {"version": "1.2.3", "commit": "abc123"}
        )
        self.state = Enum(
            "demo_state", "Lifecycle state.", states=["starting", "serving", "draining"], registry=registry
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prometheus-rw-bridge-demo-app", daemon=True)
        self._tick = 0

    def start(self) -> None:
        self.state.state("starting")
        self.step()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def step(self) -> None:
        """Simulate a few requests (deterministic, so output is easy to follow)."""
        self._tick += 1
        tick = self._tick
        self.requests.labels("GET", "/").inc()
        if tick % 3 == 0:
            self.requests.labels("POST", "/orders").inc()
        self.in_progress.set(tick % 5)
        self.latency.observe((tick % 7) * 0.03)
        self.payload.observe(512 + 100 * (tick % 4))
        self.state.state("serving")

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.step()
