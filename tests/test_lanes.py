"""Lanes: up to ``count`` tasks of one collection at once, returning when every one has finished."""

from __future__ import annotations

import logging
import threading

import pytest

from prometheus_rw_bridge._delivery.lanes import Lanes


class Tasks:
    """Tasks that block until released, recording how many run at once."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.running = 0
        self.most = 0
        self.done: list[int] = []
        self.release = threading.Event()

    def task(self, index: int) -> None:
        with self.cond:
            self.running += 1
            self.most = max(self.most, self.running)
            self.cond.notify_all()
        self.release.wait()
        with self.cond:
            self.running -= 1
            self.done.append(index)

    def wait_running(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.running >= n, timeout=30), self.running


def run_in_thread(lanes: Lanes, tasks: Tasks, n: int) -> threading.Thread:
    thread = threading.Thread(target=lanes.run, args=([lambda i=i: tasks.task(i) for i in range(n)],))
    thread.start()
    return thread


@pytest.mark.parametrize("count", [1, 3, 8])
def test_at_most_count_tasks_run_at_once_and_run_returns_when_all_are_done(count: int) -> None:
    lanes, tasks = Lanes(count), Tasks()
    runner = run_in_thread(lanes, tasks, 10)
    tasks.wait_running(count)
    assert runner.is_alive()  # nothing finished yet: run() has not returned
    tasks.release.set()
    runner.join(30)
    assert not runner.is_alive()
    assert sorted(tasks.done) == list(range(10)) and tasks.most == count
    lanes.close()


def test_a_task_that_raises_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    lanes = Lanes(4)
    ran: list[int] = []

    def boom() -> None:
        raise RuntimeError("kaboom")

    with caplog.at_level(logging.ERROR):
        lanes.run([boom, lambda: ran.append(1), boom, lambda: ran.append(2)])
    assert sorted(ran) == [1, 2]
    assert [str(r.exc_info[1]) for r in caplog.records if r.exc_info] == ["kaboom", "kaboom"]
    lanes.run([lambda: ran.append(3)])  # the lanes still work
    assert ran[-1] == 3
    lanes.close()


def test_helpers_start_only_when_needed_and_end_when_closed() -> None:
    lanes = Lanes(8, name="helpers-under-test")
    lanes.run([lambda: None])  # one task: the calling thread alone, no helper
    assert not [t for t in threading.enumerate() if t.name.startswith("helpers-under-test")]
    tasks = Tasks()
    runner = run_in_thread(lanes, tasks, 3)
    tasks.wait_running(3)
    helpers = [t for t in threading.enumerate() if t.name.startswith("helpers-under-test")]
    assert len(helpers) == 2  # two helpers beside the caller
    tasks.release.set()
    runner.join(30)
    lanes.close()
    for helper in helpers:
        helper.join(30)
        assert not helper.is_alive()
    lanes.run([lambda: tasks.done.append(99), lambda: tasks.done.append(100)])  # closed: the caller runs them
    assert tasks.done[-2:] == [99, 100]
