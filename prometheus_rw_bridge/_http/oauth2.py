"""OAuth2 client credentials (RFC 6749, section 4.4), as Prometheus's ``oauth2`` block.

:class:`OAuth2Auth` fetches an access token from the token endpoint on first use, caches it,
and fetches a new one shortly before ``expires_in`` runs out (10 s before, or half the token's
lifetime if that is shorter) and after the receiver answers 401, resending that request once.

The token request goes through the same ``httpx.Client`` as the remote-write requests (its
proxy and TLS apply), yielded from the auth flow, with the request's own timeout.  The client
authenticates with HTTP basic auth (``client_id`` and ``client_secret`` form-encoded, as
RFC 6749 section 2.3.1 says); a token endpoint that refuses that with a 400 or 401 is asked once
more with the credentials in the form instead, and whichever worked is kept, as the Go OAuth2
library Prometheus uses does.

A token endpoint that fails is an error of the package's tree, so the sender's retry loop
retries it as it retries a receiver: no answer is a ``TransportError``, a 5xx or 429 a
``RetryableReceiverError`` (with its ``Retry-After``), any other refusal a
``NonRetryableReceiverError``.  The client secret and the tokens are secrets: :meth:`secrets`
names them, so they are masked in every log record, error and repr.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple

import httpx

from .._exceptions import SendError, TransportError
from .._protocol.headers import USER_AGENT
from .._redact import MASK, basic_auth_secrets, safe_url, secret_forms
from .auth import SecretFile
from .errors import MAX_BODY_BYTES, receiver_error

__all__ = ["OAuth2Auth"]

_EARLY = 10.0
"""Seconds before a token expires when it is fetched again (at most half its lifetime)."""

_KEPT_TOKENS = 4
"""Tokens remembered for masking: the current one and those before it, which may still be quoted."""

_HEADER, _FORM = "header", "form"  # where the client credentials go in a token request


class _Token(NamedTuple):
    """An access token, the header value it makes, and the clock reading after which it is fetched anew."""

    value: str
    header: str
    refresh_at: float | None


class OAuth2Auth(httpx.Auth):
    """``Authorization: Bearer <token>``, the token fetched with the client-credentials grant.

    Args:
        client_id: the client's ID.
        token_url: the token endpoint.
        client_secret: the client's secret.
        client_secret_file: a file holding the secret instead; re-read when it changes.
        scopes: the scopes to ask for.
        endpoint_params: further parameters of the token request.
        clock: a monotonic clock, in seconds.
    """

    def __init__(
        self,
        *,
        client_id: str,
        token_url: str,
        client_secret: str | None = None,
        client_secret_file: str | None = None,
        scopes: Sequence[str] = (),
        endpoint_params: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self.token_url = token_url
        self._secret = client_secret
        self._file = (
            SecretFile(client_secret_file, "oauth2 client secret file") if client_secret_file else None
        )
        self._form = {"grant_type": "client_credentials"}
        if scopes:
            self._form["scope"] = " ".join(scopes)
        self._form.update(endpoint_params or {})
        self._clock = clock
        self._lock = threading.Lock()  # held only to read or replace what is cached, never across I/O
        self._token: _Token | None = None
        self._issued: list[str] = []
        self._style: str | None = None
        self._where = f"the OAuth2 token endpoint {safe_url(token_url)}"

    def __repr__(self) -> str:
        secret = f"client_secret_file={self._file.path!r}" if self._file else f"client_secret={MASK!r}"
        return f"OAuth2Auth(client_id={self.client_id!r}, token_url={safe_url(self.token_url)!r}, {secret})"

    def secrets(self) -> tuple[str, ...]:
        """The client secret, the credential it makes and the tokens issued: masked wherever they show."""
        secret = self._file.last_value if self._file is not None else self._secret
        found = list(self._issued)
        if secret:
            found.extend(basic_auth_secrets(_form_quote(self.client_id), _form_quote(secret)))
            found.append(secret)
        return tuple(found)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._cached()
        if token is None:
            token = yield from self._fetch(request)
        request.headers["Authorization"] = token.header
        response = yield request
        if response.status_code != 401:
            return
        # The receiver no longer takes this token (revoked, or expired early): one more, once.
        self._forget(token)
        token = yield from self._fetch(request)
        request.headers["Authorization"] = token.header
        yield request

    def warm_up(self) -> None:
        """Build a token request and read a token answer as a send would, without sending anything.

        The thread that sends must import nothing (docs/architecture.md, "Forks").
        """
        try:
            secret = self._current_secret()
        except OSError:
            return  # an unreadable secret file: send() reports it
        for style in (_HEADER, _FORM):
            self._token_request(style, secret, None)
        answer = httpx.Response(
            200, json={"access_token": "warm-up", "token_type": "bearer", "expires_in": 60}
        )
        self._parse(answer)

    # -- the token ----------------------------------------------------------------------------

    def _cached(self) -> _Token | None:
        """The cached token, unless it is due to be fetched again."""
        with self._lock:
            token = self._token
        if token is None or (token.refresh_at is not None and self._clock() >= token.refresh_at):
            return None
        return token

    def _forget(self, token: _Token) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, _Token]:
        """Ask the token endpoint for a token (yielding its requests), cache it and return it."""
        secret = self._current_secret()
        timeout = request.extensions.get("timeout")
        styles = [self._style] if self._style else [_HEADER, _FORM]
        for index, style in enumerate(styles):
            response = yield self._token_request(style, secret, timeout)
            response.read()
            if response.status_code in (400, 401) and index + 1 < len(styles):
                continue  # it may want the credentials in the form
            token = self._accept(response)
            with self._lock:
                self._style, self._token = style, token
                self._issued = [*self._issued[-(_KEPT_TOKENS - 1) :], token.value]
            return token
        raise AssertionError("unreachable: the last style's answer is accepted or raised")

    def _current_secret(self) -> str:
        """The client secret now (re-read from its file if that changed); empty if there is none."""
        if self._file is not None:
            return self._file.read()
        return self._secret or ""

    def _token_request(self, style: str, secret: str, timeout: Any) -> httpx.Request:
        """The POST to the token endpoint, with the client's credentials where ``style`` puts them."""
        form = dict(self._form)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if style == _HEADER:
            pair = f"{_form_quote(self.client_id)}:{_form_quote(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form["client_id"] = self.client_id
            if secret:
                form["client_secret"] = secret
        extensions = {"timeout": timeout} if timeout is not None else {}
        return httpx.Request("POST", self.token_url, data=form, headers=headers, extensions=extensions)

    def _accept(self, response: httpx.Response) -> _Token:
        """The token of a 2xx answer; for any other, the error to raise (retried or not as a receiver's)."""
        if not response.is_success:
            raw = response.content[:MAX_BODY_BYTES]
            raise receiver_error(response, raw, self._where, secret_forms(self.secrets()))
        return self._parse(response)

    def _parse(self, response: httpx.Response) -> _Token:
        """Read a token answer: JSON (RFC 6749) or, as some endpoints send, a form."""
        fields: Any
        try:
            if "form-urlencoded" in response.headers.get("Content-Type", ""):
                fields = dict(urllib.parse.parse_qsl(response.content.decode("utf-8")))
            else:
                fields = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            fields = None
        token = fields.get("access_token") if isinstance(fields, dict) else None
        if not isinstance(token, str) or not token:
            raise _malformed(self._where, response.status_code, "without an access_token")
        kind = str(fields.get("token_type") or "Bearer")
        header = f"{'Bearer' if kind.lower() == 'bearer' else kind} {token}"
        lifetime = _seconds(fields.get("expires_in"))
        refresh_at = None if lifetime is None else self._clock() + lifetime - min(_EARLY, lifetime / 2)
        return _Token(token, header, refresh_at)


def _seconds(value: object) -> float | None:
    """``expires_in`` as seconds (a number or numeric text); absent, zero or malformed: no expiry."""
    try:
        seconds = (
            float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else 0.0
        )
    except ValueError:
        return None
    return seconds if seconds > 0 and seconds != float("inf") else None


def _form_quote(text: str) -> str:
    """Form-encode one credential for basic auth (RFC 6749, section 2.3.1)."""
    return urllib.parse.quote_plus(text, safe="")


def _malformed(where: str, status: int, what: str) -> SendError:
    """A 2xx answer that is no token: retried, as the endpoint may well answer properly next time."""
    return TransportError(f"{where} answered {status} {what}")
