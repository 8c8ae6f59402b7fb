"""The client factory and injected clients: TLS, mTLS, proxy, timeouts, and ``http_client=``.

Our own client (``make_client``) against real local TLS receivers; a user's client
(``http_client=``) through ``enable_remote_write``, ``push_to_remote_write`` and the transport,
with ``httpx.MockTransport`` and with real sockets: the bridge adds its headers and auth on top,
masks what the client sends, and never closes it.
"""

from __future__ import annotations

import base64
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from endpoints import BODY, endpoint_for, post
from prometheus_client import CollectorRegistry, Counter

from prometheus_rw_bridge import (
    ConfigurationError,
    NonRetryableReceiverError,
    TransportError,
    enable_remote_write,
    push_to_remote_write,
)
from prometheus_rw_bridge._config.settings import EndpointSettings, resolve_settings
from prometheus_rw_bridge._delivery.setup import make_transport
from prometheus_rw_bridge._exceptions import causes
from prometheus_rw_bridge._http.client import endpoint_transport, make_client
from prometheus_rw_bridge._http.transport import HttpxTransport
from prometheus_rw_bridge.testing import Receiver, Reply

SECRET = "s3cr3t-v4lue-never-shown"


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=registry).inc()
    return registry


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


def test_tls_with_ca_file(pki: dict[str, Any], ca: trustme.CA) -> None:
    with tls_receiver(pki, ca) as receiver:
        assert post(endpoint_for(receiver.url, ca_file=pki["ca_file"])).status_code == 204
        (request,) = receiver.wait_for_requests(1)
        assert request.body == BODY


def test_wrong_ca_names_the_ca_file(pki: dict[str, Any], ca: trustme.CA) -> None:
    with tls_receiver(pki, ca) as receiver:
        with pytest.raises(TransportError) as sent:
            post(endpoint_for(receiver.url, ca_file=pki["other_ca_file"]))
        assert receiver.requests == []
    message = str(sent.value)
    assert "certificate verification failed" in message
    assert f"checked against CA file {pki['other_ca_file']}" in message
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in causes(sent.value))


def test_default_trust_store_rejects_a_private_ca_and_says_how_to_fix_it(
    pki: dict[str, Any], ca: trustme.CA
) -> None:
    with (
        tls_receiver(pki, ca) as receiver,
        pytest.raises(TransportError, match="default trust store") as info,
    ):
        post(endpoint_for(receiver.url))
    assert "PROMETHEUS_REMOTE_WRITE_CA_FILE" in str(info.value)


def test_mutual_tls(pki: dict[str, Any], ca: trustme.CA) -> None:
    with tls_receiver(pki, ca, require_client_cert=True) as receiver:
        with_cert = endpoint_for(
            receiver.url, ca_file=pki["ca_file"], cert_file=pki["cert_file"], key_file=pki["key_file"]
        )
        assert post(with_cert).status_code == 204
        with pytest.raises(TransportError):
            post(endpoint_for(receiver.url, ca_file=pki["ca_file"]))
        assert len(receiver.requests) == 1


def test_insecure_skip_verify_means_no_verification(
    pki: dict[str, Any], ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="prometheus_rw_bridge._http.client")
    with tls_receiver(pki, ca) as receiver:
        assert post(endpoint_for(receiver.url, insecure_skip_verify=True)).status_code == 204
        # insecure with a wrong CA still connects: the CA is not consulted
        assert post(endpoint_for(receiver.url, insecure_skip_verify=True, ca_file=pki["other_ca_file"]))
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


# --------------------------------------------------------------------------- headers, proxy, timeout


def test_tenant_and_custom_headers_arrive_with_the_protocol_headers() -> None:
    with Receiver(default=Reply()) as receiver:
        post(endpoint_for(receiver.url, tenant="team-a", headers="X-Extra=one\\,two, X-Other=3"))
        (request,) = receiver.wait_for_requests(1)
    assert request.header("X-Scope-OrgID") == "team-a"
    assert request.header("X-Extra") == "one,two"
    assert request.header("X-Other") == "3"
    assert request.header("X-Prometheus-Remote-Write-Version") == "0.1.0"


