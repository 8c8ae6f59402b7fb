"""No secret reaches any log record, of any logger, at any level.

With the root logger at DEBUG, so that httpx, httpcore, botocore and the library's own loggers
all emit, every way a push can go (accepted, 5xx retried, 401, a 4xx whose body echoes every
secret, connection refused, TLS failures, protocol negotiation) through ``enable_remote_write``,
``push_to_remote_write``, one ``HttpxTransport.send`` and the command line at ``-v`` and ``-vv``
must leave no secret in any record: not in its message, arguments, exception or stack text.
Requests go both straight to the receiver and through a forward proxy, since httpcore logs
each differently.

Every secret is a distinct sentinel, so a failure names the secret that leaked and the record.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import signal
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from auth_servers import Failure, FakeSTS, TokenServer
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from test_cli import COMMAND, DEADLINE, Live, clean_env

from prometheus_rw_bridge import (
    NonRetryableReceiverError,
    SendError,
    TransportError,
    enable_remote_write,
    push_to_remote_write,
)
from prometheus_rw_bridge._config.settings import resolve_settings
from prometheus_rw_bridge._delivery.setup import make_transport
from prometheus_rw_bridge.testing import Receiver, Reply, refused_url

# --------------------------------------------------------------------------- the secrets

USER = "alice"
URL_PASSWORD = "sentinel-url-password"
QUERY_API_KEY = "sentinel-query-api-key"
QUERY_CODE = "sentinel-query-code"  # under a name no pattern calls secret
PASSWORD = "sentinel-given-password"
PASSWORD_IN_FILE = "sentinel-file-password"
TOKEN = "sentinel-given-token"
TOKEN_IN_FILE = "sentinel-file-token"
HEADER_API_KEY = "sentinel-header-api-key"
HEADER_AUTHORIZATION = "sentinel-header-authorization"
AWS_SECRET_KEY = "sentinel-aws-secret-key"
AWS_SESSION_TOKEN = "sentinel-aws-session-token"
PROXY_USER = "proxy-user"
PROXY_PASSWORD = "sentinel-proxy-password"
SOURCE_PASSWORD = "sentinel-source-password"
SOURCE_TOKEN = "sentinel-source-token"
OAUTH2_CLIENT_ID = "client-id-not-a-secret"
OAUTH2_CLIENT_SECRET = "sentinel-oauth2-client-secret"
OAUTH2_TOKENS = "sentinel-oauth2-token-"  # every token the endpoint issues starts so
ROLE_CREDENTIALS = "sentinel-role-"  # and every secret key and session token of the assumed role
ROLE = "arn:aws:iam::123456789012:role/no-secret"


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


FORBIDDEN: dict[str, str] = {
    "password in the URL": URL_PASSWORD,
    "query parameter api_key": QUERY_API_KEY,
    "query parameter code": QUERY_CODE,
    "basic-auth password": PASSWORD,
    "basic-auth password from a file": PASSWORD_IN_FILE,
    "bearer token": TOKEN,
    "bearer token from a file": TOKEN_IN_FILE,
    "X-Api-Key header": HEADER_API_KEY,
    "Authorization header": HEADER_AUTHORIZATION,
    "AWS secret key": AWS_SECRET_KEY,
    "AWS session token": AWS_SESSION_TOKEN,
    "proxy password": PROXY_PASSWORD,
    "scraped source's password": SOURCE_PASSWORD,
    "scraped source's token": SOURCE_TOKEN,
    "Basic credential of the URL password": _basic(USER, URL_PASSWORD),
    "Basic credential of the password": _basic(USER, PASSWORD),
    "Basic credential of the password file": _basic(USER, PASSWORD_IN_FILE),
    "Proxy-Authorization credential": _basic(PROXY_USER, PROXY_PASSWORD),
    "OAuth2 client secret": OAUTH2_CLIENT_SECRET,
    "Basic credential of the OAuth2 client": _basic(OAUTH2_CLIENT_ID, OAUTH2_CLIENT_SECRET),
    "an OAuth2 access token": OAUTH2_TOKENS,
    "an assumed role's secret key or session token": ROLE_CREDENTIALS,
}


def echo(status: int) -> Reply:
    """What a careless receiver answers: the target and every header it was sent, quoted back."""
    return Reply(status, "denied; you sent:", echo=True)


QUERY = f"?api_key={QUERY_API_KEY}&code={QUERY_CODE}"


def leaks(text: str, signatures: Mapping[str, str] = {}) -> list[str]:
    """Name every secret (or SigV4 signature) that appears in ``text``."""
    return [name for name, value in {**FORBIDDEN, **signatures}.items() if value in text]


def signatures_received(*receivers: Receiver) -> dict[str, str]:
    """The SigV4 signatures the receivers saw: replayable for minutes, so secret too."""
    found = {}
    for receiver in receivers:
        for request in receiver.requests:
            match = re.search(r"Signature=([0-9a-f]{64})", request.header("Authorization") or "")
            if match:
                found[f"SigV4 signature #{len(found) + 1}"] = match.group(1)
    return found


# --------------------------------------------------------------------------- every record


class AllRecords(logging.Handler):
    """Every record of every logger, rendered as a host's handler would show it, and then some."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.rendered: list[tuple[str, str]] = []
        self.names: set[str] = set()
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        # The formatted record (message, exception and stack text) and every attribute the
        # record carries (msg, args, exc_info, extras), as a structured-logging handler may.
        text = self.format(record) + "\n" + repr(vars(record))
        with self._cond:
            self.rendered.append((record.name, text))
            self.names.add(record.name)
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0) -> None:
        """Wait until a record matching ``pattern`` has been emitted."""
        regex = re.compile(pattern)
        with self._cond:
            if not self._cond.wait_for(lambda: any(regex.search(t) for _, t in self.rendered), timeout):
                raise AssertionError(f"no record matching {pattern!r}")

    def assert_no_secret(self, signatures: Mapping[str, str] = {}) -> None:
        with self._cond:
            found = [
                (name, leaked, text) for name, text in self.rendered if (leaked := leaks(text, signatures))
            ]
        assert not found, "secrets in log records:\n" + "\n".join(
            f"{name}: {leaked}\n    {text[:600]}" for name, leaked, text in found
        )

    def text(self) -> str:
        with self._cond:
            return "\n".join(text for _, text in self.rendered)


