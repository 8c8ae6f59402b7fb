"""Real Prometheus, VictoriaMetrics and vmagent servers for integration tests.

Each server runs from its Debian binary on a free loopback port, with its data in a
directory of its own, and is stopped (SIGTERM, then SIGKILL) when the test is done.  The
fixtures in ``conftest.py`` wrap these; tests normally use the fixtures, not this module.

Readiness and ingestion are waited for by polling with a deadline, never by sleeping a
fixed time: that is the one kind of waiting a real external server allows.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

__all__ = [
    "PROMETHEUS_BINARY",
    "VICTORIAMETRICS_BINARY",
    "VMAGENT_BINARY",
    "Server",
    "ServerError",
    "free_port",
    "require_binary",
    "start_prometheus",
    "start_victoriametrics",
    "start_vmagent",
    "wait_until",
]

PROMETHEUS_BINARY = "prometheus"
VICTORIAMETRICS_BINARY = "victoria-metrics"
VMAGENT_BINARY = "vmagent"  # from the victoria-metrics Debian package

START_DEADLINE = 60.0
"""Seconds a server may take to become ready (generous: CI machines have two shared cores)."""

STOP_DEADLINE = 15.0
"""Seconds a server gets to exit after SIGTERM before it is killed."""

# No scrape jobs at all: the server must hold nothing but what the tests write to it.
_PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1h
  evaluation_interval: 1h
scrape_configs: []
"""


class ServerError(RuntimeError):
    """A server did not start, or answered a query with an error."""


def in_ci() -> bool:
    """Tell whether we run in CI, where a missing server binary is a failure, not a skip."""
    return os.environ.get("CI", "").lower() == "true"


def require_binary(name: str) -> str:
    """Return the path of executable ``name``; fail the test in CI when it is missing, else skip it."""
    path = shutil.which(name)
    if path is None:
        message = (
            f"the {name!r} binary is not installed "
            f"(Debian: apt-get install -y prometheus victoria-metrics, or run: bash scripts/run test)"
        )
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail after ``timeout``.

    Only for waiting on an external process (a server becoming ready or ingesting data);
    in-process synchronisation uses events.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = condition()
        except (httpx.HTTPError, ServerError) as exc:
            last_error, result = exc, None
        if result:
            return result
        if time.monotonic() >= deadline:
            suffix = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}{suffix}")
        time.sleep(interval)


@dataclass
class Server:
    """A running Prometheus, VictoriaMetrics or vmagent process.

    Attributes:
        kind: ``"prometheus"``, ``"victoriametrics"`` or ``"vmagent"``.
        url: base URL, e.g. ``http://127.0.0.1:41234``.
        write_url: the remote-write endpoint (``url + "/api/v1/write"``).
        workdir: the directory holding its data, config and log.
        args: the full command line it was started with.
    """

    kind: str
    url: str
    workdir: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0), repr=False)

    @property
    def write_url(self) -> str:
        """The remote-write 1.0 endpoint."""
        return self.url + "/api/v1/write"

    @property
    def log_path(self) -> Path:
        """The file the server's stdout and stderr go to."""
        return self.workdir / "server.log"

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def query(self, promql: str, time: float | None = None) -> list[dict[str, Any]]:
        """Run an instant query and return its ``data.result`` list.

        Args:
            promql: the expression.
            time: evaluation time in seconds since the epoch; the server's "now" if ``None``.

        Returns:
            For a vector, one ``{"metric": {...}, "value": [ts, "value"]}`` per series.

        Raises:
            ServerError: the server answered with an error.
        """
        params: dict[str, str] = {"query": promql}
        if time is not None:
            params["time"] = f"{time:.3f}"
        response = self._client.get(self.url + "/api/v1/query", params=params)
        try:
            payload = response.json()
        except ValueError as exc:
            raise ServerError(f"{self.kind} answered {response.status_code}: {response.text[:500]}") from exc
        if response.status_code != 200 or payload.get("status") != "success":
            raise ServerError(f"{self.kind} answered {response.status_code} to {promql!r}: {payload}")
        result: list[dict[str, Any]] = payload["data"]["result"]
        return result

    def query_exemplars(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        """Return ``/api/v1/query_exemplars``'s ``data``: one ``{seriesLabels, exemplars}`` per series."""
        params = {"query": promql, "start": str(start), "end": str(end)}
        response = self._client.get(self.url + "/api/v1/query_exemplars", params=params)
        found: list[dict[str, Any]] = response.json()["data"]
        return found

    def query_vector(self, promql: str, time: float | None = None) -> dict[frozenset[tuple[str, str]], float]:
        """Run an instant query and return ``{frozenset(labels): value}`` (``__name__`` included)."""
        return {
            frozenset(item["metric"].items()): float(item["value"][1]) for item in self.query(promql, time)
        }

    def metadata(self, metric: str) -> Any:
        """Return the ``data`` of ``GET /api/v1/metadata?metric=...``: the metadata the server keeps."""
        response = self._client.get(self.url + "/api/v1/metadata", params={"metric": metric})
        response.raise_for_status()
        return response.json()["data"]

    def flush(self) -> None:
        """Make everything written so far visible to queries (VictoriaMetrics buffers briefly)."""
        if self.kind == "victoriametrics":
            self._client.get(self.url + "/internal/force_flush")

    def write(self, body: bytes, headers: Any) -> httpx.Response:
        """POST a compressed remote-write body with ``headers``; return the response."""
        return self._client.post(self.write_url, content=body, headers=dict(headers))

    def ready(self) -> bool:
        """Tell whether the server answers its readiness endpoint."""
        path = "/-/ready" if self.kind == "prometheus" else "/health"
        try:
            return self._client.get(self.url + path, timeout=2.0).status_code == 200
        except (httpx.HTTPError, RuntimeError):  # RuntimeError: the client is closed, so are we
            return False

    def stop(self) -> None:
        """Stop the process: SIGTERM, then SIGKILL after :data:`STOP_DEADLINE`.  Idempotent."""
        process, self.process = self.process, None
        self._client.close()
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_DEADLINE)

    def restart(self) -> None:
        """Stop the process if it runs, then start it again on the same port with the same data."""
        self.stop()
        self._client = httpx.Client(timeout=10.0)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        wait_until(self.ready, timeout=START_DEADLINE, message=f"{self.kind} to restart at {self.url}")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _launch(kind: str, workdir: Path, make_args: Callable[[int], list[str]], attempts: int = 3) -> Server:
    """Start a server on a free port, retrying if the port was taken in the meantime."""
    workdir.mkdir(parents=True, exist_ok=True)
    failure = ""
    for _ in range(attempts):
        port = free_port()
        args = make_args(port)
        server = Server(kind=kind, url=f"http://127.0.0.1:{port}", workdir=workdir, args=args)
        with open(server.log_path, "ab") as log:
            server.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
            )
        process = server.process

        def up_or_exited(server: Server = server, process: subprocess.Popen[bytes] = process) -> bool:
            return server.ready() or process.poll() is not None

        try:
            wait_until(
                up_or_exited,
                timeout=START_DEADLINE,
                message=f"{kind} to become ready at {server.url}",
            )
        except TimeoutError as exc:
            server.stop()
            raise ServerError(f"{exc}\n--- {server.log_path} ---\n{server.log_tail()}") from exc
        if process.poll() is None:
            return server
        failure = server.log_tail()
        server.stop()
        if "address already in use" not in failure:
            break
    raise ServerError(f"{kind} exited during start-up: {' '.join(args)}\n--- log ---\n{failure}")


