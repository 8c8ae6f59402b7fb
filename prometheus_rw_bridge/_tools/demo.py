"""``prometheus-rw-bridge demo``: a sample app pushing to the built-in receiver, showing what arrives.

The app has one metric of each prometheus_client type, changed by a thread; it pushes with
``enable_remote_write()`` to a :class:`~.receiver.Receiver` on a free loopback port (or to
``--url``), and every request is printed as it arrives.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from typing import Any

from .command import EXIT_FAILED, EXIT_OK, Console, display, positive_float, stop_on_signals
from .receive import Printer
from .receiver import Receiver

__all__ = ["DESCRIPTION", "HELP", "SampleApp", "configure", "run"]

HELP = "run a sample app pushing to a built-in receiver and show what arrives"
DESCRIPTION = (
    "Start the built-in validating receiver on a free loopback port, run a small sample "
    "app (counter, gauge, histogram, summary, info, enum) with enable_remote_write(), and print "
    "every request that arrives as exposition text.  Ctrl-C ends it."
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``demo``'s arguments to its parser."""
    parser.add_argument("--url", help="push to this remote-write URL instead of the built-in receiver")
    parser.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    parser.add_argument("--interval", type=positive_float, default=1.0, help="seconds between pushes (1)")
    parser.add_argument(
        "--protocol", choices=("1.0", "2.0"), default="1.0", help="remote-write protocol (1.0)"
    )


def run(args: argparse.Namespace, console: Console) -> int:
    """Run the sample app until ``--duration`` or Ctrl-C, then print a summary."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    app = SampleApp(registry)
    printer = Printer(console, quiet=False)
    receiver: Receiver | None = None
    url = args.url
    if url is None:
        receiver = Receiver(on_request=printer, keep_requests=0).start()
        url = receiver.write_url
        console.say(f"# built-in receiver listening at {url}")
    stop = threading.Event()
    started = time.monotonic()
    bridge: Any = None
    with stop_on_signals(stop):
        try:
            app.start()
            bridge = _push(args, registry, url)
            if not bridge.enabled:
                console.error(f"remote write is off: {bridge.disabled_reason or 'see the log'}")
                return EXIT_FAILED
            console.say(
                f"# sample app pushing to {display(url)} every {args.interval:g}s"
                + (f" for {args.duration:g}s" if args.duration else "; Ctrl-C to stop")
            )
            deadline = None if args.duration is None else started + args.duration
            _wait(args.interval, deadline, console, stop, bridge if receiver is None else None)
        finally:
            app.stop()
            if bridge is not None:
                with contextlib.suppress(KeyboardInterrupt):
                    bridge.close(timeout=5.0)
            if receiver is not None:
                receiver.stop()
    stats = bridge.stats
    summary = (
        f"# demo finished after {time.monotonic() - started:.1f}s: {stats.successes} pushes accepted, "
        f"{stats.errors} errors, {stats.samples_sent} samples sent"
    )
    if receiver is not None:
        summary += (
            f"; the receiver got {printer.requests} requests, {len(receiver.series())} series, "
            f"{printer.violations} violations"
        )
    console.say(summary)
    return EXIT_OK if stats.successes > 0 else EXIT_FAILED


def _push(args: argparse.Namespace, registry: Any, url: str) -> Any:
    """Start the bridge pushing the sample app's registry to ``url``."""
    import prometheus_rw_bridge

    return prometheus_rw_bridge.enable_remote_write(
        url,
        registry=registry,
        interval=args.interval,
        job="demo",
        instance="demo-app",
        protocol=args.protocol,
        self_metrics=False,
    )


def _wait(
    interval: float, deadline: float | None, console: Console, stop: threading.Event, progress: Any
) -> None:
    """Wait for the deadline, ``stop`` or a closed output, printing ``progress``'s stats if given."""
    while not stop.is_set() and not console.closed.is_set():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        stop.wait(min(interval, remaining) if remaining is not None else interval)
        if progress is not None:
            _print_stats(console, progress.stats)


def _print_stats(console: Console, stats: Any) -> None:
    line = (
        f"# pushes: {stats.successes} ok, {stats.errors} errors; samples sent {stats.samples_sent}, "
        f"pending {stats.samples_pending}, dropped {stats.samples_dropped}"
    )
    if stats.last_error:
        line += f"; last error: {stats.last_error}"
    console.say(line)


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
