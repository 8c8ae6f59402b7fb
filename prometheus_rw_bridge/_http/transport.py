"""One remote-write endpoint over HTTP: the transport interface and its httpx implementation.

:class:`Transport` is the seam the delivery layer talks to: one ``send()`` of a compressed body
that returns a :class:`SendResult` or raises a ``SendError``, and ``close()``.  Tests and users
may pass anything that has that shape.

``HttpxTransport.send`` makes exactly one POST and turns everything that can go wrong into the
package's error tree (see ``_exceptions``): 5xx and 429 become ``RetryableReceiverError``,
other non-2xx answers ``NonRetryableReceiverError``, and failures without an answer
(refused, reset, TLS, timeout) ``TransportError``.  Whether and when to try again is
``_retry``'s business.

Credentials never leave this module in text: the URL's ``user:password@`` becomes basic
auth and is stripped from ``HttpxTransport.url``; error messages (and the errors chained under
them), reprs, and the records httpx, httpcore and botocore log while a request is sent are
scrubbed of every secret the transport knows (``_redact.masking_logs``).
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .._config.parse import parse_headers, parse_url
from .._exceptions import (
    ConfigurationError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    TransportError,
)
from .._protocol.headers import headers_for
from .._redact import (
    basic_auth_secrets,
    is_secret_header,
    masking_logs,
    safe_url,
    scrub,
    scrub_exception_chain,
    secret_forms,
    url_secrets,
)
from .http11 import direct_transport
from .retry_after import retry_after_from_headers

__all__ = ["MAX_MESSAGE_LENGTH", "HttpxTransport", "SendResult", "Transport", "ended_without_answer"]

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


class Transport(Protocol):
    """What the delivery layer needs from a transport: one POST per call, errors as ``SendError``.

    Attributes:
        url: the endpoint, safe to display (no credentials, query values masked).
        remote_name: the endpoint's name in logs and self-metrics.
        timeout: the default per-request timeout in seconds.
    """

    url: str
    remote_name: str
    timeout: float

    def send(
        self, body: bytes, *, protocol: str = "1.0", attempt: int = 0, timeout: float | None = None
    ) -> SendResult:
        """POST one compressed request body; raise ``RetryableReceiverError``,
        ``NonRetryableReceiverError`` or ``TransportError`` when it did not succeed."""
        ...

    def close(self) -> None:
        """Release the transport's connections (idempotent)."""
        ...


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


def _short_hash(text: str) -> str:
    """Return 6 hex digits identifying ``text``, as Prometheus names unnamed remotes."""
    return hashlib.sha256(text.encode()).hexdigest()[:6]


