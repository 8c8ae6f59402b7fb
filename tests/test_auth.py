"""The endpoint's auth against real local receivers: basic, bearer (files re-read), SigV4; secrets masked."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from endpoints import BODY, endpoint_for, post
from prometheus_client import CollectorRegistry, Counter, generate_latest

from prometheus_rw_bridge import (
    ConfigurationError,
    NonRetryableReceiverError,
    TransportError,
    enable_remote_write,
)
from prometheus_rw_bridge._config.settings import resolve_settings
from prometheus_rw_bridge._http.auth import BasicAuth, BearerTokenAuth, FileBasicAuth
from prometheus_rw_bridge._http.client import auth_of, endpoint_transport
from prometheus_rw_bridge.testing import Receiver, Reply, refused_url

SECRET = "s3cr3t-v4lue-never-shown"


@pytest.fixture
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture every record at DEBUG and fail if a secret shows up in one."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert SECRET not in record.getMessage(), record.getMessage()


# --------------------------------------------------------------------------- basic and bearer auth


def test_basic_auth(no_secret_in_logs: None) -> None:
    with Receiver(default=Reply()) as receiver:
        post(endpoint_for(receiver.url, username="alice", password=SECRET))
        (request,) = receiver.wait_for_requests(1)
    assert request.header("Authorization") == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()


def test_basic_auth_from_url_credentials() -> None:
    with Receiver(default=Reply()) as receiver:
        url = receiver.url.replace("http://", "http://bob:p%40ss@")
        endpoint = endpoint_for(url)
        assert "p@ss" not in repr(endpoint)
        post(endpoint)
        (request,) = receiver.wait_for_requests(1)
    assert request.header("Authorization") == "Basic " + base64.b64encode(b"bob:p@ss").decode()


def test_password_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("first\n")
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, username="alice", password_file=str(password_file))
        with endpoint_transport(endpoint) as transport:
            transport.send(BODY)
            password_file.write_text("second-and-longer\n")
            transport.send(BODY)
        first, second = receiver.wait_for_requests(2)
    assert base64.b64decode(first.header("Authorization")[6:]) == b"alice:first"  # type: ignore[index]
    assert base64.b64decode(second.header("Authorization")[6:]) == b"alice:second-and-longer"  # type: ignore[index]


def test_bearer_token(no_secret_in_logs: None) -> None:
    with Receiver(default=Reply()) as receiver:
        post(endpoint_for(receiver.url, bearer_token=SECRET))
        (request,) = receiver.wait_for_requests(1)
    assert request.header("Authorization") == f"Bearer {SECRET}"


def test_bearer_token_file_rotation(tmp_path: Path, no_secret_in_logs: None) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("token-one\n")
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, bearer_token_file=str(token_file))
        with endpoint_transport(endpoint) as transport:
            transport.send(BODY)
            transport.send(BODY)  # unchanged: the cached token
            # rotate the way Kubernetes does: a new file renamed over the old one
            new = tmp_path / "token.new"
            new.write_text("token-two\n")
            new.replace(token_file)
            transport.send(BODY)
            # the file disappears: keep the last good token and warn, naming the file only
            token_file.unlink()
            transport.send(BODY)
        requests = receiver.wait_for_requests(4)
    assert [r.header("Authorization") for r in requests] == [
        "Bearer token-one",
        "Bearer token-one",
        "Bearer token-two",
        "Bearer token-two",
    ]


def test_bearer_token_file_never_readable_fails_the_send_naming_the_file(
    tmp_path: Path, no_secret_in_logs: None
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(SECRET)
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, bearer_token_file=str(token_file))
        token_file.unlink()
        transport = endpoint_transport(endpoint)
        with transport, pytest.raises(TransportError, match="bearer token file") as info:
            transport.send(b"")
        assert str(token_file) in str(info.value)
        assert receiver.requests == []


def test_auth_reprs_mask_secrets(tmp_path: Path) -> None:
    token_file = tmp_path / "t"
    token_file.write_text(SECRET)
    for auth in (
        BearerTokenAuth(SECRET),
        BearerTokenAuth(token_file=str(token_file)),
        FileBasicAuth("u", str(token_file)),
        BasicAuth("u", SECRET),
        auth_of(endpoint_for("http://127.0.0.1:1/w", bearer_token=SECRET, headers={"X-Api-Key": SECRET})),
    ):
        assert SECRET not in repr(auth)
    with endpoint_transport(endpoint_for("http://127.0.0.1:1/w", headers={"X-Api-Key": SECRET})) as transport:
        assert SECRET not in repr(transport)


# --------------------------------------------------------------------------- secrets echoed back


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"username": "alice", "password": SECRET}, id="basic"),
        pytest.param({"bearer_token": SECRET}, id="bearer"),
        pytest.param({"bearer_token_file": "FILE"}, id="bearer-file"),
        pytest.param({"username": "alice", "password_file": "FILE"}, id="password-file"),
        pytest.param({"headers": {"X-Api-Key": SECRET}}, id="secret-header"),
    ],
)
def test_an_error_body_echoing_a_secret_is_masked(options: dict[str, Any], tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    options = {k: str(secret_file) if v == "FILE" else v for k, v in options.items()}
    basic = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    echo = f"denied: {SECRET} / Basic {basic}"
    with Receiver([Reply(401, echo)], default=Reply()) as receiver:
        transport = endpoint_transport(endpoint_for(receiver.url, **options))
        with transport, pytest.raises(NonRetryableReceiverError) as info:
            transport.send(b"")
    assert SECRET not in str(info.value) and "denied: ***" in str(info.value)
    if "password" in options or "password_file" in options:
        assert basic not in str(info.value)


def test_bridge_never_logs_or_reports_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=registry).inc()
    echo = Reply(403, f"token {SECRET} is not allowed")
    with Receiver([echo, echo, echo], default=Reply()) as receiver:
        bridge = enable_remote_write(
            receiver.url, registry=registry, bearer_token=SECRET, debug=True, interval=3600, self_metrics=True
        )
        try:
            bridge.flush(10)
            texts = [repr(bridge), str(bridge.stats), repr(bridge.endpoint_stats())]
            texts.append(generate_latest(registry).decode())
        finally:
            bridge.close()
        assert receiver.requests and receiver.requests[0].header("Authorization") == f"Bearer {SECRET}"
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.exc_info[1]) for record in caplog.records if record.exc_info]
    assert any("is not allowed" in text for text in texts)  # the receiver's message is shown...
    for text in texts:
        assert SECRET not in text  # ...without the secret


# --------------------------------------------------------------------------- several endpoints


def test_named_endpoints_each_get_their_own_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("backup-token\n")
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=registry).inc()
    with Receiver(default=Reply()) as primary, Receiver(default=Reply()) as backup:
        variables = {
            "ENDPOINTS": "primary, backup, dead",
            "PRIMARY_URL": primary.url,
            "PRIMARY_TENANT": "team-a",
            "BACKUP_URL": backup.url,
            "BACKUP_BEARER_TOKEN_FILE": str(token),
            "DEAD_URL": refused_url(),
            "USERNAME": "shared",
            "PASSWORD": SECRET,
            "INTERVAL": "1h",
            "SELF_METRICS": "false",
        }
        for name, value in variables.items():
            monkeypatch.setenv(f"PROMETHEUS_REMOTE_WRITE_{name}", value)
        bridge = enable_remote_write(registry=registry)
        try:
            # the refused endpoint retries on its own; the others are not held up by it
            (to_primary,) = primary.wait_for_requests(1)
            (to_backup,) = backup.wait_for_requests(1)
        finally:
            bridge.close(timeout=2)
    assert to_primary.header("X-Scope-OrgID") == "team-a"
    assert (
        to_primary.header("Authorization")
        == "Basic " + base64.b64encode(f"shared:{SECRET}".encode()).decode()
    )
    assert to_backup.header("X-Scope-OrgID") is None
    assert to_backup.header("Authorization") == "Bearer backup-token"


def test_url_credentials_never_reach_labels_or_endpoints(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=registry).inc()
    with Receiver(default=Reply()) as receiver:
        url = receiver.url.replace("http://", f"http://alice:{SECRET}@")
        bridge = enable_remote_write(url, registry=registry, interval=3600, debug=True)
        try:
            assert bridge.flush(10)
            exposed = generate_latest(registry).decode()
            assert "prometheus_remote_storage_samples_total" in exposed
            texts = [exposed, repr(bridge), repr(bridge.endpoints), str(bridge.stats)]
        finally:
            bridge.close()
        (first, *_rest) = receiver.requests
    assert first.header("Authorization") == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        assert SECRET not in text


# --------------------------------------------------------------------------- auth=: any httpx.Auth


class SignedHeader(httpx.Auth):
    """A scheme the library does not ship: a header signed with a key of the user's."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.calls = 0

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        self.calls += 1
        request.headers["X-Signature"] = f"{self.key}:{len(request.content)}"
        yield request