def test_our_client_carries_no_auth_or_headers_of_its_own() -> None:
    # They are the transport's, added per request, so that a given client gets the same.
    with make_client(endpoint_for("http://127.0.0.1:1/w", bearer_token=SECRET, tenant="t")) as client:
        assert client.auth is None
        assert "X-Scope-OrgID" not in client.headers


def test_proxy_is_used() -> None:
    # A plain HTTP proxy receives the request in absolute form; the receiver plays the proxy.
    with Receiver(default=Reply()) as proxy:
        endpoint = endpoint_for("http://receiver.invalid:9090/api/v1/write", proxy=proxy.base_url)
        assert post(endpoint).status_code == 204
        (request,) = proxy.wait_for_requests(1)
    assert request.path == "http://receiver.invalid:9090/api/v1/write"


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_an_environment_proxy_is_used(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_timeout_applies_to_every_phase() -> None:
    with make_client(endpoint_for("http://127.0.0.1:1/w", timeout="2.5s")) as client:
        assert client.timeout == httpx.Timeout(2.5)
        assert client.follow_redirects is False


# --------------------------------------------------------------------------- http_client=


class Recorder:
    """An ``httpx.MockTransport`` handler that records every request and answers from a script."""

    def __init__(self, *statuses: int) -> None:
        self.requests: list[httpx.Request] = []
        self._statuses = list(statuses)
        self._cond = threading.Condition()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
            status = self._statuses.pop(0) if self._statuses else 204
        return httpx.Response(status, text=f"you sent {dict(request.headers)}" if status >= 400 else "")

    def wait_for(self, n: int, timeout: float = 10.0) -> list[httpx.Request]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.requests) >= n, timeout), self.requests
            return list(self.requests)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self), **kwargs)


def test_enable_remote_write_sends_through_the_given_client_with_our_headers_on_top() -> None:
    recorder = Recorder()
    client = recorder.client(headers={"X-From-Client": "kept"})
    bridge = enable_remote_write(
        "http://receiver.test/api/v1/write",
        registry=registry(),
        interval=3600,
        http_client=client,
        tenant="team-a",
        bearer_token=SECRET,
        self_metrics=False,
    )
    try:
        assert bridge.flush(timeout=10)
    finally:
        bridge.close(timeout=5)
    request = recorder.wait_for(1)[0]
    assert request.url == "http://receiver.test/api/v1/write"
    assert request.headers["Content-Encoding"] == "snappy"
    assert request.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert request.headers["User-Agent"].startswith("prometheus-rw-bridge/")
    assert request.headers["X-Scope-OrgID"] == "team-a"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["X-From-Client"] == "kept"  # the client's own defaults stay
    assert not client.is_closed  # never closed by the bridge
    client.close()


def test_push_to_remote_write_sends_through_the_given_client_and_leaves_it_open() -> None:
    recorder = Recorder()
    client = recorder.client()
    push_to_remote_write(
        ["http://one.test/api/v1/write", "http://two.test/api/v1/write"],
        registry=registry(),
        http_client=client,
        username="alice",
        password=SECRET,
    )
    requests = recorder.wait_for(2)
    assert {r.url.host for r in requests} == {"one.test", "two.test"}
    basic = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert all(r.headers["Authorization"] == basic for r in requests)
    assert not client.is_closed
    client.close()


def test_each_endpoint_may_have_a_client_of_its_own() -> None:
    first, second = Recorder(), Recorder()
    push_to_remote_write(
        endpoints=[
            {"url": "http://one.test/api/v1/write", "http_client": first.client()},
            EndpointSettings(url="http://two.test/api/v1/write", http_client=second.client()),
        ],
        registry=registry(),
    )
    assert [r.url.host for r in first.wait_for(1)] == ["one.test"]
    assert [r.url.host for r in second.wait_for(1)] == ["two.test"]


def test_the_clients_own_auth_is_used_unless_an_auth_option_is_given() -> None:
    recorder = Recorder()
    client = recorder.client(auth=("client-user", "client-password"))
    with endpoint_transport(endpoint_for("http://r.test/w", http_client=client)) as transport:
        transport.send(BODY)
    with endpoint_transport(
        endpoint_for("http://r.test/w", http_client=client, bearer_token="ours")
    ) as transport:
        transport.send(BODY)
    first, second = recorder.wait_for(2)
    assert first.headers["Authorization"].startswith("Basic ")
    assert second.headers["Authorization"] == "Bearer ours"


