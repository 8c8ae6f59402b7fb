"""FastAPI lifespan: in process with Starlette's TestClient, and a real uvicorn server under load."""

from __future__ import annotations

import contextlib
import signal
import textwrap
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from apps import assert_one_clean_series, free_port, load, points, start_app
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter

from prometheus_rw_bridge.testing import Receiver

with warnings.catch_warnings():  # newer Starlette prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from prometheus_rw_bridge import RemoteWriteBridge
from prometheus_rw_bridge.fastapi import combine_lifespans, install, lifespan


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(strict=True) as running:
        yield running


def make_app(registry: CollectorRegistry, **kwargs: Any) -> tuple[FastAPI, Counter]:
    counter = Counter("hits", "Hits.", registry=registry)
    app = FastAPI(**kwargs)

    @app.get("/hit")
    def hit() -> str:
        counter.inc()
        return "ok"

    return app, counter


def test_lifespan_starts_and_closes_with_a_final_push(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    options: dict[str, Any] = {
        "url": receiver.url,
        "registry": registry,
        "interval": 3600,
        "job": "t",
        "self_metrics": False,
    }
    app, _counter = make_app(registry, lifespan=lifespan(**options))
    with TestClient(app) as client:
        bridge = app.state.remote_write_bridge
        assert isinstance(bridge, RemoteWriteBridge) and bridge.enabled
        for _ in range(3):
            assert client.get("/hit").status_code == 200
    assert not bridge.enabled
    live = assert_one_clean_series(points(receiver, "hits_total"))
    assert live[-1].value == 3  # the final push at shutdown has every hit
    assert points(receiver, "hits_total")[-1].stale  # then the series is ended


def test_combine_lifespans_runs_around_the_apps_own(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    events: list[str] = []
    shutdowns = Counter("app_shutdowns", "Shutdowns.", registry=registry)

    @contextlib.asynccontextmanager
    async def own(app: Any) -> AsyncIterator[dict[str, Any]]:
        events.append("app start")
        yield {"thing": 42}
        shutdowns.inc()  # recorded during the app's shutdown: the final push must include it
        events.append("app stop")

    combined = combine_lifespans(own, url=receiver.url, registry=registry, interval=3600, self_metrics=False)
    app, _counter = make_app(registry, lifespan=combined)

    @app.get("/state")
    def state(request: Request) -> int:
        return int(request.state.thing)

    with TestClient(app) as client:
        assert client.get("/state").json() == 42  # the app's lifespan state passes through
        assert app.state.remote_write_bridge.enabled
    assert events == ["app start", "app stop"]
    live = assert_one_clean_series(points(receiver, "app_shutdowns_total"))
    assert live[-1].value == 1


def test_install_wraps_an_existing_app(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    started: list[bool] = []
    app, _counter = make_app(registry)
    app.router.on_startup.append(lambda: started.append(True))
    install(app, url=receiver.url, registry=registry, interval=3600, self_metrics=False)
    with TestClient(app) as client:
        client.get("/hit")
        assert app.state.remote_write_bridge.enabled
    assert started == [True]  # the app's own start-up handlers still run
    assert assert_one_clean_series(points(receiver, "hits_total"))[-1].value == 1


def test_no_url_is_harmless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_REMOTE_WRITE_URL", raising=False)
    registry = CollectorRegistry()
    app, _counter = make_app(registry, lifespan=lifespan(registry=registry))
    with TestClient(app) as client:
        assert client.get("/hit").status_code == 200
        assert not app.state.remote_write_bridge.enabled


UVICORN_APP = """
import contextlib

from fastapi import FastAPI, Request
from prometheus_client import Counter

from prometheus_rw_bridge.fastapi import combine_lifespans

REQUESTS = Counter("app_requests", "Requests served.")
SHUTDOWNS = Counter("app_shutdowns", "Times the app's own shutdown ran.")


@contextlib.asynccontextmanager
async def own_lifespan(app):
    yield
    SHUTDOWNS.inc()


app = FastAPI(lifespan=combine_lifespans(own_lifespan))


@app.get("/ready")
def ready():
    return "ready"


@app.get("/work")
async def work():
    REQUESTS.inc()
    return "done"
"""


def test_real_uvicorn_under_load_pushes_a_final_value_at_shutdown(receiver: Receiver, tmp_path: Path) -> None:
    (tmp_path / "app_fastapi.py").write_text(textwrap.dedent(UVICORN_APP))
    port = free_port()
    env = {
        "PROMETHEUS_REMOTE_WRITE_URL": receiver.url,
        "PROMETHEUS_REMOTE_WRITE_INTERVAL": "200ms",
        "PROMETHEUS_REMOTE_WRITE_JOB": "uvicorn-test",
    }
    server = start_app(
        ["-m", "uvicorn", "app_fastapi:app", "--port", str(port), "--no-access-log"],
        cwd=tmp_path,
        env=env,
        port=port,
    )
    try:
        total = 0
        for _ in range(5):  # rounds of load while the bridge pushes every 200 ms
            total += len(load(server.base_url + "/work", 100))
    finally:
        code = server.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM), server.log_text()  # uvicorn >= 0.29 re-raises the signal
    assert "Application shutdown complete" in server.log_text()
    assert "Traceback" not in server.log_text(), server.log_text()
    requests = points(receiver, "app_requests_total")
    live = assert_one_clean_series(requests)
    values = [p.value for p in live]
    assert values == sorted(values)  # a counter pushed in order never goes down
    assert values[-1] == total == 500
    assert requests[-1].stale
    assert dict(live[-1].labels)["job"] == "uvicorn-test"
    assert assert_one_clean_series(points(receiver, "app_shutdowns_total"))[-1].value == 1
    assert all(r.status == 204 for r in receiver.requests)  # the strict receiver accepted every push
