"""SigV4 against real local servers: signatures botocore verifies, an assumed role through a fake STS.

The STS endpoint is a real HTTP server on loopback (``auth_servers.FakeSTS``), found by
botocore through its own endpoint configuration (``AWS_ENDPOINT_URL_STS``): no network.
"""

from __future__ import annotations

import datetime
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.credentials
import pytest
from auth_servers import DROP, Failure, FakeSTS, sts_failure
from botocore.awsrequest import AWSRequest
from endpoints import BODY, endpoint_for, post
from prometheus_client import CollectorRegistry, Counter

from prometheus_rw_bridge import (
    ConfigurationError,
    MissingDependencyError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    TransportError,
    enable_remote_write,
)
from prometheus_rw_bridge._config.settings import resolve_settings
from prometheus_rw_bridge._delivery.retry import Outcome, send_with_retries
from prometheus_rw_bridge._http.client import auth_of, endpoint_transport
from prometheus_rw_bridge._http.sigv4 import SigV4Auth
from prometheus_rw_bridge._http.transport import HttpxTransport
from prometheus_rw_bridge.testing import Receiver, Reply, refused_url

SECRET = "s3cr3t-v4lue-never-shown"
ROLE = "arn:aws:iam::123456789012:role/metrics-writer"


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


def verify_sigv4(request: Any, url: str, credentials: Any, region: str, service: str = "aps") -> None:
    """Recompute the signature of a received request with botocore and compare."""
    authorization = request.header("Authorization")
    algorithm, _, fields = authorization.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    parts = dict(part.strip().split("=", 1) for part in fields.split(","))
    signed_names = parts["SignedHeaders"].split(";")
    required = {"host", "x-amz-date", "content-type", "x-amz-security-token"}
    if request.header("X-Scope-OrgID") is not None:
        required.add("x-scope-orgid")
    assert required <= set(signed_names)
    headers = {name: request.header(name) for name in signed_names if name != "host"}
    replay = AWSRequest(method=request.method, url=url, data=request.body, headers=headers)
    replay.context["timestamp"] = request.header("X-Amz-Date")
    signer = botocore.auth.SigV4Auth(credentials, service, region)
    canonical = signer.canonical_request(replay)
    expected = signer.signature(signer.string_to_sign(replay, canonical), replay)
    assert parts["Signature"] == expected
    assert parts["Credential"] == f"{credentials.access_key}/20240517/{region}/{service}/aws4_request"


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


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_sigv4_region_from_either_aws_variable_alone(
    aws_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    """botocore reads AWS_DEFAULT_REGION only; AWS_REGION (set by Lambda and the AWS SDKs) counts too."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv(variable, "eu-north-1")
    auth = auth_of(endpoint_for("http://127.0.0.1:1/w", sigv4=True))
    assert isinstance(auth, SigV4Auth)
    assert auth.region == "eu-north-1"


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


# --------------------------------------------------------------------------- sigv4_service


def test_sigv4_service_is_the_signing_name(aws_env: Any) -> None:
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(
            receiver.url, sigv4=True, sigv4_region="eu-west-1", sigv4_service="execute-api"
        )
        post(endpoint)
        (request,) = receiver.wait_for_requests(1)
    verify_sigv4(request, endpoint.url, aws_env, "eu-west-1", service="execute-api")
    auth = auth_of(endpoint_for("http://r.test/w", sigv4=True, sigv4_region="eu-west-1"))
    assert isinstance(auth, SigV4Auth) and auth.service == "aps"


# --------------------------------------------------------------------------- sigv4_role_arn


@pytest.fixture
def sts(aws_env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSTS]:
    with FakeSTS() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", server.base_url)
        yield server


def role_credentials(sts: FakeSTS, number: int) -> botocore.credentials.Credentials:
    return botocore.credentials.Credentials(*sts.issued[number - 1])


def test_requests_are_signed_as_the_assumed_role(sts: FakeSTS, aws_env: Any) -> None:
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(
            receiver.url, sigv4=True, sigv4_region="eu-west-1", sigv4_role_arn=ROLE, tenant="t"
        )
        with endpoint_transport(endpoint) as transport:
            transport.warm_up()
            assert sts.requests == []  # the role is assumed on first use, in the sender's thread
            transport.send(BODY)
            transport.send(BODY)
        first, second = receiver.wait_for_requests(2)
    [assume] = sts.requests  # cached: the role's credentials last an hour
    assert assume.form["Action"] == "AssumeRole" and assume.form["RoleArn"] == ROLE
    assert assume.form["RoleSessionName"] == "prometheus-rw-bridge"
    # STS was asked with the credential chain's identity; the receiver gets the role's.
    assert "Credential=AKIDEXAMPLE/" in (assume.header("Authorization") or "")
    for request in (first, second):
        assert request.header("X-Amz-Security-Token") == "role-session-token-1"
        verify_sigv4(request, endpoint.url, role_credentials(sts, 1), "eu-west-1")


def test_the_roles_credentials_are_refreshed_before_they_expire(
    aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials that expire within botocore's refresh window are fetched anew for each use.
    with FakeSTS(lifetime=datetime.timedelta(minutes=5)) as sts, Receiver(default=Reply()) as receiver:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.base_url)
        endpoint = endpoint_for(receiver.url, sigv4=True, sigv4_region="eu-west-1", sigv4_role_arn=ROLE)
        with endpoint_transport(endpoint) as transport:
            transport.send(BODY)
            transport.send(BODY)
        first, second = receiver.wait_for_requests(2)
        assert len(sts.requests) == 2
    verify_sigv4(first, endpoint.url, role_credentials(sts, 1), "eu-west-1")
    verify_sigv4(second, endpoint.url, role_credentials(sts, 2), "eu-west-1")


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        pytest.param(
            sts_failure(403, "AccessDenied", "not allowed to assume"), NonRetryableReceiverError, id="403"
        ),
        pytest.param(sts_failure(400, "Throttling", "Rate exceeded"), RetryableReceiverError, id="throttled"),
        pytest.param(sts_failure(503, "ServiceUnavailable", "later"), RetryableReceiverError, id="503"),
        pytest.param(Failure(DROP), TransportError, id="no-answer"),
    ],
)
def test_an_sts_failure_is_an_error_of_the_tree(
    sts: FakeSTS, failure: Failure, error: type[Exception]
) -> None:
    sts.fail(failure)
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, sigv4=True, sigv4_region="eu-west-1", sigv4_role_arn=ROLE)
        with endpoint_transport(endpoint) as transport, pytest.raises(error) as info:
            transport.send(BODY)
        assert receiver.requests == []
    assert ROLE in str(info.value)
    assert len(sts.requests) == 1  # botocore does not retry on its own: the sender's loop does


def test_a_failing_sts_is_retried_by_the_senders_loop(sts: FakeSTS) -> None:
    sts.fail(sts_failure(503, "ServiceUnavailable", "later"), Failure(DROP))
    waits: list[float] = []
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, sigv4=True, sigv4_region="eu-west-1", sigv4_role_arn=ROLE)
        with endpoint_transport(endpoint) as transport:
            delivery = send_with_retries(transport, BODY, deadline=None, wait=lambda s: bool(waits.append(s)))
        assert delivery.outcome is Outcome.SENT and len(waits) == 2
        assert receiver.requests[0].header("X-Amz-Security-Token") == "role-session-token-1"


def test_an_unreachable_sts_is_a_transport_error(aws_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", refused_url())
    auth = SigV4Auth(region="eu-west-1", role_arn=ROLE, timeout=5)
    with (
        HttpxTransport("http://127.0.0.1:1/w", auth=auth) as transport,
        pytest.raises(TransportError) as info,
    ):
        transport.send(BODY)
    assert f"cannot assume role {ROLE}" in str(info.value)


def test_no_secret_of_the_role_or_the_chain_reaches_a_log_or_repr(
    sts: FakeSTS, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, sigv4=True, sigv4_region="eu-west-1", sigv4_role_arn=ROLE)
        with endpoint_transport(endpoint) as transport:
            transport.send(BODY)
            texts = [repr(transport), repr(transport._auth), repr(endpoint)]
    assert any(r.name == "botocore.parsers" for r in caplog.records)  # botocore did log at DEBUG
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        for secret in (SECRET, "role-secret-key-1", "role-session-token-1"):
            assert secret not in text, text


def test_the_bridge_assumes_the_role_from_the_environment(
    sts: FakeSTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=registry).inc()
    with Receiver(default=Reply()) as receiver:
        for name, value in {
            "URL": receiver.url,
            "SIGV4": "true",
            "SIGV4_REGION": "eu-west-1",
            "SIGV4_ROLE_ARN": ROLE,
            "SIGV4_SERVICE": "aps",
        }.items():
            monkeypatch.setenv(f"PROMETHEUS_REMOTE_WRITE_{name}", value)
        bridge = enable_remote_write(registry=registry, interval=3600, self_metrics=False)
        try:
            assert bridge.flush(timeout=10)
        finally:
            bridge.close(timeout=5)
        assert {r.header("X-Amz-Security-Token") for r in receiver.requests} == {"role-session-token-1"}


@pytest.mark.parametrize("option", ["sigv4_role_arn", "sigv4_service"])
def test_the_role_and_the_service_need_sigv4(option: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{option} needs sigv4 turned on"):
        resolve_settings(url="http://r.test/w", environ={}, **{option: "x"})
