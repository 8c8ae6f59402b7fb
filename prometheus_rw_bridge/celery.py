"""Celery hooks: with prometheus_client's multiprocess mode, a prefork worker pushes once for its pool.

A Celery prefork worker runs tasks in pool processes, each with counters of its own; pushing from
every one would send the same series several times, which receivers reject.  In multiprocess mode
each process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``, and the worker's *main*
process pushes them merged (a counter incremented in two pool processes arrives as one sum);
pool processes never push.

Where the Celery app is defined::

    from celery import Celery
    from prometheus_rw_bridge import celery as remote_write

    app = Celery("tasks", broker="...")
    remote_write.connect()  # or connect(job="tasks", interval=10)

and in the environment of ``celery worker``::

    PROMETHEUS_MULTIPROC_DIR=/tmp/celery-metrics   # an empty directory, before the worker starts
    PROMETHEUS_REMOTE_WRITE_URL=http://prometheus:9090/api/v1/write
    PROMETHEUS_REMOTE_WRITE_JOB=tasks              # default: the program name, "celery"

:func:`connect` connects three handlers to Celery's worker signals:

* ``worker_init`` (the main process, before the pool forks): starts the bridge on a registry
  holding every process's values merged as ``MultiProcessCollector`` merges them.  Pool
  processes are forked afterwards, and again whenever one is replaced
  (``--max-tasks-per-child``, ``--max-memory-per-child``, a crash); a bridge is off in a forked
  child, and no thread of the bridge leaves a lock held in one (docs/architecture.md, "Forks").
* ``worker_process_shutdown`` (a pool process, as it exits): ``mark_process_dead(pid)``, so its
  live gauges go away.  A pool process killed outright (a hard time limit, the OOM killer) never
  gets to run it; the main process then drops its live gauges at the next collection.
* ``worker_shutdown`` (the main process, once the pool has stopped): closes the bridge, which
  makes one final push holding every pool process's last values.

Do not also call ``enable_remote_write()`` in the tasks' module: each process would push its own
partial view.  Install with ``pip install 'prometheus-rw-bridge[celery]'``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._multiprocess import MergedPusher

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import UrlOptions

__all__ = ["connect", "disconnect", "worker_init", "worker_process_shutdown", "worker_shutdown"]

_pusher = MergedPusher(
    "the Celery worker", "its pool processes'", "prometheus_rw_bridge.celery", forget_dead=True
)
_UID = "prometheus_rw_bridge.celery"


def connect(*, close_timeout: float = 5.0, **options: Unpack[UrlOptions]) -> None:
    """Connect the hooks to Celery's worker signals (call where the Celery app is defined).

    Calling it again replaces the options; the hooks stay connected once.

    Args:
        close_timeout: seconds the final push may take when the worker shuts down.
        **options: passed to :func:`~prometheus_rw_bridge.enable_remote_write`; they win over
            the environment.  ``registry`` is not accepted: the worker builds the merged one.
    """
    from celery import signals

    _pusher.configure("connect", close_timeout=close_timeout, **options)
    signals.worker_init.connect(worker_init, weak=False, dispatch_uid=_UID)
    signals.worker_process_shutdown.connect(worker_process_shutdown, weak=False, dispatch_uid=_UID)
    signals.worker_shutdown.connect(worker_shutdown, weak=False, dispatch_uid=_UID)


def disconnect() -> None:
    """Disconnect the hooks from Celery's signals (a bridge already started keeps running)."""
    from celery import signals

    signals.worker_init.disconnect(worker_init, dispatch_uid=_UID)
    signals.worker_process_shutdown.disconnect(worker_process_shutdown, dispatch_uid=_UID)
    signals.worker_shutdown.disconnect(worker_shutdown, dispatch_uid=_UID)


def worker_init(**kwargs: Any) -> None:
    """Celery ``worker_init`` handler, in the main process: start pushing the merged metrics."""
    _pusher.start()


def worker_process_shutdown(pid: int | None = None, **kwargs: Any) -> None:
    """Celery ``worker_process_shutdown`` handler, in a pool process as it exits: drop its live gauges."""
    _pusher.process_dead(pid if pid is not None else os.getpid())


def worker_shutdown(**kwargs: Any) -> None:
    """Celery ``worker_shutdown`` handler, in the main process: one final push, then stop the bridge."""
    _pusher.close()