_THIRD_PARTY = ("httpx", "httpcore", "h11", "botocore", "urllib3", "prometheus_rw_bridge")


@pytest.fixture
def records() -> Iterator[AllRecords]:
    """The root logger at DEBUG, every library logger at its default (inherit), all captured."""
    handler = AllRecords()
    root = logging.getLogger()
    saved = root.level, logging.root.manager.disable
    loggers = [
        logger
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and name.split(".")[0] in _THIRD_PARTY
    ] + [logging.getLogger(name) for name in _THIRD_PARTY]
    levels = [(logger, logger.level, logger.disabled) for logger in loggers]
    logging.disable(logging.NOTSET)
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        logging.disable(saved[1])
        for logger, level, disabled in levels:
            logger.setLevel(level)
            logger.disabled = disabled


@dataclass
class AuthServers:
    """The token endpoint and the STS every test here may use, for OAuth2 and an assumed role."""

    tokens: TokenServer
    sts: FakeSTS


SERVERS: list[AuthServers] = []


@pytest.fixture(scope="module", autouse=True)
def auth_servers() -> Iterator[AuthServers]:
    with (
        TokenServer(
            OAUTH2_CLIENT_ID, OAUTH2_CLIENT_SECRET, lifetime=3600, token_prefix=OAUTH2_TOKENS
        ) as tokens,
        FakeSTS(prefix=ROLE_CREDENTIALS) as sts,
    ):
        SERVERS[:] = [AuthServers(tokens, sts)]
        yield SERVERS[0]
    SERVERS.clear()


def oauth2_options(_: Path) -> dict[str, Any]:
    return {
        "oauth2_client_id": OAUTH2_CLIENT_ID,
        "oauth2_client_secret": OAUTH2_CLIENT_SECRET,
        "oauth2_token_url": SERVERS[0].tokens.token_url,
        "oauth2_scopes": ["write"],
    }


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, auth_servers: AuthServers) -> None:
    """No PROMETHEUS_REMOTE_WRITE_* of the developer's; fake AWS credentials, no AWS lookups."""
    for name in list(os.environ):
        if name.startswith("PROMETHEUS_REMOTE_WRITE_") or name in ("AWS_PROFILE", "AWS_ROLE_ARN"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDNOTASECRET")  # an identifier, sent in the clear
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", AWS_SESSION_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", auth_servers.sts.base_url)  # an assumed role asks it
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- the credentials


