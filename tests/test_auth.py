"""The endpoint's auth against real local receivers: basic, bearer (files re-read), SigV4; secrets masked."""

from __future__ import annotations

import base64
import datetime
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from prometheus_rw_bridge import (
    ConfigurationError,
    MissingDependencyError,
    NonRetryableReceiverError,
    TransportError,
    enable_remote_write,
)
from prometheus_rw_bridge._config.settings import EndpointSettings, resolve_settings
from prometheus_rw_bridge._http.auth import BasicAuth, BearerTokenAuth, FileBasicAuth, SigV4Auth, auth_of
from prometheus_rw_bridge._http.client import endpoint_transport
from prometheus_rw_bridge._http.transport import SendResult
from prometheus_rw_bridge.testing import Receiver, Reply, refused_url

SECRET = "s3cr3t-v4lue-never-shown"
BODY = b"\x00payload"


def post(endpoint: EndpointSettings) -> SendResult:
    """Send one body to ``endpoint`` as the bridge does: its transport, on its client."""
    with endpoint_transport(endpoint) as transport:
        return transport.send(BODY)


def endpoint_for(url: str, **options: Any) -> EndpointSettings:
    settings = resolve_settings(url=url, **options, environ={})
    assert len(settings.endpoints) == 1
    return settings.endpoints[0]


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


# --------------------------------------------------------------------------- SigV4


FIXED_NOW = datetime.datetime(2024, 5, 17, 12, 30, 45)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> botocore.credentials.Credentials:
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SECRET + "-session")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FIXED_NOW)
    return botocore.credentials.Credentials("AKIDEXAMPLE", SECRET, SECRET + "-session")


def verify_sigv4(request: Any, url: str, credentials: Any, region: str) -> None:
    """Recompute the signature of a received request with botocore and compare."""
    authorization = request.header("Authorization")
    algorithm, _, fields = authorization.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    parts = dict(part.strip().split("=", 1) for part in fields.split(","))
    signed_names = parts["SignedHeaders"].split(";")
    assert {"host", "x-amz-date", "content-type", "x-scope-orgid", "x-amz-security-token"} <= set(
        signed_names
    )
    headers = {name: request.header(name) for name in signed_names if name != "host"}
    replay = AWSRequest(method=request.method, url=url, data=request.body, headers=headers)
    replay.context["timestamp"] = request.header("X-Amz-Date")
    signer = botocore.auth.SigV4Auth(credentials, "aps", region)
    canonical = signer.canonical_request(replay)
    expected = signer.signature(signer.string_to_sign(replay, canonical), replay)
    assert parts["Signature"] == expected
    assert parts["Credential"] == f"AKIDEXAMPLE/20240517/{region}/aps/aws4_request"


def test_sigv4_signature_verifies(aws_env: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, sigv4=True, sigv4_region="eu-west-1", tenant="t1")
        with endpoint_transport(endpoint) as transport:
            transport.send(BODY)
            transport.send(BODY, attempt=1)  # a retry is signed afresh, Retry-Attempt included
        first, second = receiver.wait_for_requests(2)
    for request in (first, second):
        assert request.header("X-Amz-Date") == "20240517T123045Z"
        assert request.header("X-Amz-Security-Token") == SECRET + "-session"
        verify_sigv4(request, endpoint.url, aws_env, "eu-west-1")
    assert "retry-attempt" in second.header("Authorization")  # type: ignore[operator]
    for record in caplog.records:
        assert SECRET not in record.getMessage()


def test_sigv4_tampered_body_does_not_verify(aws_env: Any) -> None:
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, sigv4=True, sigv4_region="us-east-1")
        post(endpoint)
        (request,) = receiver.wait_for_requests(1)
    tampered = type(request)(**{**request.__dict__, "body": BODY + b"!"})
    with pytest.raises(AssertionError):
        verify_sigv4(tampered, endpoint.url, aws_env, "us-east-1")


def test_sigv4_region_from_environment(aws_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    auth = auth_of(endpoint_for("http://127.0.0.1:1/w", sigv4=True))
    assert isinstance(auth, SigV4Auth)
    assert auth.region == "ap-south-1"
    assert SECRET not in repr(auth)


def test_sigv4_without_region_or_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigurationError, match="sigv4_region"):
        auth_of(endpoint_for("http://127.0.0.1:1/w", sigv4=True))
    monkeypatch.setattr(
        "botocore.session.Session.get_credentials", lambda self: None
    )  # no instance-role lookup on a CI box
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        auth_of(endpoint_for("http://127.0.0.1:1/w", sigv4=True, sigv4_region="eu-west-1"))


def test_sigv4_without_botocore_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "botocore" or m.startswith("botocore.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(MissingDependencyError, match=r"prometheus-rw-bridge\[aws\]"):
        auth_of(endpoint_for("http://127.0.0.1:1/w", sigv4=True, sigv4_region="eu-west-1"))


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
