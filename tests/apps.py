"""Helpers for the framework tests: real servers in subprocesses, load, and reading the pushes.

The servers (uvicorn, werkzeug, gunicorn, celery) run as real processes with the app written to
a temporary directory; they push to an in-process :class:`prometheus_rw_bridge.testing.Receiver`.
Waiting on them polls with a deadline (they are external processes); nothing sleeps to synchronise.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from servers import free_port, wait_until

from prometheus_rw_bridge import is_stale_nan
from prometheus_rw_bridge.testing import Receiver

__all__ = [
    "IMPORT_TRAP",
    "AppProcess",
    "Point",
    "assert_one_clean_series",
    "free_port",
    "load",
    "points",
    "start_app",
]

IMPORT_TRAP = """
import sys, threading, time


class ImportTrap:
    # Written down, and made to take half a second, so that a fork lands in it every time.
    def find_spec(self, name, path=None, target=None):
        thread = threading.current_thread().name
        if thread.startswith("prometheus-rw-bridge"):
            with open({imports!r}, "a") as record:
                record.write(thread + " imported " + name + "\\n")
            time.sleep(0.5)
        return None


sys.meta_path.insert(0, ImportTrap())
"""
"""Source for a pre-fork server's parent that records every import a thread of the library makes.

A thread importing holds that module's import lock; a child forked meanwhile inherits the lock
held and hangs when it imports the module (werkzeug imports ``encodings.idna`` on a gunicorn
worker's first request).  Appended to the parent's config or app module and ``.format()``-ed
with ``imports``, the file to record in: the library's threads import nothing, so it must stay
absent.
"""


@dataclass
class AppProcess:
    """A server process and where its output goes."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the process to exit; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the server did not exit within {timeout}s after {sig!r}:\n{self.log_text()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL the server and every process of its group (a hung worker would outlive its master)."""
        if self.process.returncode is None:  # not reaped, so its pid still names the group
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def start_app(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    port: int,
    ready_path: str = "/ready",
    answer_within: float | None = None,
) -> AppProcess:
    """Start ``python args...`` in ``cwd`` and wait until ``GET ready_path`` answers 200.

    With ``answer_within``, only a refused connection (nothing listens yet) is tried again: a
    request the server accepted and left unanswered for that many seconds (a hung worker)
    fails at once.
    """
    log = cwd / "server.log"
    # The test runner's own PROMETHEUS_* settings must not leak into the app.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")}
    full_env = {**inherited, **env, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that no worker outlives the test
        )
    app = AppProcess(process, f"http://127.0.0.1:{port}", log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{app.log_text()}")
        if answer_within is None:
            return httpx.get(app.base_url + ready_path, timeout=2).status_code == 200
        try:
            response = httpx.get(app.base_url + ready_path, timeout=answer_within)
        except httpx.ConnectError:
            return False
        except httpx.TimeoutException as exc:
            raise AssertionError(f"{ready_path} got no answer within {answer_within}s: {exc!r}") from None
        return response.status_code == 200

    try:
        wait_until(ready, timeout=60, message=f"{args[:3]} to serve {ready_path}")
    except BaseException:
        app.kill()
        raise
    return app


def load(url: str, requests: int, *, threads: int = 8, timeout: float = 30) -> list[str]:
    """Make ``requests`` GETs to ``url`` from ``threads`` threads; return the bodies (all must be 200).

    Each request must be answered within ``timeout`` seconds (``httpx.TimeoutException`` otherwise).
    """

    def one(client: httpx.Client) -> str:
        response = client.get(url, timeout=timeout)
        assert response.status_code == 200, response.text
        return response.text

    with httpx.Client() as client, ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: one(client), range(requests)))


@dataclass(frozen=True)
class Point:
    """One sample of one series as pushed."""

    labels: frozenset[tuple[str, str]]
    timestamp_ms: int
    value: float

    @property
    def stale(self) -> bool:
        return is_stale_nan(self.value)


def points(receiver: Receiver, name: str) -> list[Point]:
    """Every sample of series ``name`` in the order the receiver got them."""
    found: list[Point] = []
    for request in receiver.requests:
        assert request.decoded is not None, request.decode_error
        for series in request.decoded.series:
            if series.name == name:
                labels = frozenset(series.labels.items())
                found.extend(Point(labels, s.timestamp_ms, s.value) for s in series.samples)
    return found


def assert_one_clean_series(found: Sequence[Point]) -> list[Point]:
    """Check ``found`` is one series with strictly increasing timestamps; return its live samples."""
    assert found, "no samples arrived"
    assert len({p.labels for p in found}) == 1, sorted({p.labels for p in found}, key=str)
    stamps = [p.timestamp_ms for p in found]
    assert stamps == sorted(set(stamps)), f"timestamps not strictly increasing: {stamps}"
    live = [p for p in found if not p.stale]
    assert all(not math.isnan(p.value) for p in live)
    return live