@pytest.mark.parametrize(
    "client_options",
    [
        pytest.param({"headers": {"X-Api-Key": SECRET}}, id="client-default-header"),
        pytest.param({"auth": ("client-user", SECRET)}, id="client-auth"),
    ],
)
def test_what_a_given_client_sends_is_masked_like_ours(
    client_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder(401)
    client = recorder.client(**client_options)
    with (
        endpoint_transport(endpoint_for("http://r.test/w", http_client=client)) as transport,
        pytest.raises(NonRetryableReceiverError) as info,
    ):
        transport.send(BODY)
    sent = recorder.wait_for(1)[0]
    carried = sent.headers.get("X-Api-Key") or sent.headers["Authorization"]  # the secret, as sent
    assert "you sent" in str(info.value)  # the receiver quoted the headers back...
    for value in (SECRET, carried):
        assert value not in str(info.value)  # ...without the secret
        assert value not in caplog.text


class _Auth(httpx.Auth):
    """A scheme the library does not ship: a signed header of the user's."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["X-Signature"] = SECRET
        yield request


def test_a_given_clients_custom_auth_is_masked_too() -> None:
    recorder = Recorder(400)
    client = recorder.client(auth=_Auth())
    with (
        endpoint_transport(endpoint_for("http://r.test/w", http_client=client)) as transport,
        pytest.raises(NonRetryableReceiverError) as info,
    ):
        transport.send(BODY)
    assert recorder.wait_for(1)[0].headers["X-Signature"] == SECRET
    assert SECRET not in str(info.value) and "x-signature" in str(info.value).lower()


def test_a_given_client_with_its_own_trust_store_is_named_in_a_verification_failure(
    pki: dict[str, Any], ca: trustme.CA
) -> None:
    context = ssl.create_default_context(cafile=pki["other_ca_file"])
    with tls_receiver(pki, ca) as receiver, httpx.Client(verify=context) as client:
        with pytest.raises(TransportError) as info:
            post(endpoint_for(receiver.url, http_client=client))
        assert receiver.requests == []
    assert "certificate verification failed" in str(info.value)
    assert "the trust settings of the given http_client" in str(info.value)


@pytest.mark.parametrize("option", ["ca_file", "cert_file", "insecure_skip_verify", "proxy"])
def test_a_given_client_and_our_client_options_are_a_configuration_error(option: str, tmp_path: Path) -> None:
    value: Any = True if option == "insecure_skip_verify" else "http://127.0.0.1:3128"
    if option.endswith("_file"):
        value = str(tmp_path / "some.pem")
        Path(value).write_text("x")
    with httpx.Client() as client, pytest.raises(ConfigurationError) as info:
        resolve_settings(url="http://r.test/w", http_client=client, environ={}, **{option: value})
    assert "http_client" in str(info.value) and option in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: httpx.AsyncClient(), id="async-client"),
        pytest.param(lambda: "http://proxy:3128", id="a-string"),
    ],
)
def test_a_given_client_must_be_an_httpx_client(make: Callable[[], Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"http_client.*expected an httpx\.Client"):
        make_transport(endpoint_for("http://r.test/w", http_client=make()))


def test_the_transport_refuses_what_is_not_an_httpx_client() -> None:
    with pytest.raises(ConfigurationError, match=r"http_client must be an httpx\.Client"):
        HttpxTransport("http://r.test/w", client=httpx.AsyncClient())  # type: ignore[arg-type]


def test_a_closed_given_client_is_a_transport_error() -> None:
    client = Recorder().client()
    transport = endpoint_transport(endpoint_for("http://r.test/w", http_client=client))
    client.close()
    with pytest.raises(TransportError, match="http_client has been closed"):
        transport.send(BODY)


def test_a_given_client_over_real_sockets_gets_our_per_request_timeout() -> None:
    # The client says 60 s; the endpoint's timeout wins per request, so a hang ends with ours.
    with Receiver([Reply(hang=True)], default=Reply()) as receiver, httpx.Client(timeout=60) as client:
        endpoint = endpoint_for(receiver.url, http_client=client, timeout="0.2s")
        with endpoint_transport(endpoint) as transport, pytest.raises(TransportError, match=r"within 0\.2s"):
            transport.send(BODY)
        receiver.release()
