"""What ``os.fork()`` does to this process's bridges.

A collection holds prometheus_client's locks (the registry's, each metric's) and runs user
collectors, which may import; a child forked in the middle of one would inherit those locks
held by a thread it does not have, and the application's next ``inc()`` on that metric would
wait for ever.  So before a fork every bridge's collect lock is taken (each running collection
finishes first), and released again after it, in the parent.  The wait is bounded by
:data:`FORK_WAIT`: a collection that takes longer (a collector stuck on I/O) no longer holds off
the fork, and a warning says so.  A fork from inside a collection (a collector that forks) does
not wait for itself.

In the child every inherited bridge is switched off (logged once): two processes must not push
the same series.  See docs/architecture.md, "Forks".
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bridge import RemoteWriteBridge

__all__ = ["FORK_WAIT", "track"]

logger = logging.getLogger(__name__)

FORK_WAIT = 5.0
"""Seconds a fork waits at most for running collections to finish before it goes ahead anyway."""

# Bridges that exist in this process.
_live_bridges: weakref.WeakSet[RemoteWriteBridge] = weakref.WeakSet()

# The collect locks _before_fork took, released again after the fork in the parent.
_held_for_fork: list[threading.Lock] = []


def track(bridge: RemoteWriteBridge) -> None:
    """Hold ``bridge``'s collections across forks and switch it off in forked children."""
    _live_bridges.add(bridge)


def _before_fork() -> None:
    """Wait until no collection runs, and keep new ones from starting until the fork is done."""
    deadline = time.monotonic() + FORK_WAIT
    me = threading.get_ident()
    late = 0
    for bridge in list(_live_bridges):
        if bridge._collecting_in == me:
            continue
        lock = bridge._collect_lock
        if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            _held_for_fork.append(lock)
        else:
            late += 1
    if late:
        logger.warning(
            "prometheus-rw-bridge: forking although %d remote-write collection(s) still run after %.1fs; "
            "the child may inherit metric locks they hold and hang on them (is a collector stuck?)",
            late,
            FORK_WAIT,
        )


def _after_fork_in_parent() -> None:
    """Let collections run again."""
    while _held_for_fork:
        _held_for_fork.pop().release()


def _after_fork_in_child() -> None:
    _held_for_fork.clear()  # the parent's locks: every bridge gets new ones below
    running = [b for b in list(_live_bridges) if b.enabled]
    for bridge in list(_live_bridges):
        bridge._after_fork_in_child()
    if running:
        logger.info(
            "prometheus-rw-bridge: %d bridge(s) inherited across fork are off in this child (pid %d); "
            "call enable_remote_write() here to push from it",
            len(running),
            os.getpid(),
        )


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )
