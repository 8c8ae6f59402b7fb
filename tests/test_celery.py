"""Celery prefork workers in multiprocess mode: only the main process pushes, pool processes' counts summed.

A real ``celery worker`` (prefork pool of 2) runs in a subprocess with the ``filesystem://``
broker transport and the ``file://`` result backend, so no broker server is needed; the test
sends tasks by name from a client app of its own and waits on their results.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from apps import IMPORT_TRAP, AppProcess, Point, assert_one_clean_series, points
from celery import Celery, signals
from celery.exceptions import WorkerLostError
from celery.result import AsyncResult

from prometheus_rw_bridge import celery as hooks
from prometheus_rw_bridge.testing import Receiver, Reply

TASKS = (
    """
import os
import signal

from celery import Celery
from prometheus_client import Counter, Gauge

from prometheus_rw_bridge import celery as remote_write

app = Celery("tasks")
app.conf.update({config!r})
remote_write.connect()

DONE = Counter("tasks_done", "Tasks done.", ["kind"])
RUNNING = Gauge("tasks_running", "Tasks running.", multiprocess_mode="livesum")


@app.task
def work(kind):
    with RUNNING.track_inprogress():
        DONE.labels(kind).inc()
    return os.getpid()


@app.task
def die():
    # Killed outright, as the OOM killer does: no Python code runs after this.
    with RUNNING.track_inprogress():
        os.kill(os.getpid(), signal.SIGKILL)


@app.task
def meet(fifo, role):
    # Returns only once its partner runs at the same time, so in the other pool process.
    DONE.labels("meet").inc()
    with open(fifo, "w" if role == "writer" else "r") as end:
        end.write("hello") if role == "writer" else end.read()
    return os.getpid()

"""
    + IMPORT_TRAP  # records any import a bridge thread makes: a pool process forked then would hang
)

RESULT_WITHIN = 60.0
"""Seconds a task's result may take; a hung pool process never returns one."""


@dataclass
class Worker:
    """A ``celery worker`` subprocess, and a client app sending it tasks through the same folders."""

    process: AppProcess
    client: Celery
    root: Path

    def send(self, task: str, *args: object, **options: Any) -> AsyncResult:
        """Send ``task`` to the worker and return its pending result."""
        result = self.client.send_task(f"tasks.{task}", args=args, **options)
        # kombu's filesystem transport writes a message into a file it has already created,
        # and a consumer may read it empty meanwhile; so the client writes elsewhere, and the
        # whole file is moved into the worker's folder in one rename.
        for name in os.listdir(self.root / "outbox"):
            os.rename(self.root / "outbox" / name, self.root / "broker" / name)
        return result

    def run(self, task: str, *args: object) -> int:
        """Run ``task`` on the worker and return its result (a pool process's pid)."""
        return int(self.send(task, *args).get(timeout=RESULT_WITHIN, interval=0.05))

    def meet(self) -> set[int]:
        """Run the two halves of a rendezvous; return the two pool processes' pids."""
        fifo = self.root / "meeting"
        os.mkfifo(fifo)
        halves = [self.send("meet", str(fifo), role) for role in ("reader", "writer")]
        pids = {int(half.get(timeout=RESULT_WITHIN, interval=0.05)) for half in halves}
        fifo.unlink()
        return pids

    def shut_down(self) -> str:
        """Warm shutdown (SIGTERM to the main process); return the log once it exited with 0."""
        code = self.process.stop(signal.SIGTERM)
        log = self.process.log_text()
        assert code == 0, log
        return log