@dataclass(frozen=True)
class Credentials:
    """One way of authenticating; every kind also carries secrets in the URL's query."""

    name: str
    options: Callable[[Path], dict[str, Any]] = lambda _: {}
    userinfo: str = ""
    logger: str | None = None  # a library logger that must have emitted, to prove it ran

    def url(self, base: str) -> str:
        return base.replace("://", f"://{self.userinfo}", 1) + QUERY


def _file(directory: Path, name: str, content: str) -> str:
    path = directory / name
    path.write_text(content + "\n")
    return str(path)


CREDENTIALS = [
    Credentials("url-userinfo", userinfo=f"{USER}:{URL_PASSWORD}@"),
    Credentials("basic", lambda _: {"username": USER, "password": PASSWORD}),
    Credentials(
        "basic-file", lambda d: {"username": USER, "password_file": _file(d, "password", PASSWORD_IN_FILE)}
    ),
    Credentials("bearer", lambda _: {"bearer_token": TOKEN}),
    Credentials("bearer-file", lambda d: {"bearer_token_file": _file(d, "token", TOKEN_IN_FILE)}),
    Credentials(
        "headers",
        lambda _: {
            "headers": {"Authorization": f"Bearer {HEADER_AUTHORIZATION}", "X-Api-Key": HEADER_API_KEY}
        },
    ),
    Credentials("sigv4", lambda _: {"sigv4": True, "sigv4_region": "us-east-1"}, logger="botocore.auth"),
    Credentials(
        "sigv4-assumed-role",
        lambda _: {"sigv4": True, "sigv4_region": "us-east-1", "sigv4_role_arn": ROLE},
        logger="botocore.parsers",  # it logged the STS answer's body: dropped, it holds the role's secrets
    ),
]
CREDENTIAL_PARAMS = [pytest.param(c, id=c.name) for c in CREDENTIALS]


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("no_secret_gauge", "A gauge.", registry=registry).set(1)
    Counter("no_secret_total", "A counter.", registry=registry).inc()
    return registry


@dataclass
class Route:
    """Where requests go: straight to the receiver, or through a forward proxy (httpcore logs each)."""

    receiver: Receiver
    base: str
    options: dict[str, Any] = field(default_factory=dict)
    logger: str = "httpx"


@pytest.fixture(params=["direct", "proxy"])
def route(request: pytest.FixtureRequest) -> Iterator[Route]:
    with Receiver() as receiver:
        if request.param == "direct":
            yield Route(receiver, receiver.base_url)
        else:
            # The receiver doubles as a forward proxy: it gets "POST http://target/..." requests.
            proxy = receiver.base_url.replace("://", f"://{PROXY_USER}:{PROXY_PASSWORD}@")
            yield Route(receiver, "http://receiver.invalid", {"proxy": proxy}, logger="httpcore.http11")


def log_raised(error: BaseException) -> None:
    """Log an error the way a host application would: message, repr and traceback."""
    logging.getLogger("host.app").error("push failed: %s (%r)", error, error, exc_info=error)


# --------------------------------------------------------------------------- push_to_remote_write


@dataclass(frozen=True)
class Push:
    name: str
    replies: tuple[Reply, ...]
    raises: type[BaseException] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    protocols: tuple[str, ...] | None = None  # the protocols the receiver must have seen, in order


PUSHES = [
    Push("accepted", ()),
    Push("5xx-retried", (echo(503), echo(500))),
    Push("401", (echo(401),), raises=NonRetryableReceiverError),
    Push("400-echoing-the-secrets", (echo(400),), raises=NonRetryableReceiverError),
    Push("auto-negotiation", (echo(415),), options={"protocol": "auto"}, protocols=("2.0", "1.0")),
]


