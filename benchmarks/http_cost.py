"""CPU per POST of one 2,000-sample request: httpx's default transport against the library's own.

Imported by ``bench_encode.py`` (section ``http``).  Both send through an ``httpx.Client`` to a
no-op receiver in a child process, interleaved, so only the transport under the client differs.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from workload import INSTANCE, JOB, TIMESTAMP_MS, NoOpReceiver

from prometheus_rw_bridge._protocol.batching import compress_requests
from prometheus_rw_bridge._protocol.encode import Encoder
from prometheus_rw_bridge._protocol.registry import read


def rows(registry: Any, repeat: int) -> list[str]:
    """Markdown rows: median CPU per request of each transport."""
    import httpx

    from prometheus_rw_bridge._http.transport import HttpxTransport

    encoded = Encoder(job=JOB, instance=INSTANCE).encode(read(registry), TIMESTAMP_MS)
    requests = compress_requests(encoded, "1.0", 2000, metadata=False)
    with NoOpReceiver() as url:
        transports = {"httpx's default (httpcore + h11)": HttpxTransport(url, client=httpx.Client(), owns_client=True)}
        try:
            from prometheus_rw_bridge._http.http11 import Http11Transport
        except ImportError:
            pass  # the library's own transport is gone: nothing to compare with
        else:
            client = httpx.Client(transport=Http11Transport())
            transports["`Http11Transport` (http.client), the library's"] = HttpxTransport(
                url, client=client, owns_client=True
            )
        costs: dict[str, list[float]] = {name: [] for name in transports}
        for _ in range(repeat * 3):
            for name, transport in transports.items():
                start = time.thread_time()
                for request in requests:
                    transport.send(request.body)
                costs[name].append((time.thread_time() - start) / len(requests))
        for transport in transports.values():
            transport.close()
    return [f"| {name} | {statistics.median(values) * 1000:.2f} ms |" for name, values in costs.items()]
