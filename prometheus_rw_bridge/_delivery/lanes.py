"""Several requests of one collection in flight at once (``max_shards``), and the order that keeps.

A collection holds each series once, so its requests may go out side by side without a series'
samples overtaking each other; the next collection starts only when every request of this one
has finished (delivered, refused or given up).  That is the whole ordering rule, and it holds
across collections, across retries and across a spool replay.  The 1.0 specification allows
it: senders "MAY send multiple requests for different series in parallel" and "MUST send
samples for any given series in timestamp order".

:class:`Lanes` runs the tasks of one collection: the calling thread is one lane, and up to
``count - 1`` helper threads, started the first time they are needed, are the others.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

__all__ = ["Lanes"]

logger = logging.getLogger(__name__)

Task = Callable[[], object]


class Lanes:
    """Run the tasks of one collection, up to ``count`` at once.

    Args:
        count: requests in flight at most (``max_shards``), at least 1.
        name: the helper threads' name prefix.
    """

    def __init__(self, count: int, *, name: str = "prometheus-rw-bridge-lane") -> None:
        self.count = max(1, count)
        self._name = name
        self._cond = threading.Condition()
        self._work: deque[Task] = deque()
        self._busy = 0
        self._helpers = 0
        self._closed = False

    def run(self, tasks: Sequence[Task]) -> None:
        """Run every task and return once all have finished; a task's exception is logged."""
        if self.count == 1 or len(tasks) <= 1:
            for task in tasks:
                _run_one(task)
            return
        with self._cond:
            self._work.extend(tasks)
            self._start_helpers(min(self.count, len(tasks)) - 1)
            self._cond.notify_all()
        while True:
            with self._cond:
                while not self._work and self._busy:
                    self._cond.wait()
                if not self._work:
                    return
                task = self._work.popleft()
                self._busy += 1
            self._finish(task)

    def close(self) -> None:
        """Let the helper threads end once idle (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def after_fork_in_child(self) -> None:
        """The parent's helpers do not exist here, and its lock may have been held."""
        self._cond = threading.Condition()
        self._work = deque()
        self._busy = self._helpers = 0

    def _start_helpers(self, wanted: int) -> None:
        while self._helpers < wanted and not self._closed:
            self._helpers += 1
            name = f"{self._name}-{self._helpers}"
            threading.Thread(target=self._helper, name=name, daemon=True).start()

    def _helper(self) -> None:
        while True:
            with self._cond:
                while not self._work and not self._closed:
                    self._cond.wait()
                if not self._work:
                    self._helpers -= 1
                    return
                task = self._work.popleft()
                self._busy += 1
            self._finish(task)

    def _finish(self, task: Task) -> None:
        try:
            _run_one(task)
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()


def _run_one(task: Task) -> None:
    try:
        task()
    except Exception:  # a lane must never die; the task counts its own losses
        logger.error("Remote-write request failed unexpectedly", exc_info=True)
