"""prometheus_client's multiprocess mode for pre-fork servers: one process pushes every process's values.

A pre-fork server (gunicorn, a Celery prefork worker) runs its code in child processes, each with
counters of its own; pushing from every child would send the same series several times, which
receivers reject.  In multiprocess mode each process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR``; the parent pushes them merged, as ``MultiProcessCollector`` merges
them, with one bridge.  :class:`MergedPusher` is that bridge's life (configure, start, mark a
child dead, close) for the hooks of :mod:`prometheus_rw_bridge.gunicorn` and
:mod:`prometheus_rw_bridge.celery`; :class:`ProcessFiles` is the merged view.

Children are forked while the parent's bridge runs; a bridge is off in a forked child, and no
thread of the bridge leaves a lock held in one (docs/architecture.md, "Forks").
"""

from __future__ import annotations

import glob
import logging
import os
import re
from typing import Any

from prometheus_client import CollectorRegistry, multiprocess

from ._api import enable_remote_write
from ._delivery.bridge import RemoteWriteBridge

__all__ = ["ENV_MULTIPROC_DIR", "MergedPusher", "ProcessFiles", "mark_process_dead", "multiprocess_dir"]

logger = logging.getLogger(__name__)

ENV_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's multiprocess directory: set, multiprocess mode is on."""

_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


def multiprocess_dir() -> str | None:
    """Return prometheus_client's multiprocess directory, if multiprocess mode is on."""
    return os.environ.get(ENV_MULTIPROC_DIR) or None


def mark_process_dead(pid: int) -> None:
    """Drop the live gauges of process ``pid`` (``multiprocess.mark_process_dead``), if any are left.

    Its counters, histograms and other gauges stay: they still count in the sums.
    """
    try:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    except OSError:  # removed meanwhile by another process marking it dead
        pass


class ProcessFiles:
    """Every process's values merged as ``MultiProcessCollector`` merges them, minus files still empty.

    prometheus_client creates a process's file before it sizes it.  A collection that reads the
    file in that instant raises ``struct.error`` and loses every process's values for that push
    (prometheus/client_python#1199); with children re-forked often (``max_requests``,
    ``--max-tasks-per-child``) that is a matter of time.  An empty file holds no values yet, so it
    is left out.

    Args:
        path: the multiprocess directory.
        forget_dead: before each collection, mark dead every process whose live gauges remain
            but which no longer runs: for servers whose parent is not told when a child dies (a
            Celery pool child killed by a hard time limit never says goodbye).
    """

    def __init__(self, path: str, *, forget_dead: bool = False) -> None:
        self._path = path
        self._forget_dead = forget_dead

    def collect(self) -> Any:
        if self._forget_dead:
            self._forget_dead_processes()
        files = [name for name in glob.glob(os.path.join(self._path, "*.db")) if _has_data(name)]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]

    def _forget_dead_processes(self) -> None:
        for name in os.listdir(self._path):
            found = _LIVE_GAUGE_FILE.fullmatch(name)
            if found is not None and not _running(int(found.group(1))):
                mark_process_dead(int(found.group(1)))


def _has_data(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:  # removed meanwhile (mark_process_dead)
        return False


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


class MergedPusher:
    """The one bridge of a pre-fork server's parent process, pushing its children's merged values.

    Args:
        parent: the process that pushes, for messages (``"the gunicorn master"``).
        children: whose values it pushes, for messages (``"the workers'"``).
        guide: where to read more, for messages (a module name).
        forget_dead: see :class:`ProcessFiles`.
    """

    def __init__(self, parent: str, children: str, guide: str, *, forget_dead: bool = False) -> None:
        self._parent = parent
        self._children = children
        self._guide = guide
        self._forget_dead = forget_dead
        self.options: dict[str, Any] = {}
        self.close_timeout = 5.0
        self.bridge: RemoteWriteBridge | None = None

    def configure(self, caller: str, *, close_timeout: float = 5.0, **options: Any) -> None:
        """Set the options of the bridge :meth:`start` will start (``caller`` names the public function)."""
        if "registry" in options:
            raise TypeError(
                f"{caller}() takes no registry: {self._parent} pushes the merged multiprocess view"
            )
        self.options = dict(options)
        self.close_timeout = close_timeout

    def start(self) -> None:
        """Start pushing the merged view, unless multiprocess mode is off (then warn)."""
        path = multiprocess_dir()
        if path is None:
            logger.warning(
                "prometheus-rw-bridge: %s is not set, so %s cannot see %s metrics and pushes nothing; see %s",
                ENV_MULTIPROC_DIR,
                self._parent,
                self._children,
                self._guide,
            )
            return
        registry = CollectorRegistry()
        registry.register(ProcessFiles(path, forget_dead=self._forget_dead))
        self.bridge = enable_remote_write(registry=registry, **self.options)

    def process_dead(self, pid: int) -> None:
        """Drop the live gauges of a child that exited, in multiprocess mode."""
        if multiprocess_dir() is not None:
            mark_process_dead(pid)

    def close(self) -> None:
        """Make the final push (every child's last values), then stop the bridge."""
        bridge, self.bridge = self.bridge, None
        if bridge is not None:
            bridge.close(self.close_timeout)