class HttpxTransport:
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
        secrets = list(url_secrets(url))
        if credentials is not None:
            secrets.extend(basic_auth_secrets(*credentials))
        if isinstance(auth, tuple) and len(auth) == 2:
            secrets.extend(basic_auth_secrets(str(auth[0]), str(auth[1])))
        self._user_headers = dict(parse_headers(headers or {}, "headers"))
        for name, value in self._user_headers.items():
            if is_secret_header(name) and value:
                secrets.append(value)
                # "Bearer <token>": the token alone is the secret too.
                secrets.extend(part for part in value.split() if len(part) >= 8)
        self._secrets = tuple(secrets)
        self.url = safe_url(url)
        self.remote_name = remote_name if remote_name else _short_hash(self.url)
        self.timeout = float(timeout)
        self._owns_client = client is None if owns_client is None else owns_client
        self._client = (
            client
            if client is not None
            else httpx.Client(
                timeout=timeout,
                follow_redirects=False,
                transport=direct_transport(https=httpx.URL(bare).scheme == "https"),
            )
        )

    def __repr__(self) -> str:
        return f"HttpxTransport(url={self.url!r}, remote_name={self.remote_name!r})"

    def _known_secrets(self) -> tuple[str, ...]:
        """Every secret a request of this transport carries, in every form it may be shown in.

        Asked again for each use: the client's auth may have read a rotated token meanwhile.
        """
        client_secrets = getattr(self._client, "known_secrets", None)
        extra = client_secrets() if callable(client_secrets) else ()
        return secret_forms((*self._secrets, *extra))

    def __enter__(self) -> HttpxTransport:
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
        # A zero timeout would make httpx's sockets non-blocking, not "expire now".
        seconds = self.timeout if timeout is None else max(timeout, 0.001)
        auth: Any = self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT
        # httpx logs the URL of every request at INFO, httpcore and botocore more at DEBUG.
        with masking_logs(self._known_secrets):
            try:
                request = self._request(body, protocol, attempt, seconds)
                response = self._client.send(request, auth=auth, follow_redirects=False, stream=True)
                try:
                    raw = _read_limited(response)
                finally:
                    response.close()
            except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
                secrets = self._known_secrets()
                tls = self._post_url.startswith("https:")
                message = scrub(f"cannot send to {self.url}: {_describe(exc, seconds, tls=tls)}", secrets)
                scrub_exception_chain(exc, secrets)  # tracebacks print it under ours
                raise TransportError(message) from exc
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(
                status_code=status,
                samples_written=_count(response.headers, _SAMPLES_WRITTEN),
                histograms_written=_count(response.headers, _HISTOGRAMS_WRITTEN),
                exemplars_written=_count(response.headers, _EXEMPLARS_WRITTEN),
            )
        message = scrub(_message(raw, response), self._known_secrets())
        if status >= 500 or status == 429:
            error = RetryableReceiverError(status, message, self.url)
            error.retry_after = retry_after_from_headers(response.headers)
            raise error
        raise NonRetryableReceiverError(status, message, self.url)

    def warm_up(self) -> None:
        """Run now, in the calling thread, the steps of a first ``send()`` that may import modules.

        A thread that imports holds the module's import lock, and a fork at that moment leaves
        the lock held in the child for ever (docs/architecture.md, "Forks"), so the threads
        that call ``send()`` must find everything imported.  This builds a request as ``send()``
        does, runs the auth on it (a SigV4 signature, a token or password file read) and looks
        up the IDNA codec, with which ``socket.getaddrinfo`` and ``ssl`` encode every host
        name.  Nothing is sent; an auth that fails here is left for ``send()`` to report.
        """
        request = self._request(b"", "1.0", 1, self.timeout)
        codecs.lookup("idna")
        auth = self._auth if self._auth is not None else self._client.auth
        if isinstance(auth, tuple):
            auth = httpx.BasicAuth(*auth)
        if auth is not None:
            # Signing logs what send() would log (botocore's canonical request): mask it the same way.
            with masking_logs(self._known_secrets):
                flow = auth.sync_auth_flow(request)
                try:
                    next(flow)
                except Exception:  # an unreadable token file, say: send() reports it
                    pass
                finally:
                    flow.close()

    def _request(self, body: bytes, protocol: str, attempt: int, seconds: float) -> httpx.Request:
        """Build the POST of one request body (auth is added when it is sent)."""
        headers = {**self._user_headers, **headers_for(protocol)}
        if attempt > 0:
            headers["Retry-Attempt"] = str(attempt)
        return self._client.build_request(
            "POST", self._post_url, content=body, headers=headers, timeout=httpx.Timeout(seconds)
        )


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


def _describe(exc: BaseException, timeout: float, *, tls: bool = False) -> str:
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
    if tls and ended_without_answer(exc):
        # A server that requires a client certificate and gets none either sends an alert or,
        # as often under TLS 1.3 (the client has already sent its request), just closes.
        return (
            f"the server ended the TLS connection during or right after the handshake ({cause}); "
            "a server that requires a client certificate (mutual TLS) does this when it gets none "
            "it trusts (cert_file, PROMETHEUS_REMOTE_WRITE_CERT_FILE)"
        )
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


# How a connection ends when the peer closes or resets it instead of answering
# (http.client.RemoteDisconnected is a ConnectionResetError).
_ENDED = (
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


def ended_without_answer(exc: BaseException) -> bool:
    """Tell whether the server closed or reset the connection without a word (no answer, no TLS alert).

    Over https, on a fresh connection, that is what a server does that drops the handshake, or
    ends the connection just after it (TLS 1.3 servers check the client certificate only then).
    """
    current: BaseException | None = exc
    for _ in range(20):  # bounded: chains can be cyclic in pathological code
        if current is None:
            return False
        if isinstance(current, _ENDED):
            return True
        if isinstance(current, ssl.SSLError):
            # An alert or another TLS failure says more than "ended"; OpenSSL 3 may report an
            # early EOF as a plain SSLError.
            return "unexpected eof" in str(current).lower()
        if isinstance(current, httpx.RemoteProtocolError) and "without sending a response" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
