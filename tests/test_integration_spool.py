"""The disk spool with real processes: receiver down, app SIGKILLed, receiver back, app restarted.

An application process (``spool_app.py``) pushes to a receiver that refuses connections; its
collections wait in the spool.  It is killed with SIGKILL, the receiver comes back, and a new
process starts on the same spool: every collection spooled before the kill must arrive exactly
once, in order, before anything of the new run.  The same with a torn tail appended to the newest
spool file (a write cut short by the kill), and with the kill landing in the middle of a push
(then at most that collection may be missing).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prometheus_rw_bridge._delivery.spool_format import MAGIC
from prometheus_rw_bridge.testing import Receiver

APP = Path(__file__).with_name("spool_app.py")
SECOND_RUN = 1000  # the values of the second process start here


class App:
    """One application process, driven through its stdin and stdout."""

    def __init__(self, url: str, spool_dir: Path, first: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(APP), url, str(spool_dir), str(first)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.read() == "ready", self.stderr()

    def read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line, f"the app ended: {self.stderr()}"
        return line

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def push(self) -> int:
        self.send("push")
        kind, value = self.read().split()
        assert kind == "spooled"
        return int(value)

    def close(self) -> dict[str, Any]:
        self.send("close")
        kind, stats = self.read().split(" ", 1)
        assert kind == "closed"
        self.process.wait(60)
        result: dict[str, Any] = json.loads(stats)
        return result

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(60)

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        running.stop()  # down: connections are refused until it starts again
        yield running


def values(receiver: Receiver) -> list[int]:
    """Every value of ``spooled_value`` the receiver accepted, in arrival order."""
    got = []
    for request in receiver.requests:
        if request.decoded is None or not request.accepted:
            continue
        for series in request.decoded.series:
            if series.name == "spooled_value":
                got += [int(s.value) for s in series.samples if not math.isnan(s.value)]
    return got


def newest_segment(spool_dir: Path) -> Path:
    segments = sorted(spool_dir.glob("*/*.seg"))
    assert segments, list(spool_dir.rglob("*"))
    return segments[-1]


def restart_and_check(receiver: Receiver, spool_dir: Path, spooled: list[int]) -> tuple[list[int], str]:
    """Bring the receiver back, run a second app on the spool; return what arrived and its stderr."""
    receiver.start()
    second = App(receiver.url, spool_dir, SECOND_RUN)
    fresh = [SECOND_RUN, *(second.push() for _ in range(3))]
    stats = second.close()
    stderr = second.stderr()
    got = values(receiver)
    old = [v for v in got if v < SECOND_RUN]
    # Everything spooled before the kill first, then the new run (and close()'s last collection).
    assert got == [*old, *fresh, fresh[-1]], got
    assert stats["samples_dropped"] == 0 and stats["samples_failed"] == 0, stats
    assert stats["samples_pending"] == 0
    assert old[: len(spooled)] == spooled, (old, spooled)  # each once, in order, none missing
    return old, stderr


@pytest.mark.parametrize("torn_tail", [pytest.param(False, id="clean"), pytest.param(True, id="torn-tail")])
def test_a_killed_app_delivers_every_spooled_collection_once_in_order_after_a_restart(
    receiver: Receiver, tmp_path: Path, torn_tail: bool
) -> None:
    spool_dir = tmp_path / "spool"
    first = App(receiver.url, spool_dir, 0)
    spooled = [0, *(first.push() for _ in range(8))]
    first.kill()
    assert receiver.requests == []  # nothing could be delivered while it ran
    if torn_tail:
        with newest_segment(spool_dir).open("ab") as segment:
            segment.write(MAGIC + os.urandom(29))  # a record cut off by the kill
    old, stderr = restart_and_check(receiver, spool_dir, spooled)
    assert old == spooled
    if torn_tail:
        assert "truncated 33 invalid bytes" in stderr, stderr


def test_a_kill_in_the_middle_of_a_push_loses_at_most_that_collection(
    receiver: Receiver, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    first = App(receiver.url, spool_dir, 0)
    spooled = [0, *(first.push() for _ in range(5))]
    first.send("push")  # collection 6 is being made and spooled when the kill lands
    first.kill()
    old, _ = restart_and_check(receiver, spool_dir, spooled)
    assert old in (spooled, [*spooled, spooled[-1] + 1])
