"""Real servers on loopback for the auth tests: an OAuth2 token endpoint and an STS that assumes roles.

``TokenServer`` implements the client-credentials grant (RFC 6749, section 4.4): it checks the
client's credentials (in a basic-auth header, or in the form, as ``accepts`` says), issues
``token-1``, ``token-2``, ... with ``expires_in`` of ``lifetime`` seconds, and answers from a
script of failures first (a status and body, or ``DROP`` to close without an answer).

``FakeSTS`` answers ``AssumeRole`` (the Query API, as botocore sends it) with temporary
credentials ``ASIAROLE1``, ``ASIAROLE2``, ..., each with a secret key and session token of its
own, and a scripted failure first if given.

Both record every request (headers and form) and let tests wait for them through a condition
variable, never by sleeping.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["DROP", "Failure", "FakeSTS", "TokenRequest", "TokenServer", "sts_failure"]

DROP = "drop"
"""A scripted failure that closes the connection without an answer."""


@dataclass(frozen=True)
class Failure:
    """One scripted failure: a status and body, or ``DROP``."""

    status: int | str
    body: str = ""
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class TokenRequest:
    """One request as the server saw it."""

    path: str
    headers: Mapping[str, str]
    form: Mapping[str, str]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class _Loopback:
    """A threaded HTTP server on a free port of 127.0.0.1, recording requests."""

    def __init__(self, failures: Iterable[Failure | int] = ()) -> None:
        self._cond = threading.Condition()
        self._failures = [Failure(f) if isinstance(f, int) else f for f in failures]
        self._requests: list[TokenRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Any:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                owner._serve(self)

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, *failures: Failure | int) -> None:
        """Script failures for the next requests."""
        with self._cond:
            self._failures.extend(Failure(f) if isinstance(f, int) else f for f in failures)

    @property
    def requests(self) -> list[TokenRequest]:
        with self._cond:
            return list(self._requests)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[TokenRequest]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self._requests) >= n, timeout), self._requests
            return list(self._requests)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8", "replace")
        request = TokenRequest(
            handler.path, dict(handler.headers.items()), dict(urllib.parse.parse_qsl(body))
        )
        with self._cond:
            self._requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
            status, content_type, answer = (
                self._answer(request) if failure is None else (failure.status, "text/plain", failure.body)
            )
            self._cond.notify_all()
        if status == DROP:
            handler.close_connection = True
            return
        payload = answer.encode()
        headers = {"Content-Type": content_type, **((failure.headers or {}) if failure is not None else {})}
        handler.send_response(int(status))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, request: TokenRequest) -> tuple[int, str, str]:
        raise NotImplementedError


class TokenServer(_Loopback):
    """An OAuth2 token endpoint issuing short-lived tokens; see the module docstring.

    Args:
        client_id: the only client it knows.
        client_secret: that client's secret.
        lifetime: ``expires_in`` of every token, in seconds (None: not sent).
        accepts: where the client's credentials must be: ``"header"``, ``"form"`` or ``"both"``.
        form_answer: answer ``application/x-www-form-urlencoded`` instead of JSON.
        token_prefix: what the issued tokens start with (a number follows).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        lifetime: float | None = 60,
        accepts: str = "both",
        failures: Iterable[Failure | int] = (),
        form_answer: bool = False,
        token_prefix: str = "token-",
    ) -> None:
        super().__init__(failures)
        self.token_prefix = token_prefix
        self.client_id, self.client_secret = client_id, client_secret
        self.lifetime, self.accepts, self.form_answer = lifetime, accepts, form_answer
        self.issued: list[str] = []

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth2/token"

    def _answer(self, request: TokenRequest) -> tuple[int, str, str]:
        if self._authenticated(request) != (self.client_id, self.client_secret):
            return 401, "application/json", json.dumps({"error": "invalid_client"})
        if request.form.get("grant_type") != "client_credentials":
            return 400, "application/json", json.dumps({"error": "unsupported_grant_type"})
        token = f"{self.token_prefix}{len(self.issued) + 1}"
        self.issued.append(token)
        fields: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
        if self.lifetime is not None:
            fields["expires_in"] = self.lifetime
        if self.form_answer:
            return 200, "application/x-www-form-urlencoded", urllib.parse.urlencode(fields)
        return 200, "application/json", json.dumps(fields)

    def _authenticated(self, request: TokenRequest) -> tuple[str, str] | None:
        header = request.header("Authorization") or ""
        if header.startswith("Basic ") and self.accepts in ("header", "both"):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
        if "client_id" in request.form and self.accepts in ("form", "both"):
            return request.form["client_id"], request.form.get("client_secret", "")
        return None


class FakeSTS(_Loopback):
    """An STS endpoint answering ``AssumeRole``; see the module docstring.

    Args:
        failures: the first answers, failing.
        lifetime: how long the credentials it issues are valid.
        prefix: what each issued secret key and session token starts with.
    """

    def __init__(
        self,
        failures: Iterable[Failure | int] = (),
        *,
        lifetime: datetime.timedelta | None = None,
        prefix: str = "role-",
    ) -> None:
        super().__init__(failures)
        self.prefix = prefix
        self.lifetime = lifetime or datetime.timedelta(hours=1)
        self.issued: list[tuple[str, str, str]] = []

    def _answer(self, request: TokenRequest) -> tuple[int, str, str]:
        if request.form.get("Action") != "AssumeRole" or "RoleArn" not in request.form:
            return 400, "text/xml", _sts_error("InvalidAction", "only AssumeRole is served here")
        number = len(self.issued) + 1
        credentials = (
            f"ASIAROLE{number}",
            f"{self.prefix}secret-key-{number}",
            f"{self.prefix}session-token-{number}",
        )
        self.issued.append(credentials)
        expires = (datetime.datetime.now(datetime.timezone.utc) + self.lifetime).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        role = request.form["RoleArn"]
        body = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
            f"<Credentials><AccessKeyId>{credentials[0]}</AccessKeyId>"
            f"<SecretAccessKey>{credentials[1]}</SecretAccessKey><SessionToken>{credentials[2]}</SessionToken>"
            f"<Expiration>{expires}</Expiration></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:{request.form.get('RoleSessionName')}</AssumedRoleId>"
            f"<Arn>{role}/{request.form.get('RoleSessionName')}</Arn></AssumedRoleUser>"
            "</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"
        )
        return 200, "text/xml", body


def _sts_error(code: str, message: str) -> str:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    )


def sts_failure(status: int, code: str, message: str) -> Failure:
    """An STS error answer as AWS sends one (botocore reads the code from the XML)."""
    return Failure(status, _sts_error(code, message), {"Content-Type": "text/xml"})
