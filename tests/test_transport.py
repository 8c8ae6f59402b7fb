"""One POST per send: headers, auth, status mapping, error translation and secrets.

Status mapping and headers run against ``httpx.MockTransport`` (no sockets); connection
failures, restarts, hangs and TLS against the in-process ``Receiver``.
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from client_cert import CLIENT_CERT_MODES, ClientCertServer

from prometheus_rw_bridge import (
    REMOTE_WRITE_HEADERS,
    REMOTE_WRITE_V2_HEADERS,
    ConfigurationError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    TransportError,
    generate_write_request,
)
from prometheus_rw_bridge._http.auth import BearerTokenAuth
from prometheus_rw_bridge._http.retry_after import retry_after_from_headers
from prometheus_rw_bridge._http.transport import MAX_MESSAGE_LENGTH, HttpxTransport, SendResult
from prometheus_rw_bridge.testing import Receiver, Reply, refused_url

URL = "http://receiver.test/api/v1/write"
PASSWORD = "hunter2-s3cret"
TOKEN = "tok-0123456789abcdef"


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def answering(status: int, text: str = "", headers: dict[str, str] | None = None) -> httpx.Client:
    return mock(lambda request: httpx.Response(status, text=text, headers=headers))


@pytest.fixture
def body() -> bytes:
    return generate_write_request(timestamp_ms=1_700_000_000_000)


# -- status mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202, 204])
def test_2xx_is_success(status: int) -> None:
    result = HttpxTransport(URL, client=answering(status, "ignored body")).send(b"x")
    assert result == SendResult(status_code=status)
    assert not result.confirms_v2


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(500, id="500"),
        pytest.param(502, id="502"),
        pytest.param(503, id="503"),
        pytest.param(504, id="504"),
        pytest.param(429, id="429-too-many-requests"),
    ],
)
def test_5xx_and_429_are_retryable(status: int) -> None:
    transport = HttpxTransport(URL, client=answering(status, "overloaded, try later\n"))
    with pytest.raises(RetryableReceiverError) as info:
        transport.send(b"x")
    assert info.value.status_code == status
    assert info.value.message == "overloaded, try later"
    assert info.value.url == URL
    assert str(info.value) == f"{URL} answered {status}: overloaded, try later"
    assert info.value.retry_after is None


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(400, id="400-invalid-samples"),
        pytest.param(401, id="401"),
        pytest.param(403, id="403"),
        pytest.param(404, id="404"),
        pytest.param(408, id="408-not-429"),
        pytest.param(413, id="413-too-large"),
        pytest.param(415, id="415-unsupported-media"),
        pytest.param(301, id="301-redirect-not-followed"),
        pytest.param(307, id="307-redirect-not-followed"),
    ],
)
def test_other_statuses_are_not_retryable(status: int) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, text="out of order sample", headers={"Location": "/elsewhere"})

    with pytest.raises(NonRetryableReceiverError) as info:
        HttpxTransport(URL, client=mock(handler)).send(b"x")
    assert info.value.status_code == status
    assert info.value.message == "out of order sample"
    assert len(calls) == 1  # redirects are never followed


def test_redirect_without_body_says_where_it_pointed() -> None:
    client = answering(308, headers={"Location": "https://u:pw@other.test/write"})
    with pytest.raises(NonRetryableReceiverError, match=r"redirect to https://other.test/write not followed"):
        HttpxTransport(URL, client=client).send(b"x")


def test_receiver_message_is_verbatim_but_truncated() -> None:
    text = "line one: bad label «é»\n" + "x" * 5000
    with pytest.raises(NonRetryableReceiverError) as info:
        HttpxTransport(URL, client=answering(400, text)).send(b"x")
    assert len(info.value.message) == MAX_MESSAGE_LENGTH
    assert info.value.message.startswith("line one: bad label «é»\nxxx")
    assert info.value.message.endswith("...")


def test_undecodable_error_body_does_not_crash() -> None:
    client = mock(lambda request: httpx.Response(400, content=b"\xff\xfe bad \x00"))
    with pytest.raises(NonRetryableReceiverError, match="bad"):
        HttpxTransport(URL, client=client).send(b"x")


# -- 2.0 written headers ----------------------------------------------------------------------


def test_written_headers_are_parsed() -> None:
    headers = {
        "X-Prometheus-Remote-Write-Samples-Written": "12",
        "X-Prometheus-Remote-Write-Histograms-Written": "3",
        "X-Prometheus-Remote-Write-Exemplars-Written": "0",
    }
    result = HttpxTransport(URL, client=answering(204, headers=headers)).send(b"x", protocol="2.0")
    assert result == SendResult(204, samples_written=12, histograms_written=3, exemplars_written=0)
    assert result.confirms_v2


@pytest.mark.parametrize(
    ("headers", "confirms"),
    [
        pytest.param({"X-Prometheus-Remote-Write-Exemplars-Written": "0"}, True, id="one-header-is-enough"),
        pytest.param({}, False, id="none-means-a-1.0-receiver"),
        pytest.param({"X-Prometheus-Remote-Write-Samples-Written": "many"}, False, id="malformed-is-absent"),
    ],
)
def test_confirms_v2(headers: dict[str, str], confirms: bool) -> None:
    result = HttpxTransport(URL, client=answering(200, headers=headers)).send(b"x", protocol="2.0")
    assert result.confirms_v2 is confirms


# -- Retry-After ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param("2", 2.0, id="seconds"),
        pytest.param("Tue, 14 Nov 2023 22:14:20 GMT", 30.0, id="http-date-against-response-date"),
        pytest.param("Tue, 14 Nov 2023 22:13:00 GMT", 0.0, id="http-date-in-the-past"),
        pytest.param("whenever", None, id="garbage"),
    ],
)
def test_retry_after_is_parsed_onto_the_error(retry_after: str, expected: float | None) -> None:
    headers = {"Retry-After": retry_after, "Date": "Tue, 14 Nov 2023 22:13:50 GMT"}
    with pytest.raises(RetryableReceiverError) as info:
        HttpxTransport(URL, client=answering(429, "rate limited", headers)).send(b"x")
    assert info.value.retry_after == (None if expected is None else pytest.approx(expected))


def test_response_date_without_zone_is_utc() -> None:
    headers = {"Retry-After": "Tue, 14 Nov 2023 22:14:20 GMT", "Date": "Tue, 14 Nov 2023 22:13:50 -0000"}
    with pytest.raises(RetryableReceiverError) as info:
        HttpxTransport(URL, client=answering(503, "", headers)).send(b"x")
    assert info.value.retry_after == pytest.approx(30.0)


def test_retry_after_date_without_response_date_uses_the_local_clock() -> None:
    now = 1_700_000_000.0
    headers = {"Retry-After": email.utils.formatdate(now + 60, usegmt=True)}
    assert retry_after_from_headers(headers, clock=lambda: now) == 60.0


# -- request headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        pytest.param("1.0", REMOTE_WRITE_HEADERS, id="1.0"),
        pytest.param("2.0", REMOTE_WRITE_V2_HEADERS, id="2.0"),
    ],
)
def test_protocol_headers_are_exact(
    fault_receiver: Receiver, body: bytes, protocol: str, expected: dict[str, str]
) -> None:
    with HttpxTransport(fault_receiver.url) as transport:
        transport.send(body, protocol=protocol)
    [request] = fault_receiver.wait_for_requests(1)
    assert request.method == "POST"
    assert request.path == "/api/v1/write"
    for name, value in expected.items():
        assert request.header(name) == value
    assert request.header("Content-Length") == str(len(body))
    assert request.header("Retry-Attempt") is None
    assert request.body == body


def test_spec_header_values() -> None:
    # The specs fix these literally; _headers must not drift from them.
    assert REMOTE_WRITE_HEADERS["Content-Encoding"] == "snappy"
    assert REMOTE_WRITE_HEADERS["Content-Type"] == "application/x-protobuf"
    assert REMOTE_WRITE_HEADERS["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert (
        REMOTE_WRITE_V2_HEADERS["Content-Type"]
        == "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    )
    assert REMOTE_WRITE_V2_HEADERS["X-Prometheus-Remote-Write-Version"] == "2.0.0"
    assert REMOTE_WRITE_HEADERS["User-Agent"].startswith("prometheus-rw-bridge/")


def test_retries_carry_retry_attempt() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Retry-Attempt"))
        return httpx.Response(204)

    transport = HttpxTransport(URL, client=mock(handler))
    for attempt in range(3):
        transport.send(b"x", attempt=attempt)
    assert seen == [None, "1", "2"]


def test_user_headers_are_sent_under_the_protocol_headers() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(204)

    HttpxTransport(URL, client=mock(handler), headers={"X-Scope-OrgID": "tenant-a"}).send(b"x")
    assert seen[0]["X-Scope-OrgID"] == "tenant-a"
    assert seen[0]["Content-Type"] == "application/x-protobuf"


@pytest.mark.parametrize(
    "name",
    [
        "Content-Type",
        "content-encoding",
        "User-Agent",
        "X-Prometheus-Remote-Write-Version",
        "Host",
        "Retry-Attempt",
    ],
)
def test_reserved_headers_are_refused_by_name(name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        HttpxTransport(URL, headers={name: "x"})


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Bad Name": "x"}, id="space-in-name"),
        pytest.param({"X-Ok": "a\r\nInjected: 1"}, id="header-injection"),
    ],
)
def test_malformed_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="headers"):
        HttpxTransport(URL, headers=headers)


# -- URL validation and display ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"ftp://admin:{PASSWORD}@host/write", id="scheme"),
        pytest.param(f"http://admin:{PASSWORD}@/write", id="no-host"),
        pytest.param(f"http://admin:{PASSWORD}@host:99999/write", id="port-out-of-range"),
        pytest.param(f"http://admin:{PASSWORD}@host:port/write", id="port-not-a-number"),
        pytest.param("localhost:9090/api/v1/write", id="no-scheme"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_urls_are_configuration_errors_naming_url_without_secrets(url: str) -> None:
    with pytest.raises(ConfigurationError, match="url") as info:
        HttpxTransport(url)
    assert PASSWORD not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_string_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="url"):
        HttpxTransport(b"http://host/write")  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "30"])
def test_bad_timeout_is_refused(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        HttpxTransport(URL, timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("https://user:pw@host:8443/write?x=1", "https://host:8443/write?x=***", id="userinfo"),
        pytest.param("http://h/write?api_key=abc&team=a", "http://h/write?api_key=***&team=***", id="query"),
        pytest.param("http://[::1]:9090/api/v1/write", "http://[::1]:9090/api/v1/write", id="ipv6"),
    ],
)
def test_displayed_url(url: str, shown: str) -> None:
    assert HttpxTransport(url).url == shown


def test_owns_client_can_be_handed_over() -> None:
    client = answering(204)
    HttpxTransport(URL, client=client, owns_client=True).close()
    assert client.is_closed


def test_remote_name_defaults_to_a_short_stable_hash() -> None:
    a = HttpxTransport("http://user:one@host/write")
    b = HttpxTransport("http://user:two@host/write")
    assert a.remote_name == b.remote_name  # rotating a password does not rename the remote
    assert len(a.remote_name) == 6
    assert a.remote_name != HttpxTransport("http://other/write").remote_name
    assert HttpxTransport(URL, remote_name="primary").remote_name == "primary"


# -- auth and secrets -----------------------------------------------------------------------


def test_url_credentials_become_basic_auth_and_disappear() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    transport = HttpxTransport(
        f"http://ad%40min:{PASSWORD}%2F@receiver.test/api/v1/write", client=mock(handler)
    )
    transport.send(b"x")
    assert seen[0].headers["Authorization"] == httpx.BasicAuth("ad@min", PASSWORD + "/")._auth_header
    assert seen[0].url == httpx.URL(URL)
    assert transport.url == URL
    assert PASSWORD not in repr(transport)


def test_auth_argument_is_used() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    HttpxTransport(URL, client=mock(handler), auth=("user", PASSWORD)).send(b"x")
    assert seen[0].headers["Authorization"].startswith("Basic ")


def test_credentials_in_both_url_and_auth_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="url") as info:
        HttpxTransport(f"http://u:{PASSWORD}@host/write", auth=("u", PASSWORD))
    assert PASSWORD not in str(info.value)


def echo_everything(request: httpx.Request) -> httpx.Response:
    """A careless receiver that echoes the request, credentials included, in its errors."""
    echoed = f"{request.url} {dict(request.headers)}"
    return httpx.Response(400, text=f"rejected {echoed}")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda client: HttpxTransport(f"http://admin:{PASSWORD}@receiver.test/w", client=client),
            id="url-password",
        ),
        pytest.param(
            lambda client: HttpxTransport(URL, client=client, auth=("admin", PASSWORD)), id="auth-tuple"
        ),
        pytest.param(
            lambda client: HttpxTransport(URL, client=client, headers={"Authorization": f"Bearer {TOKEN}"}),
            id="authorization-header",
        ),
    ],
)
def test_secrets_never_appear_in_errors_or_reprs(make: Callable[[httpx.Client], HttpxTransport]) -> None:
    transport = make(mock(echo_everything))
    with pytest.raises(NonRetryableReceiverError) as info:
        transport.send(b"x")
    shown = [
        str(info.value),
        repr(info.value),
        info.value.message,
        info.value.url,
        repr(transport),
        transport.url,
    ]
    for text in shown:
        assert PASSWORD not in text
        assert TOKEN not in text
    assert "rejected" in info.value.message


def test_secrets_never_appear_in_transport_errors() -> None:
    transport = HttpxTransport(refused_url().replace("http://", f"http://admin:{PASSWORD}@"), timeout=5)
    with pytest.raises(TransportError) as info:
        transport.send(b"x")
    assert PASSWORD not in str(info.value)
    assert "admin" not in str(info.value)


# -- client ownership -----------------------------------------------------------------------


def test_owned_client_is_closed_and_injected_client_is_not() -> None:
    owned = HttpxTransport(URL)
    owned.close()
    assert owned._client.is_closed
    owned.close()  # idempotent

    client = answering(204)
    HttpxTransport(URL, client=client).close()
    assert not client.is_closed
    client.close()


def test_owned_client_does_not_follow_redirects() -> None:
    with HttpxTransport(URL) as transport:
        assert transport._client.follow_redirects is False
        assert transport._client.timeout == httpx.Timeout(30.0)


# -- against a real socket --------------------------------------------------------------------


def test_strict_receiver_accepts_what_we_send(body: bytes) -> None:
    with Receiver(strict=True) as receiver, HttpxTransport(receiver.url) as transport:
        assert transport.send(body).status_code == 204
        [request] = receiver.wait_for_requests(1)
    assert request.decoded is not None
    assert request.decoded.series


def test_strict_receiver_rejects_a_body_that_is_not_snappy() -> None:
    with (
        Receiver(strict=True) as receiver,
        HttpxTransport(receiver.url) as transport,
        pytest.raises(NonRetryableReceiverError) as info,
    ):
        transport.send(b"definitely not snappy")
    assert info.value.status_code == 400
    assert "snappy" in info.value.message


def test_hanging_receiver_times_out_per_attempt(fault_receiver: Receiver) -> None:
    fault_receiver.script(Reply(hang=True))
    with (
        HttpxTransport(fault_receiver.url, timeout=0.3) as transport,
        pytest.raises(TransportError, match=r"no response within 0\.3s") as info,
    ):
        transport.send(b"x")
    # The transport gave up by itself: the receiver had not answered (nor closed) yet.
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    [request] = fault_receiver.wait_for_requests(1)
    assert request.status is None
    fault_receiver.release()


def test_receiver_closing_without_answer_is_a_transport_error(fault_receiver: Receiver) -> None:
    fault_receiver.script(Reply(drop=True))
    with (
        HttpxTransport(fault_receiver.url, timeout=10) as transport,
        pytest.raises(TransportError, match="closed the connection"),
    ):
        transport.send(b"x")


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(tls_ca: trustme.CA) -> Iterator[Receiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(context)
    with Receiver(ssl_context=context) as receiver:
        yield receiver


def test_tls_verification_failure_is_named(tls_receiver: Receiver) -> None:
    with (
        HttpxTransport(tls_receiver.url, timeout=5) as transport,
        pytest.raises(TransportError, match="TLS certificate verification failed") as info,
    ):
        transport.send(b"x")
    assert "self-signed" in str(info.value) or "unable to get local issuer" in str(info.value)


def test_tls_with_the_right_ca_succeeds(tls_receiver: Receiver, tls_ca: trustme.CA, body: bytes) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    with httpx.Client(verify=context) as client:
        assert HttpxTransport(tls_receiver.url, client=client).send(body).status_code == 204
    assert tls_receiver.wait_for_requests(1)[0].body == body


@pytest.mark.parametrize("mode", [m for m in CLIENT_CERT_MODES if m != "alert"])
def test_a_tls_connection_ended_without_a_word_suggests_a_client_certificate(
    tls_ca: trustme.CA, mode: str
) -> None:
    # What a pusher's log says about an mTLS server that closes instead of sending its alert.
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    leaf = tls_ca.issue_cert("127.0.0.1")
    with (
        ClientCertServer(mode, leaf.configure_cert, tls_ca.configure_trust) as server,
        httpx.Client(verify=context) as client,
        pytest.raises(TransportError) as info,
    ):
        HttpxTransport(server.url, client=client).send(b"x")
    message = str(info.value)
    assert "the server ended the TLS connection during or right after the handshake" in message
    assert "requires a client certificate (mutual TLS)" in message
    assert "PROMETHEUS_REMOTE_WRITE_CERT_FILE" in message


def test_a_plain_connection_reset_does_not_mention_certificates(fault_receiver: Receiver) -> None:
    fault_receiver.script(Reply(drop=True))
    with HttpxTransport(fault_receiver.url, timeout=10) as transport, pytest.raises(TransportError) as info:
        transport.send(b"x")
    assert "certificate" not in str(info.value)


# -- the fault receiver itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "confirms"),
    [
        pytest.param("2.0", True, id="2.0-receiver-confirms"),
        pytest.param("1.0", False, id="1.0-request-unconfirmed"),
    ],
)
def test_fault_receiver_sends_written_headers_for_2_0(
    fault_receiver: Receiver, protocol: str, confirms: bool
) -> None:
    body = generate_write_request(timestamp_ms=1_700_000_000_000, protocol=protocol)
    with HttpxTransport(fault_receiver.url) as transport:
        result = transport.send(body, protocol=protocol)
    assert result.confirms_v2 is confirms
    [request] = fault_receiver.wait_for_requests(1)
    assert request.protocol == protocol
    assert request.decoded is not None
    if confirms:
        assert result.samples_written == sum(len(s.samples) for s in request.decoded.series)


def test_fault_receiver_wait_fails_loudly(fault_receiver: Receiver) -> None:
    with pytest.raises(AssertionError, match="expected 1 requests"):
        fault_receiver.wait_for_requests(1, timeout=0.01)


def test_fault_receiver_records_undecodable_bodies(fault_receiver: Receiver) -> None:
    with HttpxTransport(fault_receiver.url) as transport:
        transport.send(b"garbage")
    [request] = fault_receiver.wait_for_requests(1)
    assert request.decoded is None
    assert request.decode_error is not None


def test_warm_up_sends_nothing_and_leaves_auth_failures_to_send(
    fault_receiver: Receiver, tmp_path: Path
) -> None:
    # The warm-up runs the auth flow (it reads the token file); a failure there is send()'s to report.
    auth = BearerTokenAuth(token_file=str(tmp_path / "missing-token"))
    with HttpxTransport(fault_receiver.url, auth=auth) as transport:
        transport.warm_up()
        assert fault_receiver.requests == []
        with pytest.raises(TransportError, match="cannot be read"):
            transport.send(b"")
    (tmp_path / "token").write_text("from-file\n")
    with HttpxTransport(
        fault_receiver.url, auth=BearerTokenAuth(token_file=str(tmp_path / "token"))
    ) as transport:
        transport.warm_up()
        transport.send(b"")
    (request,) = fault_receiver.wait_for_requests(1)  # the send's; the warm-ups sent nothing
    assert request.header("Authorization") == "Bearer from-file"
