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

import glob
import logging
import os
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, multiprocess

from ._api import enable_remote_write
from ._delivery.bridge import RemoteWriteBridge

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import UrlOptions

__all__ = ["child_exit", "configure", "on_exit", "when_ready"]

logger = logging.getLogger(__name__)

_options: dict[str, Any] = {}
_close_timeout = 5.0
_bridge: RemoteWriteBridge | None = None


def _multiprocess_dir() -> str | None:
    """Return prometheus_client's multiprocess directory, if multiprocess mode is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def configure(*, close_timeout: float = 5.0, **options: Unpack[UrlOptions]) -> None:
    """Set options for the bridge the master will start (call in ``gunicorn.conf.py``).

    Args:
        close_timeout: seconds the final push may take when gunicorn exits.
        **options: passed to :func:`~prometheus_rw_bridge.enable_remote_write`; they win over
            the environment.  ``registry`` is not accepted: the master builds the merged one.
    """
    global _close_timeout
    if "registry" in options:
        raise TypeError("configure() takes no registry: the master pushes the merged multiprocess view")
    _options.clear()
    _options.update(options)
    _close_timeout = close_timeout


def when_ready(server: Any) -> None:
    """gunicorn hook, in the master once it listens: start pushing the merged worker metrics."""
    global _bridge
    path = _multiprocess_dir()
    if path is None:
        logger.warning(
            "prometheus-rw-bridge: PROMETHEUS_MULTIPROC_DIR is not set, so the gunicorn master cannot "
            "see the workers' metrics and pushes nothing; see prometheus_rw_bridge.gunicorn"
        )
        return
    registry = CollectorRegistry()
    registry.register(_WorkerFiles(path))
    _bridge = enable_remote_write(registry=registry, **_options)


class _WorkerFiles:
    """The workers' values merged as ``MultiProcessCollector`` merges them, minus files still empty.

    prometheus_client creates a worker's file before it sizes it.  A collection that reads the
    file in that instant raises ``struct.error`` and loses every worker's values for that push
    (prometheus/client_python#1199); with workers re-forked often (``max_requests``) that is a
    matter of time.  An empty file holds no values yet, so it is left out.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    def collect(self) -> Any:
        files = [name for name in glob.glob(os.path.join(self._path, "*.db")) if _has_data(name)]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def _has_data(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:  # removed meanwhile (mark_process_dead)
        return False


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master after a worker exited: drop that worker's live gauges."""
    if _multiprocess_dir() is None:
        return
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """gunicorn hook, in the master as it exits: one final push, then stop the bridge."""
    global _bridge
    bridge, _bridge = _bridge, None
    if bridge is not None:
        bridge.close(_close_timeout)
