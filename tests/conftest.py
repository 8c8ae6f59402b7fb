"""Shared fixtures: real Prometheus and VictoriaMetrics servers, and fresh registries.

Server fixtures (see ``tests/servers.py`` for the :class:`~servers.Server` API):

``prometheus_server`` (session)
    Prometheus 2.x with ``--web.enable-remote-write-receiver`` and no scrape jobs.
``prometheus_native_server`` (session)
    The same plus ``--enable-feature=native-histograms,exemplar-storage`` (remote-write 2.0,
    native histograms and exemplar queries).
``prometheus_no_receiver_server`` (session)
    Prometheus started *without* the receiver flag: its ``/api/v1/write`` answers 404.
``victoriametrics_server`` (session)
    Single-node VictoriaMetrics, with ``-search.latencyOffset=0s -search.disableCache`` so
    data is queryable as soon as :meth:`Server.flush` returns.
``server_factory`` (function)
    ``server_factory("prometheus", remote_write_receiver=..., features=..., extra_args=...)`` or
    ``server_factory("victoriametrics", extra_args=...)`` starts a fresh server for one test
    and stops it afterwards.

Every server object has ``.url``, ``.write_url`` (``/api/v1/write``), ``.query(promql,
time=None)`` returning the ``data.result`` list, ``.query_vector()`` returning
``{frozenset(labels): value}``, ``.query_exemplars(promql, start, end)``, ``.write(body,
headers)``, ``.flush()`` (VictoriaMetrics' force-flush; a no-op for Prometheus) and ``.stop()``.

Session servers are shared by every test, so a test must write under labels of its own:
use the ``unique_job`` fixture as the ``job`` label and query with ``{job="<unique_job>"}``.
Send samples with timestamps near now (``now_ms``): Prometheus refuses samples older than
its head block, so a 1970 timestamp would fail the whole request.

A missing binary skips the test locally and fails it when ``CI=true``.

``fault_receiver`` (function)
    A running :class:`prometheus_rw_bridge.testing.Receiver` answering 204 to whatever it is
    sent until the test scripts otherwise (``fault_receiver.script(Reply(503), ...)``).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from prometheus_rw_bridge.testing import Receiver, Reply

pytest.register_assert_rewrite("scrape", "servers")

from servers import Server, start_prometheus, start_victoriametrics  # noqa: E402

_job_counter = itertools.count()


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Prometheus accepting remote write, shared by the session."""
    with start_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(scope="session")
def prometheus_native_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Prometheus accepting remote write, with native histograms and exemplar storage."""
    workdir = tmp_path_factory.mktemp("prometheus-native")
    with start_prometheus(workdir, features=("native-histograms", "exemplar-storage")) as server:
        yield server


@pytest.fixture(scope="session")
def prometheus_no_receiver_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Prometheus started without ``--web.enable-remote-write-receiver``."""
    workdir = tmp_path_factory.mktemp("prometheus-noreceiver")
    with start_prometheus(workdir, remote_write_receiver=False) as server:
        yield server


@pytest.fixture(scope="session")
def victoriametrics_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A single-node VictoriaMetrics, shared by the session."""
    with start_victoriametrics(tmp_path_factory.mktemp("victoriametrics")) as server:
        yield server


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start fresh servers on demand for one test; all are stopped when it ends."""
    started: list[Server] = []
    counter = itertools.count()

    def start(kind: str, **kwargs: Any) -> Server:
        workdir = tmp_path / f"{kind}-{next(counter)}"
        if kind == "prometheus":
            server = start_prometheus(workdir, **kwargs)
        elif kind == "victoriametrics":
            server = start_victoriametrics(workdir, **kwargs)
        else:
            raise ValueError(f"unknown server kind {kind!r}")
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def fault_receiver() -> Iterator[Receiver]:
    """A running receiver answering 204 to anything until a test scripts otherwise."""
    with Receiver(default=Reply()) as receiver:
        yield receiver


@pytest.fixture
def unique_job(request: pytest.FixtureRequest) -> str:
    """A ``job`` label value no other test uses, so tests can share a session server."""
    name = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:60]
    return f"t{os.getpid()}_{next(_job_counter)}_{name}"


@pytest.fixture
def now_ms() -> int:
    """The current wall-clock time in whole milliseconds."""
    return int(time.time() * 1000)


@pytest.fixture
def registry() -> CollectorRegistry:
    """An empty registry of the test's own (``auto_describe`` like the default one)."""
    return CollectorRegistry(auto_describe=True)