@pytest.mark.parametrize("push", [pytest.param(p, id=p.name) for p in PUSHES])
@pytest.mark.parametrize("credentials", CREDENTIAL_PARAMS)
def test_push_to_remote_write(
    records: AllRecords, route: Route, credentials: Credentials, push: Push, tmp_path: Path
) -> None:
    route.receiver.script(*push.replies)
    url = credentials.url(route.base + "/api/v1/write")
    options = {**credentials.options(tmp_path), **route.options, **push.options}
    try:
        push_to_remote_write(url, registry=registry(), job="no-secret", timeout=30, **options)
    except SendError as exc:
        assert push.raises is not None and isinstance(exc, push.raises), exc
        log_raised(exc)
    else:
        assert push.raises is None
    received = route.receiver.requests
    assert len(received) == len(push.replies) + (push.raises is None)
    if push.protocols is not None:
        assert tuple(r.protocol for r in received) == push.protocols
    assert f"HTTP Request: POST {route.base}/api/v1/write?api_key=***&code=***" in records.text()
    assert {route.logger, credentials.logger or route.logger} <= records.names
    records.assert_no_secret(signatures_received(route.receiver))


@pytest.mark.parametrize("push", [pytest.param(p, id=p.name) for p in PUSHES])
def test_push_through_a_given_client(records: AllRecords, push: Push) -> None:
    # A user's client brings its own auth and secret default headers; they are masked like ours.
    client = httpx.Client(headers={"X-Api-Key": HEADER_API_KEY}, auth=(USER, PASSWORD))
    with Receiver() as receiver, client:
        receiver.script(*push.replies)
        try:
            push_to_remote_write(
                receiver.url + QUERY, registry=registry(), timeout=30, http_client=client, **push.options
            )
        except SendError as exc:
            assert push.raises is not None and isinstance(exc, push.raises), exc
            log_raised(exc)
        else:
            assert push.raises is None
        assert receiver.requests[0].header("X-Api-Key") == HEADER_API_KEY
    assert "HTTP Request: POST" in records.text()
    records.assert_no_secret()


OAUTH2_PUSHES = [
    Push("accepted", ()),
    Push("5xx-retried", (echo(503), echo(500))),
    Push("401-then-401-with-a-new-token", (echo(401), echo(401)), raises=NonRetryableReceiverError),
    Push("400-echoing-the-secrets", (echo(400),), raises=NonRetryableReceiverError),
]


@pytest.mark.parametrize("push", [pytest.param(p, id=p.name) for p in OAUTH2_PUSHES])
def test_push_with_oauth2(records: AllRecords, push: Push, tmp_path: Path) -> None:
    with Receiver() as receiver:
        receiver.script(*push.replies)
        try:
            push_to_remote_write(
                receiver.url + QUERY, registry=registry(), timeout=30, **oauth2_options(tmp_path)
            )
        except SendError as exc:
            assert push.raises is not None and isinstance(exc, push.raises), exc
            log_raised(exc)
        else:
            assert push.raises is None
        received = receiver.requests
    assert len(received) == len(push.replies) + (push.raises is None)
    assert all((r.header("Authorization") or "").startswith(f"Bearer {OAUTH2_TOKENS}") for r in received)
    records.assert_no_secret()


def _echoing_the_client_secret() -> Failure:
    return Failure(
        400, f"invalid_client: {OAUTH2_CLIENT_SECRET} / {_basic(OAUTH2_CLIENT_ID, OAUTH2_CLIENT_SECRET)}"
    )


@pytest.mark.parametrize(
    ("failures", "raises"),
    [
        pytest.param(
            [_echoing_the_client_secret()] * 2, NonRetryableReceiverError, id="refused-echoing-the-secret"
        ),
        pytest.param([Failure(503, "busy")], None, id="503-then-issued"),
    ],
)
def test_a_failing_token_endpoint_leaks_nothing(
    records: AllRecords,
    auth_servers: AuthServers,
    failures: list[Failure],
    raises: type[Exception] | None,
    tmp_path: Path,
) -> None:
    auth_servers.tokens.fail(*failures)
    with Receiver() as receiver:
        try:
            push_to_remote_write(receiver.url, registry=registry(), timeout=30, **oauth2_options(tmp_path))
        except SendError as exc:
            assert raises is not None and isinstance(exc, raises), exc
            assert "the OAuth2 token endpoint" in str(exc) and "invalid_client: ***" in str(exc)
            log_raised(exc)
        else:
            assert raises is None and receiver.requests
    records.assert_no_secret()


