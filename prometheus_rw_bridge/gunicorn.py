"""gunicorn hooks: with prometheus_client's multiprocess mode, exactly one process pushes.

Each gunicorn worker is a process with its own counters; pushing from every worker would send
the same series several times, which receivers reject (duplicates, out-of-order samples).  In
multiprocess mode the workers write their values to files in ``PROMETHEUS_MULTIPROC_DIR``, and
the gunicorn *master* pushes the merged ``MultiProcessCollector`` view; workers never push.

``gunicorn.conf.py``::

    from prometheus_rw_bridge.gunicorn import when_ready, on_exit, child_exit  # noqa: F401

and in the environment::

    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc      # an empty directory, before gunicorn starts
    PROMETHEUS_REMOTE_WRITE_URL=http://prometheus:9090/api/v1/write
    PROMETHEUS_REMOTE_WRITE_JOB=my-service                  # default: the program name, "gunicorn"

* ``when_ready`` (master, once listening): starts the bridge on a fresh ``CollectorRegistry``
  holding the workers' values merged as ``MultiProcessCollector`` merges them.  Workers are
  forked afterwards; a bridge is off in a forked child, and no thread of the bridge leaves a
  lock held in one (docs/architecture.md, "Forks").
* ``child_exit`` (master, after a worker exits): ``multiprocess.mark_process_dead(pid)``, so
  the dead worker's live gauges go away.
* ``on_exit`` (master, after the workers stopped): closes the bridge, which makes one final push
  holding every worker's last values.

Options other than the environment can be given in ``gunicorn.conf.py`` with
``configure(job="api", interval=10)`` before gunicorn calls ``when_ready``.  Do not also call
``enable_remote_write()`` in the application: each worker would push its own partial view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._multiprocess import MergedPusher

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import UrlOptions

__all__ = ["child_exit", "configure", "on_exit", "when_ready"]

_pusher = MergedPusher("the gunicorn master", "the workers'", "prometheus_rw_bridge.gunicorn")


def configure(*, close_timeout: float = 5.0, **options: Unpack[UrlOptions]) -> None:
    """Set options for the bridge the master will start (call in ``gunicorn.conf.py``).

    Args:
        close_timeout: seconds the final push may take when gunicorn exits.
        **options: passed to :func:`~prometheus_rw_bridge.enable_remote_write`; they win over
            the environment.  ``registry`` is not accepted: the master builds the merged one.
    """
    _pusher.configure("configure", close_timeout=close_timeout, **options)


def when_ready(server: Any) -> None:
    """gunicorn hook, in the master once it listens: start pushing the merged worker metrics."""
    _pusher.start()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master after a worker exited: drop that worker's live gauges."""
    _pusher.process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """gunicorn hook, in the master as it exits: one final push, then stop the bridge."""
    _pusher.close()
