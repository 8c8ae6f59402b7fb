"""The endpoint's HTTP client against real local receivers: TLS, mTLS, auth, headers, proxy, SigV4."""

from __future__ import annotations

import base64
import datetime
import logging
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.credentials
import httpx
import pytest
import trustme
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
from prometheus_rw_bridge._http.auth import BearerTokenAuth, FileBasicAuth, SigV4Auth, make_client
from prometheus_rw_bridge._http.http11 import Http11Transport
from prometheus_rw_bridge._http.transport import HttpxTransport
from prometheus_rw_bridge.testing import Receiver, Reply, refused_url

SECRET = "s3cr3t-v4lue-never-shown"
BODY = b"\x00payload"


def post(endpoint: EndpointSettings) -> httpx.Response:
    with make_client(endpoint) as client:
        return client.post(endpoint.url, content=BODY)


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


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Server and client certificates from one CA, written to files; plus an unrelated CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other_ca_file = directory / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca_file))
    client = ca.issue_cert("client.example.org")
    cert_file, key_file = directory / "client.pem", directory / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert_file))
    client.private_key_pem.write_to_path(str(key_file))
    return {
        "server_cert": ca.issue_cert("127.0.0.1", "localhost"),
        "ca_file": str(ca_file),
        "other_ca_file": str(other_ca_file),
        "cert_file": str(cert_file),
        "key_file": str(key_file),
    }


def tls_receiver(pki: dict[str, Any], ca: trustme.CA, *, require_client_cert: bool = False) -> Receiver:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    pki["server_cert"].configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return Receiver(ssl_context=context, default=Reply())


def test_tls_with_ca_file(pki: dict[str, Any], ca: trustme.CA, no_secret_in_logs: None) -> None:
    with tls_receiver(pki, ca) as receiver:
        response = post(endpoint_for(receiver.url, ca_file=pki["ca_file"]))
        assert response.status_code == 204
        (request,) = receiver.wait_for_requests(1)
        assert request.body == BODY


def test_wrong_ca_names_the_ca_file(pki: dict[str, Any], ca: trustme.CA) -> None:
    with tls_receiver(pki, ca) as receiver:
        endpoint = endpoint_for(receiver.url, ca_file=pki["other_ca_file"])
        with pytest.raises(httpx.ConnectError, match=r"other-ca\.pem") as info:
            post(endpoint)
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        # through the transport, as the bridge sends
        transport = HttpxTransport(endpoint.url, client=make_client(endpoint), owns_client=True)
        with transport, pytest.raises(TransportError) as sent:
            transport.send(b"")
        assert pki["other_ca_file"] in str(sent.value)
        assert "certificate" in str(sent.value)
        assert receiver.requests == []


def test_default_trust_store_rejects_a_private_ca_and_says_how_to_fix_it(
    pki: dict[str, Any], ca: trustme.CA
) -> None:
    with tls_receiver(pki, ca) as receiver, pytest.raises(httpx.ConnectError, match="ca_file"):
        post(endpoint_for(receiver.url))


def test_mutual_tls(pki: dict[str, Any], ca: trustme.CA) -> None:
    with tls_receiver(pki, ca, require_client_cert=True) as receiver:
        with_cert = endpoint_for(
            receiver.url, ca_file=pki["ca_file"], cert_file=pki["cert_file"], key_file=pki["key_file"]
        )
        assert post(with_cert).status_code == 204
        without_cert = endpoint_for(receiver.url, ca_file=pki["ca_file"])
        with pytest.raises(httpx.HTTPError):
            post(without_cert)
        assert len(receiver.requests) == 1


def test_insecure_skip_verify_means_no_verification(
    pki: dict[str, Any], ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="prometheus_rw_bridge._http.auth")
    with tls_receiver(pki, ca) as receiver:
        assert post(endpoint_for(receiver.url, insecure_skip_verify=True)).status_code == 204
        # insecure with a wrong CA still connects: the CA is not consulted
        assert post(
            endpoint_for(receiver.url, insecure_skip_verify=True, ca_file=pki["other_ca_file"])
        ).is_success
    assert any("insecure_skip_verify" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        pytest.param("ca_file", "ca_file", id="ca-not-pem"),
        pytest.param("cert_file", "cert_file", id="cert-not-pem"),
    ],
)
def test_unloadable_tls_files_are_named(option: str, fragment: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    endpoint = endpoint_for("https://127.0.0.1:1/write", **{option: str(junk)})
    with pytest.raises(ConfigurationError, match=f"{fragment} '{junk}'"):
        make_client(endpoint)


def test_mismatched_key_names_both_files(pki: dict[str, Any], tmp_path: Path) -> None:
    other_key = tmp_path / "other.key"
    trustme.CA().issue_cert("x.example").private_key_pem.write_to_path(str(other_key))
    endpoint = endpoint_for("https://127.0.0.1:1/write", cert_file=pki["cert_file"], key_file=str(other_key))
    with pytest.raises(ConfigurationError, match=r"cert_file .* and key_file .*other\.key"):
        make_client(endpoint)


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
        with make_client(endpoint) as client:
            client.post(endpoint.url, content=BODY)
            password_file.write_text("second-and-longer\n")
            client.post(endpoint.url, content=BODY)
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
        with make_client(endpoint) as client:
            client.post(endpoint.url, content=BODY)
            client.post(endpoint.url, content=BODY)  # unchanged: the cached token
            # rotate the way Kubernetes does: a new file renamed over the old one
            new = tmp_path / "token.new"
            new.write_text("token-two\n")
            new.replace(token_file)
            client.post(endpoint.url, content=BODY)
            # the file disappears: keep the last good token and warn, naming the file only
            token_file.unlink()
            client.post(endpoint.url, content=BODY)
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
        transport = HttpxTransport(endpoint.url, client=make_client(endpoint), owns_client=True)
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
    ):
        assert SECRET not in repr(auth)
    with make_client(
        endpoint_for("http://127.0.0.1:1/w", bearer_token=SECRET, headers={"X-Api-Key": SECRET})
    ) as client:
        assert SECRET not in repr(client.auth)