def test_any_httpx_auth_authenticates_the_bridges_requests(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=registry).inc()
    auth = SignedHeader(SECRET)
    with Receiver([Reply(400, "rejected", echo=True)], default=Reply()) as receiver:
        bridge = enable_remote_write(
            receiver.url, registry=registry, interval=3600, auth=auth, self_metrics=False
        )
        try:
            bridge.flush(10)
            assert bridge.flush(10)
            texts = [repr(bridge), str(bridge.stats), repr(bridge.endpoints)]
        finally:
            bridge.close()
        first, second = receiver.requests[:2]
    assert first.header("X-Signature") == f"{SECRET}:{len(first.body)}"
    assert second.header("X-Signature") is not None
    assert "rejected" in str(bridge.stats.last_error)
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        assert SECRET not in text  # what the auth sent is masked, like ours


@pytest.mark.parametrize(
    ("options", "other"),
    [
        pytest.param({"bearer_token": SECRET}, "bearer_token", id="bearer"),
        pytest.param({"username": "u", "password": SECRET}, "password", id="basic"),
        pytest.param({"sigv4": True}, "sigv4", id="sigv4"),
        pytest.param(
            {"oauth2_client_id": "c", "oauth2_token_url": "http://t/token"}, "oauth2_client_id", id="oauth2"
        ),
    ],
)
def test_auth_and_our_auth_options_are_a_configuration_error(options: dict[str, Any], other: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(url="http://r.test/w", auth=SignedHeader("k"), environ={}, **options)
    assert "auth" in str(info.value) and other in str(info.value)
    assert SECRET not in str(info.value)


def test_auth_and_url_credentials_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="credentials in the URL") as info:
        resolve_settings(url=f"http://u:{SECRET}@r.test/w", auth=SignedHeader("k"), environ={})
    assert SECRET not in str(info.value)


def test_auth_must_be_an_httpx_auth() -> None:
    with pytest.raises(ConfigurationError, match=r"auth.*expected an httpx\.Auth"):
        resolve_settings(url="http://r.test/w", auth=("user", "password"), environ={})
