"""Fork safety: no thread of the library imports at run time, and a fork waits for a running collection.

A fork copies every lock as it is at that instant into the child, where the thread holding it
does not exist (docs/architecture.md, "Forks").  Two kinds would hurt the child:

* the import lock of a module one of our threads is importing: after a bridge is built, our
  threads import nothing; ``test_no_thread_of_ours_imports_anything`` drives every path they
  take, each in a fresh interpreter (``fork_probe.py``), and records every import they ask for;
* prometheus_client's locks, held while a collection runs: a fork waits for it to end
  (``_forks._before_fork``), which the ``test_a_fork_...`` tests check with real forks.

A sender waiting on a receiver holds only locks of its own objects, so a fork does not wait
for it (``test_a_sender_waiting_on_a_receiver_does_not_hold_up_a_fork``).
"""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from auth_servers import FakeSTS, TokenServer
from prometheus_client import CollectorRegistry, Counter, generate_latest

from prometheus_rw_bridge import enable_remote_write, is_stale_nan
from prometheus_rw_bridge._delivery import forks as _forks
from prometheus_rw_bridge.testing import HANG, ReceivedRequest, Receiver, Reply, refused_url

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

PROBE = Path(__file__).with_name("fork_probe.py")

Check = Callable[[dict[str, Any], list[ReceivedRequest], str], None]
"""Asserts that a scenario took its path, given its result, its receiver's requests and its log."""


@dataclass
class Scenario:
    """One path through the library's threads, against a receiver scripted for it."""

    name: str
    url: str | list[str]
    check: Check
    receiver: Receiver | None = None  # whose requests ``check`` gets
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)
    flush_timeout: float = 10.0
    close_timeout: float = 5.0
    broken_collector: bool = False
    push: bool = False

    def as_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "options": {"url": self.url, **self.options},
                "env": self.env,
                "flush_timeout": self.flush_timeout,
                "close_timeout": self.close_timeout,
                "broken_collector": self.broken_collector,
                "push": self.push,
            }
        )


# -- checks ----------------------------------------------------------------------------------


