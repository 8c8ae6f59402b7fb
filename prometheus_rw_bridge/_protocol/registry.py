"""Reading a registry: every collector on its own, prometheus_client's own metrics directly.

:func:`collect` yields what ``registry.collect()`` yields, but calls each collector of a
``CollectorRegistry`` on its own, so one that raises costs only its own families.  :func:`read`
does the same, except that the standard metric types come as
:class:`~prometheus_rw_bridge._protocol.direct.DirectFamily` snapshots, which the encoders fill
without ``collect()`` while the metric's series stay the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from . import direct as _direct

logger = logging.getLogger("prometheus_rw_bridge._protocol.encode")  # the logger these warnings always had

__all__ = ["collect", "read"]


def collect(registry: Any) -> Iterator[Any]:
    """Yield the metric families of ``registry``, isolating collectors that raise.

    For a ``CollectorRegistry`` each collector is called on its own, so one broken collector
    costs only its own families (logged) rather than the whole collection.  Any other object
    with ``collect()`` is called as it is.
    """
    return _read(registry, None)


def read(registry: Any) -> Iterator[Any]:
    """Like :func:`collect`, with the standard metric types read directly where that is safe."""
    return _read(registry, _direct.read_metric if _direct.enabled() else None)


def _read(registry: Any, direct: Callable[[Any], Any] | None) -> Iterator[Any]:
    lock = getattr(registry, "_lock", None)
    names = getattr(registry, "_collector_to_names", None)
    if lock is None or not isinstance(names, dict):
        yield from registry.collect()
        return
    with lock:
        collectors = list(names)
        target_info = registry._target_info_metric() if getattr(registry, "_target_info", None) else None
    if target_info is not None:
        yield target_info
    for collector in collectors:
        try:
            family = None if direct is None else direct(collector)
            families = [family] if family is not None else list(collector.collect())
        except Exception:
            logger.warning(
                "Dropping collector %r for this collection: collect() raised", collector, exc_info=True
            )
            continue
        yield from families