def celery_config(root: Path, *, out: str = "broker") -> dict[str, object]:
    """The worker's (or, with ``out="outbox"``, the client's) configuration: folders, no server."""
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": str(root / "broker"),
            "data_folder_out": str(root / out),
            "control_folder": str(root / "control"),  # else ./control, wherever the test runs
            "polling_interval": 0.05,
        },
        "result_backend": f"file://{root / 'results'}",
        "broker_connection_retry_on_startup": True,
        "worker_lost_wait": 0.1,  # a killed pool process's task fails at once, not after 10 s
    }


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(url: str, *options: str, interval: str = "1h") -> Worker:
        for folder in ("broker", "outbox", "control", "results", "multiproc"):
            (tmp_path / folder).mkdir()
        config = celery_config(tmp_path)
        (tmp_path / "tasks.py").write_text(
            textwrap.dedent(TASKS).format(config=config, imports=str(tmp_path / "imports.txt"))
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")},
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc"),
            "PROMETHEUS_REMOTE_WRITE_URL": url,
            "PROMETHEUS_REMOTE_WRITE_INTERVAL": interval,
            "PROMETHEUS_REMOTE_WRITE_JOB": "celery-test",
            "PYTHONUNBUFFERED": "1",
        }
        log = tmp_path / "worker.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tasks",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=2",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                    "-O",
                    "fair",
                    "--loglevel=INFO",
                    *options,
                ],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so no pool process outlives the test
            )
        client = Celery("client")
        client.conf.update(celery_config(tmp_path, out="outbox"))
        worker = Worker(AppProcess(process, "", log), client, tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.process.kill()
        worker.client.close()


def series_by_kind(found: list[Point]) -> dict[str, list[Point]]:
    kinds: dict[str, list[Point]] = {}
    for point in found:
        kinds.setdefault(dict(point.labels)["kind"], []).append(point)
    return kinds


def test_pool_processes_counts_arrive_summed_with_the_last_values_at_shutdown(
    start_worker: Callable[..., Worker],
) -> None:
    with Receiver(strict=True) as receiver:
        worker = start_worker(receiver.write_url)  # pushes at start, then not before shutdown
        pids = worker.meet()
        pids |= {worker.run("work", "a") for _ in range(5)}
        pids |= {worker.run("work", "b") for _ in range(3)}
        before_shutdown = len(receiver.requests)

        log = worker.shut_down()

    assert len(pids) == 2, log  # the rendezvous ran in both pool processes
    kinds = series_by_kind(points(receiver, "tasks_done_total"))
    assert sorted(kinds) == ["a", "b", "meet"]
    finals = {kind: assert_one_clean_series(found)[-1] for kind, found in kinds.items()}
    assert {kind: point.value for kind, point in finals.items()} == {"a": 5.0, "b": 3.0, "meet": 2.0}
    for point in finals.values():  # one series per counter: no pid, the worker's job
        assert dict(point.labels).keys() == {"__name__", "instance", "job", "kind"}
        assert dict(point.labels)["job"] == "celery-test"
    # The push made at shutdown, once the pool had stopped, carried the last values.
    at_shutdown = {
        (series.labels["kind"], sample.value)
        for request in receiver.requests[before_shutdown:]
        for series in (request.decoded.series if request.decoded else [])
        if series.name == "tasks_done_total"
        for sample in series.samples
    }
    assert {("a", 5.0), ("b", 3.0), ("meet", 2.0)} <= at_shutdown
    assert receiver.violations == []
    assert not (worker.root / "imports.txt").exists()


def test_reforked_pool_processes_never_hang_while_pushes_are_in_flight(
    start_worker: Callable[..., Worker],
) -> None:
    # Every task gets a fresh pool process; the receiver answers each push late, so a fork
    # lands while the main process's sender waits on it, and collections run every 50 ms.
    with Receiver(strict=True, default=Reply(delay=0.02)) as receiver:
        worker = start_worker(receiver.write_url, "--max-tasks-per-child=1", interval="50ms")
        pids = {worker.run("work", "refork") for _ in range(30)}
        receiver.wait_for_requests(5, timeout=RESULT_WITHIN, accepted=True)

        log = worker.shut_down()

    assert len(pids) == 30, log  # a fresh pool process for every task
    assert not (worker.root / "imports.txt").exists(), (worker.root / "imports.txt").read_text()
    assert "Traceback" not in log and "WorkerLostError" not in log, log
    (found,) = series_by_kind(points(receiver, "tasks_done_total")).values()
    assert assert_one_clean_series(found)[-1].value == 30
    # Every pool process dropped its live gauges as it exited (the main process's own stay).
    live = {name for name in os.listdir(worker.root / "multiproc") if re.match(r"gauge_live", name)}
    assert live <= {f"gauge_livesum_{worker.process.process.pid}.db"}


def test_a_pool_process_killed_outright_loses_its_live_gauges(start_worker: Callable[..., Worker]) -> None:
    # It never runs worker_process_shutdown; the main process drops its live gauges at the
    # next collection, seeing it no longer runs.
    with Receiver(strict=True) as receiver:
        worker = start_worker(receiver.write_url)
        with pytest.raises(WorkerLostError):
            worker.send("die").get(timeout=RESULT_WITHIN, interval=0.05)
        worker.run("work", "after")

        log = worker.shut_down()

    assert "exited with 'signal 9 (SIGKILL)'" in log, log
    main = worker.process.process.pid
    live = {name for name in os.listdir(worker.root / "multiproc") if re.match(r"gauge_live", name)}
    assert live <= {f"gauge_livesum_{main}.db"}
    running = [p for p in points(receiver, "tasks_running") if not p.stale]
    assert running[-1].value == 0


# --------------------------------------------------------------------------- the hooks in process


@pytest.fixture
def connected() -> Iterator[None]:
    yield
    hooks.disconnect()
    hooks._pusher.configure("connect")  # the default options again


def test_the_signals_drive_the_hooks(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connected: None
) -> None:
    # A pool process's files written as one would (a running one: this process, so the main
    # process's collections keep its live gauge), then the worker's signals sent by hand.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pid = os.getpid()
    from prometheus_client import values
    from prometheus_client.metrics import Counter, Gauge
    from prometheus_client.registry import CollectorRegistry

    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))  # type: ignore[no-untyped-call]
    Counter("jobs", "Jobs.", registry=CollectorRegistry()).inc(5)
    Gauge("busy", "Busy.", multiprocess_mode="livesum", registry=CollectorRegistry()).set(1)
    hooks.connect(url=receiver.write_url, interval=3600, job="hooks", self_metrics=False)
    hooks.connect(url=receiver.write_url, interval=3600, job="hooks", self_metrics=False)  # once is enough

    signals.worker_init.send(sender=None)
    assert (tmp_path / f"gauge_livesum_{pid}.db").exists()
    signals.worker_process_shutdown.send(sender=None, pid=pid, exitcode=0)
    assert not (tmp_path / f"gauge_livesum_{pid}.db").exists()  # the pool process's live gauge is gone
    signals.worker_shutdown.send(sender=None)

    live = assert_one_clean_series(points(receiver, "jobs_total"))
    assert [p.value for p in live][-1] == 5
    assert dict(live[-1].labels)["job"] == "hooks"
    assert os.listdir(tmp_path)  # counters of exited pool processes stay: they still count


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(strict=True) as running:
        yield running


def test_without_a_multiprocess_directory_the_worker_warns_and_pushes_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)

    hooks.worker_init(sender=None)
    hooks.worker_process_shutdown(pid=12345, exitcode=0)
    hooks.worker_shutdown(sender=None)

    assert (
        "PROMETHEUS_MULTIPROC_DIR is not set, so the Celery worker cannot see its pool processes' "
        "metrics and pushes nothing; see prometheus_rw_bridge.celery"
    ) in caplog.text


def test_connect_refuses_a_registry() -> None:
    with pytest.raises(TypeError, match=r"connect\(\) takes no registry: the Celery worker pushes"):
        hooks.connect(registry=object())