def test_a_token_the_http_stack_refuses_is_not_quoted_back(
    records: AllRecords, route: Route, tmp_path: Path
) -> None:
    # A control character in a rotated token file: h11 refuses the header and quotes its value.
    token_file = _file(tmp_path, "token", TOKEN_IN_FILE + "\x00")
    url = route.base + "/api/v1/write" + QUERY
    with pytest.raises(TransportError, match="Illegal header value") as raised:
        push_to_remote_write(
            url, registry=registry(), timeout=1, bearer_token_file=token_file, **route.options
        )
    log_raised(raised.value)
    records.assert_no_secret()


# --------------------------------------------------------------------------- one send, no answer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_receiver(ca: trustme.CA, *, require_client_cert: bool) -> Receiver:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if require_client_cert:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return Receiver(ssl_context=context)


@pytest.mark.parametrize("failure", ["refused", "tls-untrusted", "tls-client-certificate-required"])
@pytest.mark.parametrize("credentials", CREDENTIAL_PARAMS)
def test_send_without_an_answer(
    records: AllRecords, credentials: Credentials, failure: str, ca: trustme.CA, tmp_path: Path
) -> None:
    options = credentials.options(tmp_path)
    if failure == "refused":
        receiver = None
        url = credentials.url(refused_url())
    else:
        receiver = tls_receiver(ca, require_client_cert=failure == "tls-client-certificate-required").start()
        url = credentials.url(receiver.url)
        if failure == "tls-client-certificate-required":
            options["ca_file"] = _file(tmp_path, "ca.pem", ca.cert_pem.bytes().decode())
    try:
        endpoint = resolve_settings(url=url, **options).endpoints[0]
        transport = make_transport(endpoint)
        with transport, pytest.raises(TransportError) as raised:
            transport.send(b"\x00", protocol="1.0")
        log_raised(raised.value)
        logging.getLogger("host.app").info("transport %r, endpoint %r", transport, endpoint)
    finally:
        if receiver is not None:
            receiver.stop()
    if failure == "refused":
        assert "connection refused" in str(raised.value)
    elif failure == "tls-untrusted":
        assert "certificate verification failed" in str(raised.value)
    records.assert_no_secret()


# --------------------------------------------------------------------------- the background bridge


@pytest.mark.parametrize("outcome", ["5xx-retried", "400-echoing-the-secrets", "refused"])
@pytest.mark.parametrize("credentials", CREDENTIAL_PARAMS)
def test_enable_remote_write(
    records: AllRecords, credentials: Credentials, outcome: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        if outcome == "5xx-retried":
            receiver.script(echo(503), echo(503))
        elif outcome == "400-echoing-the-secrets":
            receiver.script(echo(400))
        bridge = enable_remote_write(
            credentials.url(refused_url() if outcome == "refused" else receiver.url),
            registry=registry(),
            interval=3600,  # only the start-up collection
            job="no-secret",
            **credentials.options(tmp_path),
        )
        try:
            assert bridge.enabled
            if outcome == "5xx-retried":
                receiver.wait_for_requests(3)  # two 503s, then accepted
                assert bridge.flush(timeout=30)
            elif outcome == "400-echoing-the-secrets":
                records.wait_for(r"rejected with 400, batch dropped")
            else:
                records.wait_for(r"failed \(attempt 1\), retrying")
            logging.getLogger("host.app").info("stats: %r; bridge: %r", bridge.stats, bridge)
        finally:
            bridge.close(timeout=0.2 if outcome == "refused" else 5)  # nothing can be delivered there
    records.assert_no_secret(signatures_received(receiver))


# --------------------------------------------------------------------------- the command line


def cli_env(**extra: str) -> dict[str, str]:
    return {**clean_env(), **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}, **extra}


def run_cli(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=DEADLINE, env=dict(env))