def delivered(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
    """Everything arrived, and the last push ended every series with a stale marker."""
    assert result["flushed"] == [True, True, True], result
    assert result["successes"] >= 4 and not result["dropped"], result
    last = requests[-1].decoded
    assert last is not None and last.series
    assert all(is_stale_nan(series.samples[-1].value) for series in last.series)


def statuses(*wanted: int) -> Check:
    def check(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
        answered = [request.status for request in requests]
        assert all(status in answered for status in wanted), answered

    return check


def dropped(*reasons: str) -> Check:
    def check(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
        assert set(reasons) <= set(result["dropped"]), result

    return check


def failed_with(text: str) -> Check:
    def check(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
        assert result["errors"] > 0 and text in (result["last_error"] or ""), result

    return check


def header(name: str, starts: str) -> Check:
    def check(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
        values = {request.header(name) for request in requests}
        assert values and all((value or "").startswith(starts) for value in values), values

    return check


def protocols(*first: str, then: tuple[str, ...] = ("1.0", "2.0")) -> Check:
    """The first requests used the protocols ``first``, in this order, and the others ``then``."""

    def check(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
        used = [request.protocol for request in requests]
        assert used[: len(first)] == list(first) and set(used[len(first) :]) <= set(then), used

    return check


def logged(text: str) -> Check:
    def check(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
        assert text in log, log[-3000:]

    return check


def arrived_at(path: str) -> Check:
    def check(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
        assert requests and all(request.path == path for request in requests), [r.path for r in requests]

    return check


def every(*checks: Check) -> Check:
    def check(result: dict[str, Any], requests: list[ReceivedRequest], log: str) -> None:
        for one in checks:
            one(result, requests, log)

    return check


# -- scenarios -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CA and its server and client certificates, an unrelated CA, and server contexts."""
    ca = trustme.CA()
    directory = tmp_path_factory.mktemp("pki")
    files = {name: str(directory / f"{name}.pem") for name in ("ca", "other_ca", "cert", "key")}
    ca.cert_pem.write_to_path(files["ca"])
    trustme.CA().cert_pem.write_to_path(files["other_ca"])
    client = ca.issue_cert("client.example.org")
    client.cert_chain_pems[0].write_to_path(files["cert"])
    client.private_key_pem.write_to_path(files["key"])
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    mutual = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(mutual)
    mutual.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(mutual)
    return {"files": files, "server": server, "mutual": mutual}


@pytest.fixture
def scenarios(pki: dict[str, Any], tmp_path: Path) -> Iterator[list[Scenario]]:
    """Every path a bridge's threads take: answers, failures, TLS, auth, protocols, debug, proxy."""
    files = pki["files"]
    token_file = tmp_path / "token"
    token_file.write_text("token-from-file\n")
    password_file = tmp_path / "password"
    password_file.write_text("password-from-file\n")
    # Credentials that expire within a minute: botocore refreshes them on every request.
    process = tmp_path / "credentials.py"
    process.write_text(
        "import datetime, json\n"
        "soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': 'AKIDREFRESHED', 'SecretAccessKey': 'refreshed',"
        " 'SessionToken': 'refreshed-token', 'Expiration': soon.isoformat()}))\n"
    )
    aws_config = tmp_path / "aws-config"
    aws_config.write_text(f"[default]\ncredential_process = {sys.executable} {process}\n")
    started: list[Receiver] = []

    def receiver(*replies: Reply | int, **kwargs: Any) -> Receiver:
        running = Receiver(replies, **kwargs).start()
        started.append(running)
        return running

    def at(name: str, running: Receiver, check: Check, **kwargs: Any) -> Scenario:
        return Scenario(name, running.url, check, receiver=running, **kwargs)

    now = email.utils.formatdate(time.time(), usegmt=True)
    servers = ExitStack()
    tokens = servers.enter_context(TokenServer("probe-client", "probe-client-secret", lifetime=3600))
    failing_tokens = servers.enter_context(TokenServer("probe-client", "probe-client-secret", failures=[503]))
    sts = servers.enter_context(FakeSTS())
    short_sts = servers.enter_context(
        FakeSTS(lifetime=datetime.timedelta(minutes=5))
    )  # refreshed at each use

    def oauth2_with(server: TokenServer) -> dict[str, Any]:
        return {
            "oauth2_client_id": "probe-client",
            "oauth2_client_secret": "probe-client-secret",
            "oauth2_token_url": server.token_url,
            "oauth2_scopes": ["write"],
        }

    role = {
        "sigv4": True,
        "sigv4_region": "eu-west-1",
        "sigv4_role_arn": "arn:aws:iam::123456789012:role/probe",
    }
    proxy = receiver()
    first, second = receiver(), receiver()
    found = [
        at("success", receiver(), delivered),
        at(
            "retries",
            receiver(
                500,
                Reply(503, "busy", headers={"Retry-After": now}),
                Reply(429, headers={"Retry-After": "0"}),
            ),
            every(delivered, statuses(500, 503, 429)),
        ),
        at(
            "rejected",
            receiver(Reply(400, "out of order"), Reply(401, "who are you")),
            dropped("http_400", "http_401"),
        ),
        at("too_large", receiver(Reply(413, "too big")), every(delivered, statuses(413))),
        at("dropped_connection", receiver(Reply(drop=True)), failed_with("closed the connection")),
        at(
            "read_timeout",
            receiver(Reply(delay=2.0)),
            failed_with("no response within"),
            options={"timeout": "0.3s"},
        ),
        Scenario(
            "refused", refused_url(), failed_with("connection refused"), flush_timeout=0.5, close_timeout=0.5
        ),
        at("tls", receiver(ssl_context=pki["server"]), delivered, options={"ca_file": files["ca"]}),
        at(
            "tls_wrong_ca",
            receiver(ssl_context=pki["server"]),
            failed_with("certificate verification failed"),
            options={"ca_file": files["other_ca"]},
            flush_timeout=0.5,
            close_timeout=0.5,
        ),
        at(
            "tls_default_trust_store",
            receiver(ssl_context=pki["server"]),
            failed_with("default trust store"),
            flush_timeout=0.5,
            close_timeout=0.5,
        ),
        at(
            "mutual_tls",
            receiver(ssl_context=pki["mutual"]),
            delivered,
            options={"ca_file": files["ca"], "cert_file": files["cert"], "key_file": files["key"]},
        ),
        at(
            "tls_insecure",
            receiver(ssl_context=pki["server"]),
            delivered,
            options={"insecure_skip_verify": True},
        ),
        at(
            "bearer",
            receiver(Reply(401, "bad token")),
            every(header("Authorization", "Bearer probe-token"), dropped("http_401")),
            options={"bearer_token": "probe-token"},
        ),
        at(
            "bearer_file",
            receiver(),
            header("Authorization", "Bearer token-from-file"),
            options={"bearer_token_file": str(token_file)},
        ),
        at(
            "basic",
            receiver(),
            header("Authorization", "Basic "),
            options={"username": "probe", "password": "probe-password"},
        ),
        at(
            "basic_file",
            receiver(),
            header("Authorization", "Basic "),
            options={"username": "probe", "password_file": str(password_file)},
        ),
        Scenario(
            "url_credentials",
            (running := receiver()).url.replace("http://", "http://probe:probe-password@"),
            header("Authorization", "Basic "),
            receiver=running,
        ),
        at(
            "sigv4",
            receiver(),
            header("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDPROBE/"),
            options={"sigv4": True, "sigv4_region": "eu-west-1"},
        ),
        at(
            "sigv4_refreshed_credentials",
            receiver(),
            header("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDREFRESHED/"),
            options={"sigv4": True, "sigv4_region": "eu-west-1"},
            env={
                "AWS_CONFIG_FILE": str(aws_config),
                "AWS_ACCESS_KEY_ID": None,
                "AWS_SECRET_ACCESS_KEY": None,
            },
        ),
        at("oauth2", receiver(), header("Authorization", "Bearer token-"), options=oauth2_with(tokens)),
        at(
            "oauth2_after_a_401",
            receiver(Reply(401, "token revoked")),
            every(delivered, statuses(401), header("Authorization", "Bearer token-")),
            options=oauth2_with(tokens),
        ),
        at(
            "oauth2_token_endpoint_retried",
            receiver(),
            every(delivered, header("Authorization", "Bearer token-")),
            options=oauth2_with(failing_tokens),
        ),
        at(
            "sigv4_assumed_role",
            receiver(),
            header("Authorization", "AWS4-HMAC-SHA256 Credential=ASIAROLE"),
            options=role,
            env={"AWS_ENDPOINT_URL_STS": sts.base_url},
        ),
        at(
            "sigv4_assumed_role_refreshed",
            receiver(),
            header("Authorization", "AWS4-HMAC-SHA256 Credential=ASIAROLE"),
            options={**role, "sigv4_service": "aps"},
            env={"AWS_ENDPOINT_URL_STS": short_sts.base_url},
        ),
        at(
            "auto_415",
            receiver(Reply(415, "1.0 only")),
            protocols("2.0", "1.0"),
            options={"protocol": "auto"},
        ),
        at(
            "auto_unconfirmed",
            receiver(written_headers=False),
            protocols("2.0", "1.0"),
            options={"protocol": "auto"},
        ),
        at("v2", receiver(), protocols("2.0", then=("2.0",)), options={"protocol": "2.0"}),
        at("debug", receiver(), every(delivered, logged("Remote-write push #")), options={"debug": True}),
        Scenario(
            "proxy",
            "http://receiver.invalid:9090/api/v1/write",
            arrived_at("http://receiver.invalid:9090/api/v1/write"),
            receiver=proxy,
            options={"proxy": proxy.base_url},
        ),
        at(
            "broken_collector",
            receiver(),
            every(delivered, logged("collect() raised")),
            broken_collector=True,
        ),
        at(
            "tenant_and_headers",
            receiver(),
            every(header("X-Scope-OrgID", "team-a"), header("X-Extra", "1")),
            options={"tenant": "team-a", "headers": {"X-Extra": "1"}},
        ),
        Scenario(
            "push_to_two_endpoints", [first.url, second.url], lambda *_: None, receiver=second, push=True
        ),
    ]
    yield found
    for running in started:
        running.stop()
    servers.close()


def probe(scenario: Scenario, env: dict[str, str]) -> dict[str, Any]:
    """Run ``scenario`` in a fresh interpreter; return its report, its receiver's requests and its log."""
    completed = subprocess.run(
        [sys.executable, str(PROBE)],
        input=scenario.as_json(),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=PROBE.parent,
    )
    assert completed.returncode == 0, f"{scenario.name}:\n{completed.stderr[-5000:]}"
    report: dict[str, Any] = json.loads(completed.stdout)
    report["log"] = completed.stderr
    return report


def test_no_thread_of_ours_imports_anything(scenarios: list[Scenario]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="AKIDPROBE",
        AWS_SECRET_ACCESS_KEY="probe-secret-key",  # not a real-looking secret
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    with ThreadPoolExecutor(4) as pool:  # a fresh interpreter each: a module one imports hides nothing
        reports = list(pool.map(lambda scenario: probe(scenario, env), scenarios))
    imported = [
        f"{scenario.name}: {record['thread']} imported {record['module']} from {record['stack'][:3]}"
        for scenario, report in zip(scenarios, reports, strict=True)
        for record in report["imports"]
    ]
    assert imported == [], "\n".join(imported)
    for scenario, report in zip(scenarios, reports, strict=True):
        requests = scenario.receiver.requests if scenario.receiver is not None else []
        scenario.check(report["result"], requests, report["log"])
    push = scenarios[-1]
    assert push.push and push.receiver is not None and push.receiver.requests


# -- a fork and a running collection -------------------------------------------------------


class BlockingCollector:
    """A collector whose ``collect()`` waits for ``release``; ``finished`` says it returned."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def collect(self) -> list[Any]:
        self.inside.set()
        self.release.wait(30)
        self.finished.set()
        return []


# Hooks run before a fork in the reverse order of registration, so this one runs before the
# bridge's: it can release a collection the bridge's hook would then have to wait for.
_on_fork: list[Callable[[], None]] = []
os.register_at_fork(before=lambda: [hook() for hook in _on_fork])


def fork_child(child: Callable[[], bool]) -> int:
    """Fork; the child runs ``child`` and exits 0 if it returned True; return the child's exit status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if child() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_fork_waits_for_a_running_collection(fault_receiver: Receiver) -> None:
    registry = CollectorRegistry()
    counter = Counter("jobs", "Jobs.", registry=registry)
    collector = BlockingCollector()
    registry.register(collector)
    bridge = enable_remote_write(fault_receiver.url, registry=registry, interval=3600, self_metrics=False)
    try:
        assert collector.inside.wait(10)  # the first collection runs, and waits
        _on_fork.append(collector.release.set)  # released just as the fork begins
        try:

            def child() -> bool:
                # The fork waited for the collection: it ended, and nothing of it is held here.
                counter.inc()
                return collector.finished.is_set() and b"jobs_total 1.0" in generate_latest(registry)

            assert fork_child(child) == 0
        finally:
            _on_fork.clear()
        assert bridge.flush(timeout=10)  # collections go on in the parent
    finally:
        collector.release.set()
        bridge.close(timeout=5)


def test_a_fork_waits_for_a_collection_only_so_long(
    fault_receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_forks, "FORK_WAIT", 0.2)
    registry = CollectorRegistry()
    collector = BlockingCollector()
    registry.register(collector)
    bridge = enable_remote_write(fault_receiver.url, registry=registry, interval=3600, self_metrics=False)
    try:
        assert collector.inside.wait(10)
        assert fork_child(lambda: True) == 0  # the collection never ends before it: the fork went ahead
        assert "still run after 0.2s" in caplog.text
        assert not collector.finished.is_set()
    finally:
        collector.release.set()
        bridge.close(timeout=5)


def test_a_fork_from_inside_a_collection_does_not_wait_for_it(
    fault_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    statuses: list[int] = []

    class ForkingCollector:
        def collect(self) -> list[Any]:
            if not statuses:
                statuses.append(fork_child(lambda: True))
            return []

    registry = CollectorRegistry()
    registry.register(ForkingCollector())
    bridge = enable_remote_write(fault_receiver.url, registry=registry, interval=3600, self_metrics=False)
    try:
        assert bridge.flush(timeout=10)
    finally:
        bridge.close(timeout=5)
    assert statuses == [0]
    assert "still run" not in caplog.text  # it did not wait FORK_WAIT seconds for itself


def test_a_sender_waiting_on_a_receiver_does_not_hold_up_a_fork(
    fault_receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_forks, "FORK_WAIT", 3600.0)  # waiting on the sender would hang this test
    caplog.set_level(logging.INFO)
    fault_receiver.script(HANG)
    registry = CollectorRegistry()
    counter = Counter("jobs", "Jobs.", registry=registry)
    bridge = enable_remote_write(fault_receiver.url, registry=registry, interval=3600, self_metrics=False)
    try:
        fault_receiver.wait_for_requests(1)  # the push is in flight, and will stay so

        def child() -> bool:
            # What a worker does first: name a host (werkzeug's IDNA), count, log.
            counter.inc()
            logging.getLogger("child").info("forked")
            return "bücher.example".encode("idna") == b"xn--bcher-kva.example" and b"jobs_total 1.0" in (
                generate_latest(registry)
            )

        assert fork_child(child) == 0
        assert not fault_receiver.requests[0].status  # still unanswered: the fork did not wait for it
    finally:
        fault_receiver.release()
        bridge.close(timeout=5)
