"""Drive a bridge through one scenario in a fresh interpreter and record every import our threads make.

``test_fork_safety.py`` runs this file as a script, with the scenario as JSON on stdin.  Before
anything else it puts :class:`ImportRecorder` first on ``sys.meta_path``.  ``find_spec`` is
asked only about modules not imported yet, while the asking thread holds that module's import
lock: each record is a moment at which a fork would have copied a held import lock into the
child.  The report (JSON on stdout) holds those records and the bridge's counters, so that the
test can also check the scenario took the path it names.

The main thread imports only what it needs itself (the standard library, prometheus_client
and the package's entry points): a module it imported would hide a lazy import of ours.
"""

from __future__ import annotations

import sys
import threading

THREAD_PREFIX = "prometheus-rw-bridge"
"""Every thread the library starts has a name that starts with this."""

SDK_READER = "OtelPeriodicExportingMetricReader"
"""The OpenTelemetry SDK's reader thread, which runs the exporter's code: what it imports in our
frames counts as ours (the SDK's own imports are the SDK's business)."""


class ImportRecorder:
    """A meta-path finder that finds nothing and writes down which thread of ours asked for what."""

    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        thread = threading.current_thread()
        if thread.name.startswith(THREAD_PREFIX) or (thread.name == SDK_READER and _in_our_code()):
            self.records.append({"thread": thread.name, "module": name, "stack": _stack()})
        return None


def _in_our_code() -> bool:
    """Tell whether a frame of the package is on the current stack."""
    frame = sys._getframe(2)
    while frame is not None:
        if "/prometheus_rw_bridge/" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _stack() -> list[str]:
    """Where the import came from: the innermost frames outside importlib."""
    frames = []
    frame = sys._getframe(2)
    while frame is not None and len(frames) < 8:
        filename = frame.f_code.co_filename
        if "importlib" not in filename and not filename.startswith("<frozen"):
            frames.append(f"{filename}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return frames


RECORDER = ImportRecorder()
sys.meta_path.insert(0, RECORDER)

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary  # noqa: E402

import prometheus_rw_bridge  # noqa: E402


class BrokenCollector:
    """A custom collector that fails on every collection, as buggy ones do."""

    def collect(self) -> Any:
        raise RuntimeError("this collector is broken")


def registry_with_every_type(name: str) -> CollectorRegistry:
    """A registry holding a metric of each prometheus_client type."""
    registry = CollectorRegistry()
    counter = Counter(f"{name}_events", "Events.", ["kind"], registry=registry)
    counter.labels(kind="a").inc()
    counter.labels(kind="b").inc(2)
    Gauge(f"{name}_level", "Level.", registry=registry).set(1.5)
    Histogram(f"{name}_seconds", "Latency.", registry=registry).observe(0.2)
    Summary(f"{name}_bytes", "Sizes.", registry=registry).observe(512)
    Info(f"{name}_build", "Build.", registry=registry).info({"version": "1.0"})
    Enum(f"{name}_state", "State.", states=["up", "down"], registry=registry).state("up")
    return registry


def run_otel(scenario: dict[str, Any]) -> dict[str, Any]:
    """Export three times from the SDK's reader thread (a new series, then its end), then shut down."""
    from opentelemetry.metrics import Observation
    from opentelemetry.sdk.metrics import Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from prometheus_rw_bridge.opentelemetry import RemoteWriteMetricExporter

    results: list[bool] = []
    exported = threading.Semaphore(0)

    class Exporter(RemoteWriteMetricExporter):
        def export(self, *args: Any, **kwargs: Any) -> MetricExportResult:
            result = super().export(*args, **kwargs)
            results.append(result is MetricExportResult.SUCCESS)
            exported.release()
            return result

    exporter = Exporter(
        preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation()}, **scenario["options"]
    )
    reader = PeriodicExportingMetricReader(
        exporter, export_interval_millis=20, export_timeout_millis=scenario["flush_timeout"] * 1000
    )
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": scenario["name"]})
    )
    meter = provider.get_meter("probe", "1.0")
    queues = {"a": 1.0, "b": 2.0}
    meter.create_observable_gauge(
        "probe.queue", [lambda _: [Observation(v, {"q": k}) for k, v in queues.items()]]
    )
    meter.create_histogram("probe.latency", unit="s").record(0.25)
    with TracerProvider().get_tracer("probe").start_as_current_span("traced"):  # an exemplar
        meter.create_counter("probe.requests").add(2, {"route": "/"})
    for _ in range(3):
        exported.acquire(timeout=60)
        queues.pop("b", None)  # a stale marker for it in a later export
    provider.shutdown(timeout_millis=scenario["close_timeout"] * 1000)
    stats = exporter.stats
    return {
        "name": scenario["name"],
        "flushed": results[:3],
        "successes": stats.successes,
        "errors": stats.errors,
        "dropped": dict(stats.dropped_by_reason),
        "last_error": stats.last_error,
    }


def run(scenario: dict[str, Any]) -> dict[str, Any]:
    """Push as ``scenario`` says; a bridge is flushed three times (a new series, then its end) and closed."""
    for name, value in scenario["env"].items():  # None: unset
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if scenario["otel"]:
        return run_otel(scenario)
    registry = registry_with_every_type(scenario["name"])
    if scenario["broken_collector"]:
        registry.register(BrokenCollector())
    common = {"registry": registry, "job": scenario["name"], "instance": "probe", **scenario["options"]}
    if scenario["push"]:  # push_to_remote_write: several endpoints are pushed from a thread pool
        prometheus_rw_bridge.push_to_remote_write(**common)
        return {"name": scenario["name"]}
    bridge = prometheus_rw_bridge.enable_remote_write(interval=3600, **common)
    timeout = scenario["flush_timeout"]
    flushed = [bridge.flush(timeout=timeout)]
    late = Counter(f"{scenario['name']}_late", "Appears, then goes.", registry=registry)
    late.inc()
    flushed.append(bridge.flush(timeout=timeout))
    registry.unregister(late)  # a stale marker for it in the next push
    flushed.append(bridge.flush(timeout=timeout))
    bridge.close(timeout=scenario["close_timeout"])  # the last push, then stale markers for all
    stats = bridge.stats
    return {
        "name": scenario["name"],
        "flushed": flushed,
        "successes": stats.successes,
        "errors": stats.errors,
        "dropped": dict(stats.dropped_by_reason),
        "last_error": stats.last_error,
    }


def main() -> None:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)  # every logger's lines get written
    result = run(json.load(sys.stdin))
    json.dump({"imports": RECORDER.records, "result": result}, sys.stdout)


if __name__ == "__main__":
    main()