@dataclass(frozen=True)
class CliCredentials:
    """One way of giving the command line credentials: flags, files, URL or environment."""

    name: str
    args: Callable[[Path], list[str]] = lambda _: []
    env: Mapping[str, str] = field(default_factory=dict)
    userinfo: str = ""
    debug_logger: str | None = None  # a library logger that must have emitted at -vv

    def url(self, base: str) -> str:
        return base.replace("://", f"://{self.userinfo}", 1) + QUERY


CLI_CREDENTIALS = [
    CliCredentials("url-userinfo", userinfo=f"{USER}:{URL_PASSWORD}@"),
    CliCredentials(
        "password-file", lambda d: ["--username", USER, "--password-file", _file(d, "pw", PASSWORD_IN_FILE)]
    ),
    CliCredentials("bearer-token-file", lambda d: ["--bearer-token-file", _file(d, "token", TOKEN_IN_FILE)]),
    CliCredentials(
        "headers",
        lambda _: [
            "--header",
            f"Authorization=Bearer {HEADER_AUTHORIZATION}",
            "--header",
            f"X-Api-Key={HEADER_API_KEY}",
        ],
    ),
    CliCredentials(
        "password-in-environment",
        lambda _: ["--username", USER],
        env={"PROMETHEUS_REMOTE_WRITE_PASSWORD": PASSWORD},
    ),
    CliCredentials("token-in-environment", env={"PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN": TOKEN}),
    CliCredentials(
        "sigv4-in-environment",
        env={"PROMETHEUS_REMOTE_WRITE_SIGV4": "true", "PROMETHEUS_REMOTE_WRITE_SIGV4_REGION": "us-east-1"},
        debug_logger="botocore.auth",
    ),
]
CLI_CREDENTIAL_PARAMS = [pytest.param(c, id=c.name) for c in CLI_CREDENTIALS]
CLI = {c.name: c for c in CLI_CREDENTIALS}