# --------------------------------------------------------------------------- headers, proxy, timeout


def test_tenant_and_custom_headers_arrive() -> None:
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, tenant="team-a", headers="X-Extra=one\\,two, X-Other=3")
        post(endpoint)
        (request,) = receiver.wait_for_requests(1)
    assert request.header("X-Scope-OrgID") == "team-a"
    assert request.header("X-Extra") == "one,two"
    assert request.header("X-Other") == "3"


def test_headers_pass_through_the_transport_with_protocol_headers() -> None:
    with Receiver(default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, tenant="team-b", bearer_token=SECRET)
        with HttpxTransport(endpoint.url, client=make_client(endpoint), owns_client=True) as transport:
            transport.send(b"")
        (request,) = receiver.wait_for_requests(1)
    assert request.header("X-Scope-OrgID") == "team-b"
    assert request.header("Authorization") == f"Bearer {SECRET}"
    assert request.header("X-Prometheus-Remote-Write-Version") == "0.1.0"


def test_proxy_is_used() -> None:
    # A plain HTTP proxy receives the request in absolute form; the receiver plays the proxy.
    with Receiver(default=Reply()) as proxy:
        endpoint = endpoint_for("http://receiver.invalid:9090/api/v1/write", proxy=proxy.base_url)
        assert post(endpoint).status_code == 204
        (request,) = proxy.wait_for_requests(1)
    assert request.path == "http://receiver.invalid:9090/api/v1/write"


def test_timeout_applies_to_every_phase() -> None:
    with make_client(endpoint_for("http://127.0.0.1:1/w", timeout="2.5s")) as client:
        assert client.timeout == httpx.Timeout(2.5)
        assert client.follow_redirects is False


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
        with HttpxTransport(endpoint.url, client=make_client(endpoint), owns_client=True) as transport:
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
    with make_client(endpoint_for("http://127.0.0.1:1/w", sigv4=True)) as client:
        assert isinstance(client.auth, SigV4Auth)
        assert client.auth.region == "ap-south-1"
        assert SECRET not in repr(client.auth)


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
        make_client(endpoint_for("http://127.0.0.1:1/w", sigv4=True))
    monkeypatch.setattr(
        "botocore.session.Session.get_credentials", lambda self: None
    )  # no instance-role lookup on a CI box
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        make_client(endpoint_for("http://127.0.0.1:1/w", sigv4=True, sigv4_region="eu-west-1"))


def test_sigv4_without_botocore_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "botocore" or m.startswith("botocore.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(MissingDependencyError, match=r"prometheus-rw-bridge\[aws\]"):
        make_client(endpoint_for("http://127.0.0.1:1/w", sigv4=True, sigv4_region="eu-west-1"))


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
    with Receiver([Reply(401, echo), Reply(401, echo)], default=Reply()) as receiver:
        endpoint = endpoint_for(receiver.url, **options)
        with make_client(endpoint) as client:
            response = client.post(endpoint.url, content=BODY)
            assert response.status_code == 401
            assert SECRET not in response.text and "denied: ***" in response.text
            if "password" in options or "password_file" in options:
                assert basic not in response.text
        transport = HttpxTransport(endpoint.url, client=make_client(endpoint), owns_client=True)
        with transport, pytest.raises(NonRetryableReceiverError) as info:
            transport.send(b"")
    assert SECRET not in str(info.value) and "denied: ***" in str(info.value)


def test_a_success_body_is_left_alone() -> None:
    with Receiver([Reply(200, f"ok {SECRET}")], default=Reply()) as receiver:
        response = post(endpoint_for(receiver.url, bearer_token=SECRET))
    assert response.text == f"ok {SECRET}"


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


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_an_environment_proxy_is_used(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours these only on a client without a transport of its own, so the lean
    # transport must step aside for them.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with Receiver(default=Reply()) as proxy:
        monkeypatch.setenv(variable, proxy.base_url)
        assert post(endpoint_for("http://receiver.invalid:9090/api/v1/write")).status_code == 204
        with HttpxTransport("http://receiver.invalid:9090/api/v1/write") as transport:
            transport.send(b"")
        requests = proxy.wait_for_requests(2)
    assert [r.path for r in requests] == ["http://receiver.invalid:9090/api/v1/write"] * 2


def test_without_a_proxy_the_lean_transport_carries_the_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with make_client(endpoint_for("http://127.0.0.1:1/w")) as client:
        assert isinstance(client._transport, Http11Transport)
    with make_client(endpoint_for("http://127.0.0.1:1/w", proxy="http://127.0.0.1:2")) as client:
        assert not isinstance(client._transport_for_url(httpx.URL("http://127.0.0.1:1/w")), Http11Transport)
