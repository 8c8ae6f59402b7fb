"""One remote-write endpoint over HTTP: headers, auth, status mapping and error translation.

``Transport.send`` makes exactly one POST and turns everything that can go wrong into the
package's error tree (see ``_exceptions``): 5xx and 429 become ``RetryableReceiverError``,
other non-2xx answers ``NonRetryableReceiverError``, and failures without an answer
(refused, reset, TLS, timeout) ``TransportError``.  Whether and when to try again is
``_retry``'s business.

Credentials never leave this module in text: the URL's ``user:password@`` becomes basic
auth and is stripped from ``Transport.url``; error messages and reprs are scrubbed of every
secret the transport knows.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import logging
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .._config.parse import parse_headers, parse_url
from .._delivery.retry import parse_retry_after
from .._exceptions import (
    ConfigurationError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    TransportError,
)
from .._protocol.headers import headers_for
from .._redact import MASK, is_secret_header, safe_url
from .http11 import direct_transport

__all__ = ["MAX_MESSAGE_LENGTH", "SendResult", "Transport"]

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 512
"""Characters of a receiver's error body kept in an exception message."""

# Read at most this much of any response body: the spec says senders ignore 2xx bodies, and
# an error message is cut to MAX_MESSAGE_LENGTH characters anyway.
_MAX_BODY_BYTES = 4 * MAX_MESSAGE_LENGTH

_SAMPLES_WRITTEN = "X-Prometheus-Remote-Write-Samples-Written"
_HISTOGRAMS_WRITTEN = "X-Prometheus-Remote-Write-Histograms-Written"
_EXEMPLARS_WRITTEN = "X-Prometheus-Remote-Write-Exemplars-Written"


@dataclass(frozen=True)
class SendResult:
    """A 2xx answer to one request.

    Attributes:
        status_code: the HTTP status (2xx).
        samples_written: ``X-Prometheus-Remote-Write-Samples-Written``, if sent.
        histograms_written: ``X-Prometheus-Remote-Write-Histograms-Written``, if sent.
        exemplars_written: ``X-Prometheus-Remote-Write-Exemplars-Written``, if sent.
    """

    status_code: int
    samples_written: int | None = None
    histograms_written: int | None = None
    exemplars_written: int | None = None

    @property
    def confirms_v2(self) -> bool:
        """Tell whether the receiver sent any ``*-Written`` header, as 2.0 receivers must.

        A 2xx answer to a 2.0 request without them usually means a 1.0 receiver decoded the
        body as an (empty) 1.0 message; the 2.0 spec says to treat that like a 415.
        """
        return (
            self.samples_written is not None
            or self.histograms_written is not None
            or self.exemplars_written is not None
        )


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """Return ``url`` without ``user:password@`` and the decoded credentials, if any."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    bare = urllib.parse.urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, (urllib.parse.unquote(user), urllib.parse.unquote(password))


def _validate_url(url: object) -> str:
    """Check ``url`` is an http(s) URL with a host; raise ``ConfigurationError`` naming it."""
    checked = parse_url(url, "url")
    try:
        httpx.URL(checked)
    except httpx.InvalidURL:
        # httpx's message may quote the URL; say only what was given, safely.
        raise ConfigurationError(
            f"url={safe_url(checked)!r} is not valid: httpx cannot parse it as a URL"
        ) from None
    return checked


def _secrets_of(credentials: tuple[str, str] | None) -> tuple[str, ...]:
    """Return the strings that must never be displayed, longest first."""
    if credentials is None:
        return ()
    user, password = credentials
    found = {password, urllib.parse.quote(password, safe=""), f"{user}:{password}"}
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret in ``text`` by ``***``."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _short_hash(text: str) -> str:
    """Return 6 hex digits identifying ``text``, as Prometheus names unnamed remotes."""
    return hashlib.sha256(text.encode()).hexdigest()[:6]


class Transport:
    """Send remote-write request bodies to one URL.

    Args:
        url: the endpoint, ``http://`` or ``https://``; ``user:password@`` in it becomes basic auth.
        client: an ``httpx.Client`` to use (its TLS, proxy and pool settings apply).  By
            default the transport creates one (no redirects, ``timeout``) and owns it.
        timeout: seconds allowed per request, for connecting and for each read and write.
        headers: extra headers for every request (for example ``X-Scope-OrgID``); the
            protocol's reserved headers are refused (``_parse.RESERVED_HEADERS``).
        remote_name: a name for logs and self-metrics; by default 6 hex digits hashed from
            the displayed URL, like Prometheus's unnamed remotes.
        auth: an ``httpx.Auth`` (for example a bearer token re-read from a file) or a
            ``(username, password)`` pair; not allowed together with credentials in ``url``.
        owns_client: whether :meth:`close` closes ``client``; by default only a client the
            transport created itself.

    Raises:
        ConfigurationError: ``url``, ``timeout`` or ``headers`` is malformed; the message
            names it and masks secrets.

    Attributes:
        url: the endpoint without credentials, safe for logs and metric labels.
        remote_name: the name given or derived.
        timeout: the default per-request timeout in seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        remote_name: str | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        owns_client: bool | None = None,
    ) -> None:
        url = _validate_url(url)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        bare, credentials = _split_credentials(url)
        if credentials is not None and auth is not None:
            raise ConfigurationError(
                f"url={safe_url(url)!r} carries credentials and auth is also given; use one of them"
            )
        self._post_url = bare
        self._auth: httpx.Auth | tuple[str, str] | None = credentials if credentials is not None else auth
        secrets = list(_secrets_of(credentials))
        if isinstance(auth, tuple) and len(auth) == 2:
            secrets.extend(_secrets_of((str(auth[0]), str(auth[1]))))
        self._user_headers = dict(parse_headers(headers or {}, "headers"))
        for name, value in self._user_headers.items():
            if is_secret_header(name) and value:
                secrets.append(value)
                # "Bearer <token>": the token alone is the secret too.
                secrets.extend(part for part in value.split() if len(part) >= 8)
        self._secrets = tuple(sorted(set(secrets), key=len, reverse=True))
        self.url = safe_url(url)
        self.remote_name = remote_name if remote_name else _short_hash(self.url)
        self.timeout = float(timeout)
        self._owns_client = client is None if owns_client is None else owns_client
        self._client = (
            client
            if client is not None
            else httpx.Client(timeout=timeout, follow_redirects=False, transport=direct_transport())
        )

    def __repr__(self) -> str:
        return f"Transport(url={self.url!r}, remote_name={self.remote_name!r})"

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this transport created it (idempotent)."""
        if self._owns_client:
            self._client.close()

    def send(
        self, body: bytes, *, protocol: str = "1.0", attempt: int = 0, timeout: float | None = None
    ) -> SendResult:
        """POST one compressed request body.

        Args:
            body: the snappy-compressed protobuf message.
            protocol: ``"1.0"`` or ``"2.0"``; selects the protocol headers.
            attempt: 0 for a first attempt; a retry's number is sent as ``Retry-Attempt``.
            timeout: seconds for this request instead of the transport's timeout.

        Returns:
            The 2xx status and the receiver's ``*-Written`` counts.

        Raises:
            RetryableReceiverError: a 5xx or 429; ``retry_after`` holds the parsed
                ``Retry-After`` in seconds, or None.
            NonRetryableReceiverError: any other non-2xx answer (3xx included: redirects are
                not followed, as a POST body must not silently go elsewhere).
            TransportError: no answer (refused, reset, TLS failure, timeout).
        """
        headers = {**self._user_headers, **headers_for(protocol)}
        if attempt > 0:
            headers["Retry-Attempt"] = str(attempt)
        # A zero timeout would make httpx's sockets non-blocking, not "expire now".
        seconds = self.timeout if timeout is None else max(timeout, 0.001)
        auth: Any = self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT
        try:
            request = self._client.build_request(
                "POST", self._post_url, content=body, headers=headers, timeout=httpx.Timeout(seconds)
            )
            response = self._client.send(request, auth=auth, follow_redirects=False, stream=True)
            try:
                raw = _read_limited(response)
            finally:
                response.close()
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            message = _scrub(f"cannot send to {self.url}: {_describe(exc, seconds)}", self._secrets)
            raise TransportError(message) from exc
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(
                status_code=status,
                samples_written=_count(response.headers, _SAMPLES_WRITTEN),
                histograms_written=_count(response.headers, _HISTOGRAMS_WRITTEN),
                exemplars_written=_count(response.headers, _EXEMPLARS_WRITTEN),
            )
        message = _scrub(_message(raw, response), self._secrets)
        if status >= 500 or status == 429:
            error = RetryableReceiverError(status, message, self.url)
            error.retry_after = _retry_after(response.headers)
            raise error
        raise NonRetryableReceiverError(status, message, self.url)


def _read_limited(response: httpx.Response) -> bytes:
    """Read up to ``_MAX_BODY_BYTES`` of a streamed response body."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _MAX_BODY_BYTES:
            break
    return b"".join(chunks)[:_MAX_BODY_BYTES]


