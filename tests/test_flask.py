"""Flask extension: app.config precedence in process, and a real werkzeug server under load."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from apps import assert_one_clean_series, free_port, load, points, start_app
from flask import Flask
from prometheus_client import CollectorRegistry, Counter

from prometheus_rw_bridge import ConfigurationError, RemoteWriteBridge
from prometheus_rw_bridge.flask import EXTENSION_KEY, RemoteWrite
from prometheus_rw_bridge.testing import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(strict=True) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("PROMETHEUS_REMOTE_WRITE_")]:
        monkeypatch.delenv(name)


def test_init_app_reads_app_config_and_stores_the_bridge(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    Counter("hits", "Hits.", registry=registry).inc(7)
    app = Flask(__name__)
    app.config["PROMETHEUS_REMOTE_WRITE_URL"] = receiver.url
    app.config["PROMETHEUS_REMOTE_WRITE_INTERVAL"] = 3600  # typed values are fine
    app.config["PROMETHEUS_REMOTE_WRITE_EXTERNAL_LABELS"] = {"team": "web"}
    extension = RemoteWrite(registry=registry, self_metrics=False)
    bridge = extension.init_app(app)
    try:
        assert app.extensions[EXTENSION_KEY] is bridge is extension.bridge
        assert isinstance(bridge, RemoteWriteBridge) and bridge.enabled
        assert bridge.endpoints == [receiver.url]
    finally:
        extension.close(app)
    live = assert_one_clean_series(points(receiver, "hits_total"))
    assert live[-1].value == 7
    assert dict(live[-1].labels)["team"] == "web"


def test_precedence_arguments_then_app_config_then_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    Counter("hits", "Hits.", registry=registry).inc()
    monkeypatch.setenv("PROMETHEUS_REMOTE_WRITE_URL", receiver.url)
    monkeypatch.setenv("PROMETHEUS_REMOTE_WRITE_JOB", "from-env")
    monkeypatch.setenv("PROMETHEUS_REMOTE_WRITE_INSTANCE", "from-env")
    monkeypatch.setenv("PROMETHEUS_REMOTE_WRITE_TENANT", "from-env")
    app = Flask(__name__)
    app.config["PROMETHEUS_REMOTE_WRITE_JOB"] = "from-config"
    app.config["PROMETHEUS_REMOTE_WRITE_TENANT"] = "from-config"
    extension = RemoteWrite(app, registry=registry, tenant="from-argument", interval=3600, self_metrics=False)
    extension.close()
    (first, *_rest) = receiver.wait_for_requests(1)
    assert first.header("X-Scope-OrgID") == "from-argument"
    labels = dict(assert_one_clean_series(points(receiver, "hits_total"))[-1].labels)
    assert (labels["job"], labels["instance"]) == ("from-config", "from-env")


def test_malformed_app_config_names_the_key(receiver: Receiver) -> None:
    app = Flask(__name__)
    app.config["PROMETHEUS_REMOTE_WRITE_URL"] = receiver.url
    app.config["PROMETHEUS_REMOTE_WRITE_INTERVAL"] = "soon"
    with pytest.raises(ConfigurationError, match=r"PROMETHEUS_REMOTE_WRITE_INTERVAL \(interval\)='soon'"):
        RemoteWrite(app, registry=CollectorRegistry())
    assert EXTENSION_KEY not in app.extensions


def test_no_url_anywhere_is_harmless() -> None:
    app = Flask(__name__)
    extension = RemoteWrite(app, registry=CollectorRegistry())
    assert not app.extensions[EXTENSION_KEY].enabled
    extension.close()


FLASK_APP = """
import os
import signal
import sys

from flask import Flask
from prometheus_client import Counter

from prometheus_rw_bridge.flask import RemoteWrite

REQUESTS = Counter("app_requests", "Requests served.")

# Ctrl-C raises KeyboardInterrupt, as when started from a terminal: a test run started in the
# background (nohup, `cmd &` in a script, some CI runners) hands its children SIGINT ignored,
# and Python then leaves it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)

app = Flask(__name__)
app.config["PROMETHEUS_REMOTE_WRITE_URL"] = os.environ["RECEIVER_URL"]
app.config["PROMETHEUS_REMOTE_WRITE_INTERVAL"] = "200ms"
RemoteWrite(app, job="flask-test")


@app.get("/ready")
def ready():
    return "ready"


@app.get("/work")
def work():
    REQUESTS.inc()
    return "done"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True, use_reloader=False)
"""


def test_real_werkzeug_server_under_load_pushes_a_final_value_at_exit(
    receiver: Receiver, tmp_path: Path
) -> None:
    (tmp_path / "app_flask.py").write_text(textwrap.dedent(FLASK_APP))
    port = free_port()
    server = start_app(
        ["app_flask.py", str(port)], cwd=tmp_path, env={"RECEIVER_URL": receiver.url}, port=port
    )
    try:
        total = 0
        for _ in range(5):  # rounds of load while the bridge pushes every 200 ms
            total += len(load(server.base_url + "/work", 100))
    finally:
        code = server.stop(signal.SIGINT)  # Ctrl-C: the server returns, exit handlers run
    assert code == 0, server.log_text()
    assert "Traceback" not in server.log_text(), server.log_text()
    requests = points(receiver, "app_requests_total")
    live = assert_one_clean_series(requests)
    values = [p.value for p in live]
    assert values == sorted(values)
    assert values[-1] == total == 500
    assert requests[-1].stale
    assert dict(live[-1].labels)["job"] == "flask-test"
    assert all(r.status == 204 for r in receiver.requests)