def assert_output_clean(output: str, *receivers: Receiver) -> None:
    found = leaks(output, signatures_received(*receivers))
    assert not found, f"secrets in the output: {found}\n{output}"


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
@pytest.mark.parametrize("credentials", CLI_CREDENTIAL_PARAMS)
def test_cli_check(credentials: CliCredentials, verbose: str, tmp_path: Path) -> None:
    with Receiver([echo(401)]) as receiver:
        result = run_cli(
            verbose,
            "check",
            credentials.url(receiver.url),
            *credentials.args(tmp_path),
            env=cli_env(**credentials.env),
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "401" in result.stdout
    assert "HTTP Request: POST" in result.stderr  # httpx did log, masked
    if verbose == "-vv" and credentials.debug_logger:
        assert f" DEBUG {credentials.debug_logger}: " in result.stderr
    assert_output_clean(result.stdout + result.stderr, receiver)


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
def test_cli_check_with_oauth2_in_the_environment(verbose: str, auth_servers: AuthServers) -> None:
    env = {
        "PROMETHEUS_REMOTE_WRITE_OAUTH2_CLIENT_ID": OAUTH2_CLIENT_ID,
        "PROMETHEUS_REMOTE_WRITE_OAUTH2_CLIENT_SECRET": OAUTH2_CLIENT_SECRET,
        "PROMETHEUS_REMOTE_WRITE_OAUTH2_TOKEN_URL": auth_servers.tokens.token_url,
    }
    with Receiver([echo(401), echo(401)]) as receiver:
        result = run_cli(verbose, "check", receiver.url + QUERY, env=cli_env(**env))
        assert (receiver.requests[0].header("Authorization") or "").startswith(f"Bearer {OAUTH2_TOKENS}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "401" in result.stdout
    assert_output_clean(result.stdout + result.stderr, receiver)


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
def test_cli_check_tls_failure(verbose: str, ca: trustme.CA, tmp_path: Path) -> None:
    credentials = CLI["password-file"]
    with tls_receiver(ca, require_client_cert=False) as receiver:
        result = run_cli(
            verbose, "check", credentials.url(receiver.url), *credentials.args(tmp_path), env=cli_env()
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TLS" in result.stdout
    assert_output_clean(result.stdout + result.stderr)


def test_cli_check_through_a_proxy_at_debug(tmp_path: Path) -> None:
    with Receiver() as proxy:
        proxy_url = proxy.base_url.replace("://", f"://{PROXY_USER}:{PROXY_PASSWORD}@")
        result = run_cli(
            "-vv",
            "check",
            CLI["bearer-token-file"].url("http://receiver.invalid/api/v1/write"),
            *CLI["bearer-token-file"].args(tmp_path),
            env=cli_env(PROMETHEUS_REMOTE_WRITE_PROXY=proxy_url),
        )
        assert len(proxy.requests) == 1
    assert result.returncode == 0, result.stdout + result.stderr
    assert " DEBUG httpcore.http11: " in result.stderr
    assert_output_clean(result.stdout + result.stderr, proxy)


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
@pytest.mark.parametrize("credentials", CLI_CREDENTIAL_PARAMS)
def test_cli_forward(credentials: CliCredentials, verbose: str, tmp_path: Path) -> None:
    source = tmp_path / "metrics.prom"
    source.write_text("# TYPE forwarded gauge\nforwarded 1\n")
    with Receiver([echo(503)]) as receiver:  # retried, then accepted
        result = run_cli(
            verbose,
            "forward",
            str(source),
            "--url",
            credentials.url(receiver.url),
            *credentials.args(tmp_path),
            env=cli_env(**credentials.env),
        )
        assert len(receiver.requests) == 2
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# push 1:" in result.stdout and "api_key=***&code=***" in result.stdout
    assert_output_clean(result.stdout + result.stderr, receiver)


def test_cli_forward_scraping_a_url_with_credentials(tmp_path: Path) -> None:
    scraped = CollectorRegistry()
    Gauge("scraped", "A gauge.", registry=scraped).set(1)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=scraped)
    port = server.server_port
    try:
        source = f"http://scraper:{SOURCE_PASSWORD}@127.0.0.1:{port}/metrics?token={SOURCE_TOKEN}"
        with Receiver([echo(400)]) as receiver:
            rejected = run_cli("-vv", "forward", source, "--url", receiver.url, env=cli_env())
            accepted = run_cli("-vv", "forward", source, "--url", receiver.url, env=cli_env())
            decoded = [request.decoded for request in receiver.requests]
    finally:
        server.shutdown()
        thread.join(DEADLINE)
    assert rejected.returncode == 1 and accepted.returncode == 0, rejected.stderr + accepted.stderr
    assert f"GET http://127.0.0.1:{port}/metrics?token=***" in accepted.stderr
    instances = {dict(s.labels)["instance"] for d in decoded if d is not None for s in d.series}
    assert instances == {f"127.0.0.1:{port}"}  # the user info is not a label either
    assert_output_clean(rejected.stdout + rejected.stderr + accepted.stdout + accepted.stderr, receiver)


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
def test_cli_demo_to_a_given_url(verbose: str, tmp_path: Path) -> None:
    credentials = CLI["url-userinfo"]  # and a secret header from the environment
    with Receiver([echo(503)]) as receiver:
        env = cli_env(PROMETHEUS_REMOTE_WRITE_HEADERS=f"X-Api-Key={HEADER_API_KEY}")
        live = Live(verbose, "demo", "--url", credentials.url(receiver.url), "--interval", "0.2", env=env)
        try:
            receiver.wait_for_requests(3, timeout=DEADLINE)  # a 503, its retry, the next push
            code, output = live.finish(signal.SIGINT)
        finally:
            live.kill()
    assert code == 0, output
    assert "HTTP Request: POST" in output
    assert_output_clean(output, receiver)


def test_cli_demo_with_the_builtin_receiver_and_secrets_in_the_environment() -> None:
    env = cli_env(
        PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN=TOKEN,
        PROMETHEUS_REMOTE_WRITE_HEADERS=f"X-Api-Key={HEADER_API_KEY}",
    )
    live = Live("-vv", "demo", "--interval", "0.2", env=env)
    try:
        live.wait_for(r"^# request 2 ")
        code, output = live.finish(signal.SIGINT)
    finally:
        live.kill()
    assert code == 0, output
    assert "HTTP Request: POST" in output and " DEBUG prometheus_rw_bridge._tools.receiver: " in output
    assert_output_clean(output)
