"""gunicorn multiprocess mode: only the master pushes, and the workers' counters arrive as one sum."""

from __future__ import annotations

import os
import re
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from apps import IMPORT_TRAP, AppProcess, assert_one_clean_series, free_port, load, points, start_app
from servers import Server, wait_until

from prometheus_rw_bridge import gunicorn as hooks
from prometheus_rw_bridge.testing import Receiver

WSGI_APP = """
import os

from prometheus_client import Counter, Gauge

REQUESTS = Counter("app_requests", "Requests served.", ["path"])
IN_FLIGHT = Gauge("app_in_flight", "Requests in flight.", multiprocess_mode="livesum")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/bridge":  # the bridge this worker inherited from the master: it must be off
        from prometheus_rw_bridge import gunicorn

        inherited = gunicorn._pusher.bridge
        enabled = inherited is not None and inherited.enabled
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{os.getpid()} {inherited is not None} {enabled}".encode()]
    with IN_FLIGHT.track_inprogress():
        if path == "/work":
            REQUESTS.labels(path="work").inc()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""

GUNICORN_CONF = """
from prometheus_rw_bridge.gunicorn import when_ready, on_exit, child_exit  # noqa: F401

workers = 3
bind = "127.0.0.1:{port}"
graceful_timeout = 20
control_socket_disable = True  # gunicorn 25+: no shared socket in $HOME between test runs
"""


FLASK_APP = """
import os

from flask import Flask
from prometheus_client import Counter

app = Flask(__name__)
REQUESTS = Counter("app_requests", "Requests served.", ["path"])


@app.route("/ready")
def ready():
    return "ready"


@app.route("/work")
def work():
    REQUESTS.labels(path="work").inc()
    return str(os.getpid())
"""

# The documented line, 3 workers re-forked every 8 to 12 requests, and a trap for imports.
FLASK_CONF = (
    """
from prometheus_rw_bridge.gunicorn import child_exit, on_exit, when_ready  # noqa: F401

workers = 3
bind = "127.0.0.1:{port}"
max_requests = 8
max_requests_jitter = 4
graceful_timeout = 10
control_socket_disable = True  # gunicorn 25+: no shared socket in $HOME between test runs



def post_worker_init(worker):
    # Lets the test wait, before it stops gunicorn, until no worker is still starting: one
    # that gets SIGTERM before it installs its own handlers ignores it (a race in gunicorn).
    worker.log.info("Worker ready (pid: %s)", worker.pid)
"""
    + IMPORT_TRAP
)

ANSWER_WITHIN = 3.0
"""Seconds every request to the Flask app gets; a hung worker never answers."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(strict=True) as running:
        yield running


def start_gunicorn(tmp_path: Path, url: str, job: str = "gunicorn-test") -> AppProcess:
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    port = free_port()
    (tmp_path / "wsgi_app.py").write_text(textwrap.dedent(WSGI_APP))
    (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent(GUNICORN_CONF).format(port=port))
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "PROMETHEUS_REMOTE_WRITE_URL": url,
        "PROMETHEUS_REMOTE_WRITE_INTERVAL": "200ms",
        "PROMETHEUS_REMOTE_WRITE_JOB": job,
    }
    return start_app(
        ["-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi_app:app"], cwd=tmp_path, env=env, port=port
    )


def serve_load_on_every_worker(server: AppProcess) -> int:
    """Load ``server`` until each of its 3 workers served some; stop it; return the request count."""
    pids: set[str] = set()
    total = 0
    try:
        # The kernel spreads connections over the workers; go on until each got some.
        def all_workers_busy() -> bool:
            nonlocal total
            answers = load(server.base_url + "/work", 60, threads=6)
            total += len(answers)
            pids.update(answers)
            return len(pids) >= 3

        wait_until(all_workers_busy, timeout=60, interval=0, message="requests served by 3 workers")
        # Every worker inherited the master's bridge, switched off by the fork: workers never push.
        answers = set(load(server.base_url + "/bridge", 30, threads=6))
        assert {answer.split(" ", 1)[1] for answer in answers} == {"True False"}, answers
    finally:
        code = server.stop(signal.SIGTERM)
    log = server.log_text()
    assert code == 0, log
    assert "Traceback" not in log and "answered" not in log, log  # no push was refused
    assert len(pids) == 3
    return total


def test_three_workers_arrive_as_one_correct_sum(receiver: Receiver, tmp_path: Path) -> None:
    total = serve_load_on_every_worker(start_gunicorn(tmp_path, receiver.url))

    requests = points(receiver, "app_requests_total")
    live = assert_one_clean_series(requests)  # one series: no per-worker duplicates, in order
    labels = dict(live[-1].labels)
    assert labels == {
        "__name__": "app_requests_total",
        "path": "work",
        "job": "gunicorn-test",
        "instance": labels["instance"],
    }
    values = [p.value for p in live]
    assert values == sorted(values)
    assert values[-1] == total  # the final push, after the workers stopped, has every request
    assert requests[-1].stale
    assert all(r.status == 204 for r in receiver.requests)  # the strict receiver refused nothing
    # each push is one complete view: exactly one sample of the counter per request body
    for request in receiver.requests:
        assert request.decoded is not None
        assert len([s for s in request.decoded.series if s.name == "app_requests_total"]) <= 1