def start_prometheus(
    workdir: Path,
    *,
    remote_write_receiver: bool = True,
    features: Iterable[str] = (),
    extra_args: Sequence[str] = (),
) -> Server:
    """Start a Prometheus with no scrape jobs and return it once ready.

    Args:
        workdir: an empty directory for its TSDB, config and log.
        remote_write_receiver: pass ``--web.enable-remote-write-receiver``.
        features: ``--enable-feature`` values, e.g. ``"native-histograms"``, ``"exemplar-storage"``.
        extra_args: further command-line flags.

    Returns:
        The running server; call :meth:`Server.stop` (or use it as a context manager).
    """
    binary = require_binary(PROMETHEUS_BINARY)
    config = workdir / "prometheus.yml"
    workdir.mkdir(parents=True, exist_ok=True)
    config.write_text(_PROMETHEUS_CONFIG)
    feature_list = sorted(set(features))

    def make_args(port: int) -> list[str]:
        args = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        if remote_write_receiver:
            args.append("--web.enable-remote-write-receiver")
        if feature_list:
            args.append("--enable-feature=" + ",".join(feature_list))
        return args + list(extra_args)

    return _launch("prometheus", workdir, make_args)


def start_victoriametrics(workdir: Path, *, extra_args: Sequence[str] = ()) -> Server:
    """Start a single-node VictoriaMetrics whose writes are queryable at once, and return it when ready.

    Args:
        workdir: an empty directory for its storage and log.
        extra_args: further command-line flags.

    Returns:
        The running server.
    """
    binary = require_binary(VICTORIAMETRICS_BINARY)

    def make_args(port: int) -> list[str]:
        return [
            binary,
            f"-storageDataPath={workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            # Without these, the last 30s of data are hidden and query results are cached.
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-retentionPeriod=100y",
            "-loggerLevel=WARN",
            *extra_args,
        ]

    return _launch("victoriametrics", workdir, make_args)


def start_vmagent(
    workdir: Path, remote_write_urls: Sequence[str], *, extra_args: Sequence[str] = ()
) -> Server:
    """Start a vmagent that replicates what it receives to every URL, and return it when ready.

    It accepts remote write at ``write_url`` and keeps a persistent queue per URL under
    ``workdir``, so a receiver that is down gets everything once it is back.  Its own counters
    (``vmagent_remotewrite_*``) are at ``url + "/metrics"``.

    Args:
        workdir: an empty directory for its queues and log.
        remote_write_urls: where to replicate to (``-remoteWrite.url``, one per receiver).
        extra_args: further command-line flags.
    """
    binary = require_binary(VMAGENT_BINARY)
    flags = {"remoteWrite.tmpDataPath": workdir / "queues", "remoteWrite.flushInterval": "200ms"}
    urls = [f"-remoteWrite.url={url}" for url in remote_write_urls]

    def make_args(port: int) -> list[str]:
        listen = f"-httpListenAddr=127.0.0.1:{port}"
        return [
            binary,
            listen,
            *(f"-{k}={v}" for k, v in flags.items()),
            *urls,
            "-loggerLevel=WARN",
            *extra_args,
        ]

    return _launch("vmagent", workdir, make_args)
