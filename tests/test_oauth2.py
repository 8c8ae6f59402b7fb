"""OAuth2 client credentials against a real token endpoint on loopback that issues short-lived tokens.

Expiry runs on a fake clock; failures of the token endpoint go through the real retry loop,
whose waits are recorded instead of slept.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from auth_servers import DROP, Failure, TokenServer
from clocks import FakeClock
from prometheus_client import CollectorRegistry, Counter

from prometheus_rw_bridge import (
    ConfigurationError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    TransportError,
    enable_remote_write,
)
from prometheus_rw_bridge._config.settings import resolve_settings
from prometheus_rw_bridge._delivery.retry import Outcome, send_with_retries
from prometheus_rw_bridge._http.client import endpoint_transport
from prometheus_rw_bridge._http.oauth2 import OAuth2Auth
from prometheus_rw_bridge._http.transport import HttpxTransport
from prometheus_rw_bridge.testing import Receiver, Reply, refused_url

CLIENT_ID = "metrics-writer"
SECRET = "oauth2-client-s3cret-never-shown"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens() -> Iterator[TokenServer]:
    with TokenServer(CLIENT_ID, SECRET, lifetime=60) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(default=Reply()) as running:
        yield running


def oauth2(tokens: TokenServer, clock: FakeClock, **options: Any) -> OAuth2Auth:
    options = {"client_secret": SECRET, **options}
    return OAuth2Auth(client_id=CLIENT_ID, token_url=tokens.token_url, clock=clock, **options)


def bearers(receiver: Receiver) -> list[str | None]:
    return [request.header("Authorization") for request in receiver.requests]


def no_wait(waits: list[float]) -> Any:
    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    return wait


# --------------------------------------------------------------------------- the token


def test_the_token_is_fetched_on_first_use_and_cached(
    tokens: TokenServer, receiver: Receiver, clock: FakeClock
) -> None:
    auth = oauth2(
        tokens, clock, scopes=["metrics:write", "metrics:read"], endpoint_params={"audience": "mimir"}
    )
    with HttpxTransport(receiver.url, auth=auth) as transport:
        assert tokens.requests == []  # nothing before the first send
        for _ in range(3):
            transport.send(b"x")
    [request] = tokens.requests
    assert request.form == {
        "grant_type": "client_credentials",
        "scope": "metrics:write metrics:read",
        "audience": "mimir",
    }
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert request.header("Authorization") == f"Basic {basic}"
    assert request.header(
        "User-Agent",
    ) is not None and request.header("User-Agent").startswith("prometheus-rw-bridge/")
    assert bearers(receiver) == ["Bearer token-1"] * 3


@pytest.mark.parametrize(
    ("lifetime", "still_valid_at", "refreshed_at"),
    [
        pytest.param(60, 49.9, 50.0, id="60s-token-refreshed-10s-early"),
        pytest.param(4, 1.9, 2.0, id="4s-token-refreshed-at-half-its-life"),
    ],
)
def test_the_token_is_fetched_again_before_it_expires(
    receiver: Receiver, clock: FakeClock, lifetime: float, still_valid_at: float, refreshed_at: float
) -> None:
    start = clock.now
    with TokenServer(CLIENT_ID, SECRET, lifetime=lifetime) as tokens:
        with HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport:
            transport.send(b"x")
            clock.now = start + still_valid_at
            transport.send(b"x")
            clock.now = start + refreshed_at
            transport.send(b"x")
            transport.send(b"x")
        assert len(tokens.requests) == 2
    assert bearers(receiver) == ["Bearer token-1", "Bearer token-1", "Bearer token-2", "Bearer token-2"]


def test_a_token_without_expires_in_is_kept_until_a_401(receiver: Receiver, clock: FakeClock) -> None:
    with TokenServer(CLIENT_ID, SECRET, lifetime=None) as tokens:
        with HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport:
            transport.send(b"x")
            clock.now += 10**6
            transport.send(b"x")
        assert len(tokens.requests) == 1


def test_a_401_fetches_a_new_token_and_resends_once(
    tokens: TokenServer, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script(Reply(401, "token revoked"))
    with HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport:
        assert transport.send(b"x").status_code == 204
        transport.send(b"x")
    assert len(tokens.requests) == 2
    assert bearers(receiver) == ["Bearer token-1", "Bearer token-2", "Bearer token-2"]
    assert [r.body for r in receiver.requests[:2]] == [b"x", b"x"]


def test_a_second_401_is_the_receivers_answer(
    tokens: TokenServer, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script(Reply(401, "who are you"), Reply(401, "who are you"))
    with (
        HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport,
        pytest.raises(NonRetryableReceiverError, match="who are you") as info,
    ):
        transport.send(b"x")
    assert info.value.status_code == 401
    assert len(tokens.requests) == 2 and len(receiver.requests) == 2


def test_credentials_go_in_the_form_when_the_endpoint_refuses_basic_auth(
    receiver: Receiver, clock: FakeClock
) -> None:
    with TokenServer(CLIENT_ID, SECRET, lifetime=60, accepts="form") as tokens:
        with HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport:
            transport.send(b"x")
            clock.now += 3600
            transport.send(b"x")
        first, second, third = tokens.requests
    assert (
        first.header(
            "Authorization",
        )
        is not None
        and "client_id" not in first.form
    )
    assert second.form["client_id"] == CLIENT_ID and second.form["client_secret"] == SECRET
    assert third.header("Authorization") is None and third.form["client_id"] == CLIENT_ID  # remembered
    assert bearers(receiver) == ["Bearer token-1", "Bearer token-2"]


def test_a_form_encoded_token_answer_is_understood(receiver: Receiver, clock: FakeClock) -> None:
    with (
        TokenServer(CLIENT_ID, SECRET, lifetime=60, form_answer=True) as tokens,
        HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport,
    ):
        transport.send(b"x")
    assert bearers(receiver) == ["Bearer token-1"]


def test_the_client_secret_file_is_reread_when_it_changes(
    tokens: TokenServer, receiver: Receiver, clock: FakeClock, tmp_path: Path
) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(SECRET + "\n")
    auth = oauth2(tokens, clock, client_secret=None, client_secret_file=str(secret_file))
    with HttpxTransport(receiver.url, auth=auth) as transport:
        transport.send(b"x")
        rotated = tmp_path / "client-secret.new"
        rotated.write_text("rotated-client-secret\n")
        rotated.replace(secret_file)
        tokens.client_secret = "rotated-client-secret"
        clock.now += 3600
        transport.send(b"x")
    first, second = tokens.requests
    assert base64.b64decode(first.header("Authorization")[6:]).decode() == f"{CLIENT_ID}:{SECRET}"  # type: ignore[index]
    assert (
        base64.b64decode(second.header("Authorization")[6:]).decode() == f"{CLIENT_ID}:rotated-client-secret"
    )  # type: ignore[index]
    assert "rotated-client-secret" in auth.secrets() and SECRET not in repr(auth)


def test_warm_up_sends_nothing(tokens: TokenServer, receiver: Receiver, clock: FakeClock) -> None:
    with HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport:
        transport.warm_up()
    assert tokens.requests == [] and receiver.requests == []


# --------------------------------------------------------------------------- a failing token endpoint


def test_a_failing_token_endpoint_is_retried_like_a_receiver(
    tokens: TokenServer, receiver: Receiver, clock: FakeClock
) -> None:
    tokens.fail(Failure(503, "busy", {"Retry-After": "7"}), Failure(DROP))
    waits: list[float] = []
    with HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport:
        delivery = send_with_retries(transport, b"x", deadline=None, wait=no_wait(waits))
    assert delivery.outcome is Outcome.SENT and delivery.result is not None
    assert delivery.result.status_code == 204
    assert len(tokens.requests) == 3 and len(waits) == 2
    assert waits[0] >= 7  # the token endpoint's Retry-After, honoured as a receiver's
    assert bearers(receiver) == ["Bearer token-1"]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        pytest.param(Failure(503, "maintenance"), RetryableReceiverError, id="5xx"),
        pytest.param(Failure(429, "slow down"), RetryableReceiverError, id="429"),
        pytest.param(Failure(400, '{"error":"invalid_scope"}'), NonRetryableReceiverError, id="400"),
        pytest.param(Failure(DROP), TransportError, id="no-answer"),
        pytest.param(Failure(200, "<html>a login page</html>"), TransportError, id="no-token-in-a-2xx"),
    ],
)
def test_a_token_endpoint_failure_is_an_error_of_the_tree_naming_it(
    tokens: TokenServer, receiver: Receiver, clock: FakeClock, failure: Failure, error: type[Exception]
) -> None:
    tokens.fail(failure, failure)
    with HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport, pytest.raises(error) as info:
        transport.send(b"x")
    assert tokens.token_url in str(info.value)
    assert receiver.requests == []  # nothing went to the receiver without a token


def test_a_refused_token_request_is_never_retried(
    tokens: TokenServer, receiver: Receiver, clock: FakeClock
) -> None:
    tokens.client_secret = (
        "another-secret"  # ours is now wrong: invalid_client, with basic auth and in the form
    )
    with HttpxTransport(receiver.url, auth=oauth2(tokens, clock)) as transport:
        delivery = send_with_retries(transport, b"x", deadline=None, wait=no_wait([]))
    assert delivery.outcome is Outcome.REJECTED
    assert isinstance(delivery.error, NonRetryableReceiverError) and delivery.error.status_code == 401
    assert "invalid_client" in str(delivery.error)
    assert len(tokens.requests) == 2  # basic auth, then the form: not retried after that


def test_an_unreachable_token_endpoint_is_named(receiver: Receiver, clock: FakeClock) -> None:
    token_url = refused_url() + "/token"
    auth = OAuth2Auth(client_id=CLIENT_ID, client_secret=SECRET, token_url=token_url, clock=clock)
    with HttpxTransport(receiver.url, auth=auth) as transport, pytest.raises(TransportError) as info:
        transport.send(b"x")
    assert f"its auth's request to {token_url} failed: connection refused" in str(info.value)
    assert receiver.requests == []


def test_secrets_never_show_in_errors_reprs_or_logs(
    tokens: TokenServer, receiver: Receiver, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    echo = Failure(400, f"bad client {SECRET} / Basic {basic}")
    tokens.fail(echo, echo)  # refused with basic auth, then in the form
    receiver.script(Reply(403, "token token-1 may not write", echo=True))
    auth = oauth2(tokens, clock)
    texts = [
        repr(auth),
        repr(
            resolve_settings(
                url=receiver.url,
                oauth2_client_id=CLIENT_ID,
                oauth2_client_secret=SECRET,
                oauth2_token_url=tokens.token_url,
                environ={},
            )
        ),
    ]
    with HttpxTransport(receiver.url, auth=auth) as transport:
        for _ in range(2):
            try:
                transport.send(b"x")
            except (NonRetryableReceiverError, TransportError) as exc:
                texts.append(str(exc))
    assert "bad client ***" in texts[2] and "may not write" in texts[3]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        for secret in (SECRET, basic, "token-1"):
            assert secret not in text, text


# --------------------------------------------------------------------------- configuration


def test_the_bridge_authenticates_with_oauth2_from_the_environment(
    tokens: TokenServer, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    for name, value in {
        "URL": receiver.url,
        "OAUTH2_CLIENT_ID": CLIENT_ID,
        "OAUTH2_CLIENT_SECRET_FILE": str(secret_file),
        "OAUTH2_TOKEN_URL": tokens.token_url,
        "OAUTH2_SCOPES": "write, read",
        "OAUTH2_ENDPOINT_PARAMS": "audience=mimir",
    }.items():
        monkeypatch.setenv(f"PROMETHEUS_REMOTE_WRITE_{name}", value)
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=registry).inc()
    bridge = enable_remote_write(registry=registry, interval=3600, self_metrics=False)
    try:
        assert bridge.flush(timeout=10)
    finally:
        bridge.close(timeout=5)
    assert tokens.requests[0].form == {
        "grant_type": "client_credentials",
        "scope": "write read",
        "audience": "mimir",
    }
    assert set(bearers(receiver)) == {"Bearer token-1"}


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        pytest.param(
            {"oauth2_client_id": CLIENT_ID}, ["oauth2_client_id needs oauth2_token_url"], id="no-token-url"
        ),
        pytest.param(
            {"oauth2_token_url": "http://t/token", "oauth2_client_secret": SECRET},
            ["needs oauth2_client_id"],
            id="no-client-id",
        ),
        pytest.param(
            {
                "oauth2_client_id": CLIENT_ID,
                "oauth2_token_url": "http://t/token",
                "oauth2_client_secret": SECRET,
                "oauth2_client_secret_file": "FILE",
            },
            ["oauth2_client_secret and oauth2_client_secret_file", "give the secret once"],
            id="secret-twice",
        ),
        pytest.param(
            {"oauth2_client_id": CLIENT_ID, "oauth2_token_url": "http://t/token", "bearer_token": SECRET},
            ["bearer_token and oauth2_client_id", "choose one way"],
            id="oauth2-and-bearer",
        ),
        pytest.param(
            {
                "oauth2_client_id": CLIENT_ID,
                "oauth2_token_url": "http://t/token",
                "headers": {"Authorization": "x"},
            },
            ["headers and oauth2_client_id"],
            id="oauth2-and-authorization-header",
        ),
        pytest.param(
            {"oauth2_token_url": "ftp://t/token", "oauth2_client_id": CLIENT_ID},
            ["oauth2_token_url"],
            id="bad-url",
        ),
        pytest.param(
            {"oauth2_scopes": [""], "oauth2_client_id": CLIENT_ID}, ["oauth2_scopes"], id="empty-scope"
        ),
    ],
)
def test_oauth2_configuration_errors_name_the_options(
    options: dict[str, Any], fragments: list[str], tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    options = {k: str(secret_file) if v == "FILE" else v for k, v in options.items()}
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(url="http://receiver.test/w", environ={}, **options)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert SECRET not in str(info.value)


def test_the_endpoint_builds_the_oauth2_auth(tokens: TokenServer) -> None:
    settings = resolve_settings(
        url="http://receiver.test/w",
        oauth2_client_id=CLIENT_ID,
        oauth2_client_secret=SECRET,
        oauth2_token_url=tokens.token_url,
        oauth2_scopes="a b",
        environ={},
    )
    endpoint = settings.endpoints[0]
    assert endpoint.oauth2_scopes == ("a", "b")
    assert SECRET not in repr(endpoint)
    with endpoint_transport(endpoint) as transport:
        assert isinstance(transport._auth, OAuth2Auth)
