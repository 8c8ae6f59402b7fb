"""A remote-write receiver for your tests: see what your application pushes, and script faults.

:class:`Receiver` is a real HTTP server on a loopback port that takes remote write 1.0 and 2.0,
checks every rule of the specifications, records each request and keeps the latest value of
every series it accepts::

    from prometheus_rw_bridge import push_to_remote_write
    from prometheus_rw_bridge.testing import Receiver

    def test_orders_are_counted():
        with Receiver(strict=True) as receiver:
            place_order(registry)  # your code, counting with prometheus_client
            push_to_remote_write(receiver.write_url, registry=registry, job="shop")
        assert receiver.value("orders_total", job="shop", status="paid") == 1

Faults are scripted with :class:`Reply` (status, body, headers such as ``Retry-After``, a delay,
a hang until :meth:`Receiver.release`, a dropped connection, an echo), the receiver stops and
restarts on the same port, and :func:`refused_url` names a port nobody listens on.  The guide
is ``docs/testing.md``.
"""

from __future__ import annotations

from ._tools.receiver import HANG, Receiver, Reply, refused_url
from ._tools.store import ReceivedRequest, StoredSeries
from ._tools.validate import RULES, Violation

__all__ = [
    "HANG",
    "RULES",
    "ReceivedRequest",
    "Receiver",
    "Reply",
    "StoredSeries",
    "Violation",
    "refused_url",
]