def test_hooks_without_multiprocess_dir_do_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    server = SimpleNamespace()
    hooks.when_ready(server)
    assert "PROMETHEUS_MULTIPROC_DIR is not set" in caplog.text
    hooks.child_exit(server, SimpleNamespace(pid=12345))
    hooks.on_exit(server)


def test_hooks_in_process(receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same hooks, called directly, with one counter file written as a worker would.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    from prometheus_client import values
    from prometheus_client.metrics import Counter
    from prometheus_client.registry import CollectorRegistry

    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 4242))  # type: ignore[no-untyped-call]
    Counter("jobs", "Jobs.", registry=CollectorRegistry()).inc(5)
    hooks.configure(url=receiver.url, interval=3600, job="hooks", self_metrics=False)
    try:
        hooks.when_ready(SimpleNamespace())
        hooks.child_exit(SimpleNamespace(), SimpleNamespace(pid=4242))
        hooks.on_exit(SimpleNamespace())
    finally:
        hooks.configure()
    live = assert_one_clean_series(points(receiver, "jobs_total"))
    assert live[-1].value == 5
    assert dict(live[-1].labels)["job"] == "hooks"
    assert os.listdir(tmp_path)  # counters of dead workers stay: they still count


def test_configure_refuses_a_registry() -> None:
    with pytest.raises(TypeError, match="registry"):
        hooks.configure(registry=object())


@pytest.mark.integration
def test_three_workers_into_real_prometheus(
    prometheus_server: Server, unique_job: str, tmp_path: Path
) -> None:
    total = serve_load_on_every_worker(start_gunicorn(tmp_path, prometheus_server.write_url, unique_job))
    # The series ends with a stale marker at exit; range functions skip it.
    selector = f'app_requests_total{{job="{unique_job}"}}[10m]'
    found = prometheus_server.query_vector(f"max_over_time({selector})")
    assert list(found.values()) == [total], found  # one series, no per-worker duplicates
    (labels,) = found
    assert dict(labels)["path"] == "work" and "pid" not in dict(labels)


def serve_flask_while_workers_are_reforked(tmp_path: Path, url: str, job: str) -> int:
    """Start gunicorn with the Flask app, load it, stop it; check no worker hung; return the requests."""
    tmp_path.mkdir()
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    imports = tmp_path / "imports.txt"
    port = free_port()
    (tmp_path / "flask_app.py").write_text(textwrap.dedent(FLASK_APP))
    (tmp_path / "gunicorn.conf.py").write_text(FLASK_CONF.format(port=port, imports=str(imports)))
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "PROMETHEUS_REMOTE_WRITE_URL": url,
        "PROMETHEUS_REMOTE_WRITE_INTERVAL": "50ms",  # pushes in flight while workers fork
        "PROMETHEUS_REMOTE_WRITE_JOB": job,
    }
    server = start_app(
        ["-m", "gunicorn", "-c", "gunicorn.conf.py", "flask_app:app"],
        cwd=tmp_path,
        env=env,
        port=port,
        answer_within=ANSWER_WITHIN,
    )
    try:
        served = len(load(server.base_url + "/work", 45, threads=6, timeout=ANSWER_WITHIN))
        wait_until(lambda: workers(server.log_text())[0], timeout=30, message="3 workers ready")
    finally:
        code = server.stop(signal.SIGTERM)
    log = server.log_text()
    assert code == 0, log
    assert not imports.exists(), imports.read_text()
    _, booted, exited = workers(log)
    assert len(booted) > 3, log  # workers were re-forked
    assert booted == exited, log  # and every one of them ended cleanly
    assert "WORKER TIMEOUT" not in log and "Traceback" not in log, log
    return served


def workers(log: str) -> tuple[bool, set[str], set[str]]:
    """From gunicorn's log: whether 3 workers run and all are ready, and the pids booted and exited."""
    booted = set(re.findall(r"Booting worker with pid: (\d+)", log))
    exited = set(re.findall(r"Worker exiting \(pid: (\d+)\)", log))
    ready = set(re.findall(r"Worker ready \(pid: (\d+)\)", log))
    running = booted - exited
    return len(running) == 3 and running <= ready, booted, exited


@pytest.mark.integration
def test_flask_workers_never_hang_while_the_master_pushes(
    prometheus_server: Server, unique_job: str, tmp_path: Path
) -> None:
    served = {
        f"{unique_job}_{start}": serve_flask_while_workers_are_reforked(
            tmp_path / f"start-{start}", prometheus_server.write_url, f"{unique_job}_{start}"
        )
        for start in range(10)
    }
    # Counters of workers that exited still count: every start's total is every request it served.
    found = prometheus_server.query_vector(
        f'sum by (job) (max_over_time(app_requests_total{{job=~"{unique_job}_.*"}}[10m]))'
    )
    assert {dict(labels)["job"]: value for labels, value in found.items()} == served
