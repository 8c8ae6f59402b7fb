"""Diagnoses of receivers' answers and of transport failures (pure functions)."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from prometheus_rw_bridge import TransportError
from prometheus_rw_bridge._config.settings import EndpointSettings
from prometheus_rw_bridge._tools.diagnose import diagnose_answer
from prometheus_rw_bridge._tools.no_answer import diagnose_transport_error

URL = "http://receiver:9090/api/v1/write"


def used(**options: str) -> EndpointSettings:
    """The settings of an endpoint using ``options`` (credentials, tenant, TLS files)."""
    return EndpointSettings(url=URL, **options)  # type: ignore[arg-type]


DISCONNECTED = "Server disconnected without sending a response."  # httpx's (and ours) words


@pytest.mark.parametrize(
    ("status", "message", "used", "expected"),
    [
        pytest.param(
            404,
            "remote write receiver needs to be enabled with --web.enable-remote-write-receiver",
            None,
            ["receiver is off", "--web.enable-remote-write-receiver"],
            id="prometheus-receiver-off",
        ),
        pytest.param(
            404, "404 page not found", None, ["path is probably wrong", "/api/v1/push"], id="404-path"
        ),
        pytest.param(
            400,
            'remoteAddr: "127.0.0.1:1"; requestURI: /api/v1/wrte; unsupported path requested: "/api/v1/wrte"',
            None,
            ["takes remote write (400): the path is probably wrong", "VictoriaMetrics'", "/api/v1/write"],
            id="victoriametrics-wrong-path",
        ),
        pytest.param(415, "", None, ["refused the format", "generate_latest()"], id="415"),
        pytest.param(
            400, "unsupported Content-Type text/plain", None, ["generate_latest()"], id="text-plain"
        ),
        pytest.param(400, "snappy: corrupt input", None, ["block format", "framed"], id="framed-snappy"),
        pytest.param(401, "", None, ["no credentials were sent", "--tenant"], id="401-none"),
        pytest.param(
            401,
            "bad password",
            used(username="alice", password_file="/run/pw", tenant="t1"),
            ["basic auth as user 'alice' with the password in /run/pw", "tenant 't1'"],
            id="401-basic",
        ),
        pytest.param(403, "", used(bearer_token="a-token"), ["refused to let them write"], id="403"),
        pytest.param(400, "out of bounds", None, ["clock"], id="out-of-bounds"),
        pytest.param(400, "out of order sample", None, ["another sender"], id="out-of-order"),
        pytest.param(301, "", None, ["does not follow redirects"], id="redirect"),
        pytest.param(413, "", None, ["max_samples_per_send"], id="413"),
        pytest.param(429, "slow down", None, ["rate-limiting"], id="429"),
        pytest.param(502, "bad gateway", None, ["failed internally"], id="5xx"),
    ],
)
def test_answers(status: int, message: str, used: EndpointSettings | None, expected: list[str]) -> None:
    diagnosis = diagnose_answer(status, message, url=URL, used=used)

    assert not diagnosis.ok
    text = diagnosis.render()
    assert text.startswith("FAILED: ")
    for phrase in expected:
        assert phrase in text
    if message:
        assert message in text


def test_415_for_protocol_2_suggests_1_0() -> None:
    diagnosis = diagnose_answer(415, "", url=URL, protocol="2.0")

    assert "--protocol 1.0" in diagnosis.render()


def chain(outer: BaseException, *causes: BaseException) -> BaseException:
    current = outer
    for cause in causes:
        current.__cause__ = cause
        current = cause
    return outer


def verify_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, message)
    error.verify_message = message
    return error


@pytest.mark.parametrize(
    ("error", "url", "used", "expected"),
    [
        pytest.param(
            chain(TransportError("connection refused"), ConnectionRefusedError(111, "refused")),
            "http://host:9090/api/v1/write",
            None,
            "nothing is listening at host:9090",
            id="refused",
        ),
        pytest.param(
            chain(TransportError("x"), socket.gaierror(-2, "Name or service not known")),
            "http://nohost/api/v1/write",
            None,
            "cannot resolve the host name 'nohost'",
            id="dns",
        ),
        pytest.param(
            chain(TransportError("x"), verify_error("self-signed certificate")),
            "https://host/api/v1/write",
            None,
            "pass --ca-file",
            id="untrusted",
        ),
        pytest.param(
            chain(TransportError("x"), verify_error("unable to get local issuer certificate")),
            "https://host/api/v1/write",
            used(ca_file="/etc/ca.pem"),
            "not signed by a CA in --ca-file /etc/ca.pem",
            id="wrong-ca",
        ),
        pytest.param(
            chain(TransportError("x"), verify_error("certificate has expired")),
            "https://host/api/v1/write",
            None,
            "has expired",
            id="expired",
        ),
        pytest.param(
            chain(
                TransportError("x"),
                ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] certificate required"),
            ),
            "https://host/api/v1/write",
            None,
            "pass --cert-file and --key-file",
            id="mtls-missing",
        ),
        pytest.param(
            chain(TransportError("x"), ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] bad certificate")),
            "https://host/api/v1/write",
            used(cert_file="/etc/client.pem"),
            "refused the client certificate --cert-file /etc/client.pem",
            id="mtls-refused",
        ),
        pytest.param(
            chain(TransportError("x"), httpx.ConnectError("EOF"), ssl.SSLEOFError(8, "EOF occurred")),
            "https://host/api/v1/write",
            None,
            "no client certificate was sent, and the server may require one (mutual TLS): "
            "pass --cert-file and --key-file",
            id="mtls-eof-in-handshake",
        ),
        pytest.param(
            chain(TransportError("x"), httpx.WriteError("reset"), ConnectionResetError(104, "reset")),
            "https://host/api/v1/write",
            None,
            "ended the connection during or right after the handshake",
            id="mtls-reset-after-handshake",
        ),
        pytest.param(
            chain(TransportError("x"), httpx.RemoteProtocolError(DISCONNECTED)),
            "https://host/api/v1/write",
            used(cert_file="/etc/client.pem"),
            "the server may have refused the client certificate --cert-file /etc/client.pem",
            id="mtls-closed-with-certificate",
        ),
        pytest.param(
            chain(TransportError("x"), httpx.RemoteProtocolError(DISCONNECTED)),
            "http://host/api/v1/write",
            None,
            "if it speaks https at this port, use https://",
            id="http-closed",
        ),
        pytest.param(
            TransportError("cannot send: no response within 10s"),
            "http://host/api/v1/write",
            None,
            "did not answer in time",
            id="timeout",
        ),
    ],
)
def test_transport_errors(
    error: BaseException, url: str, used: EndpointSettings | None, expected: str
) -> None:
    diagnosis = diagnose_transport_error(error, url=url, used=used)

    assert not diagnosis.ok
    assert expected in diagnosis.render()


def test_a_plain_http_reset_says_nothing_of_certificates() -> None:
    error = chain(TransportError("x"), ConnectionResetError(104, "Connection reset by peer"))

    text = diagnose_transport_error(error, url="http://host/api/v1/write").render()

    assert "certificate" not in text
    assert "no answer from host:80" in text


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param(
            {"oauth2_client_id": "writer", "oauth2_token_url": "https://login.example/token?key=k3y"},
            "an OAuth2 token of client 'writer' from https://login.example/token?key=***",
            id="oauth2",
        ),
        pytest.param(
            {"sigv4": True, "sigv4_region": "eu-west-1", "sigv4_role_arn": "arn:aws:iam::1:role/w"},
            "a SigV4 signature for service aps as role arn:aws:iam::1:role/w",
            id="sigv4-role",
        ),
    ],
)
def test_a_401_names_the_auth_that_was_used(options: dict[str, object], named: str) -> None:
    diagnosis = diagnose_answer(401, "", url=URL, used=EndpointSettings(url=URL, **options))  # type: ignore[arg-type]
    assert f"sent {named}" in diagnosis.render()