def _message(raw: bytes, response: httpx.Response) -> str:
    """Return the receiver's error body as text, verbatim but cut to ``MAX_MESSAGE_LENGTH``."""
    text = raw.decode(response.encoding or "utf-8", errors="replace").strip()
    if 300 <= response.status_code < 400 and not text:
        location = response.headers.get("Location")
        text = f"redirect to {safe_url(location)} not followed" if location else ""
    if len(text) > MAX_MESSAGE_LENGTH:
        text = text[: MAX_MESSAGE_LENGTH - 3] + "..."
    return text


def _count(headers: httpx.Headers, name: str) -> int | None:
    """Parse one ``*-Written`` header; a malformed value counts as absent."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        logger.debug("ignoring malformed %s header %r", name, value)
        return None


def _retry_after(headers: httpx.Headers) -> float | None:
    """Parse ``Retry-After``, measuring an HTTP date against the response's own ``Date``."""
    now = time.time()
    date = headers.get("Date")
    if date:
        try:
            when = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
        else:
            now = (when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)).timestamp()
    return parse_retry_after(headers.get("Retry-After"), now)


def _describe(exc: BaseException, timeout: float) -> str:
    """Say in a few words why no answer came; never includes request headers."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connecting timed out after {timeout:g}s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no response within {timeout:g}s"
    if isinstance(exc, httpx.WriteTimeout):
        return f"sending the body timed out after {timeout:g}s"
    if isinstance(exc, httpx.PoolTimeout):
        return f"no free connection within {timeout:g}s"
    cause = _root_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {cause.verify_message or cause.reason or cause}"
    if isinstance(cause, ssl.SSLError):
        return f"TLS error: {cause.reason or cause}"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, ConnectionResetError):
        return "connection reset by the receiver"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the receiver closed the connection or answered malformed HTTP ({exc})"
    if isinstance(exc, httpx.ProxyError):
        return f"proxy error: {exc}"
    text = str(exc) or str(cause) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _root_cause(exc: BaseException) -> BaseException:
    """Return the first ``ssl.SSLError`` in the cause chain, else the innermost exception."""
    for _ in range(20):  # bounded: chains can be cyclic in pathological code
        if isinstance(exc, ssl.SSLError):
            return exc
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc
