"""What went wrong, in words: httpx, ssl and OS errors and receivers' answers as the package's errors.

The one place where lower-level errors become the error tree of ``_exceptions``:

* an answer other than 2xx: 5xx and 429 become ``RetryableReceiverError`` (with the parsed
  ``Retry-After``), every other status ``NonRetryableReceiverError``, with the receiver's
  message verbatim but cut, and every secret the request carried masked;
* no answer (refused, reset, TLS, timeout): ``TransportError``, saying why in a few words, and
  which trust store a certificate was checked against.

Pure functions: the transport hands in what it knows (the secrets, the timeout, the trust
store), and gets the error to raise.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable

import httpx

from .._exceptions import (
    NonRetryableReceiverError,
    ReceiverError,
    RetryableReceiverError,
    TransportError,
    causes,
)
from .._redact import safe_url, scrub, scrub_exception_chain
from .retry_after import retry_after_from_headers

__all__ = [
    "DEFAULT_TRUST_STORE",
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_LENGTH",
    "ended_without_answer",
    "read_limited",
    "receiver_error",
    "transport_error",
    "written_count",
]

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 512
"""Characters of a receiver's error body kept in an exception message."""

# Read at most this much of any response body: the spec says senders ignore 2xx bodies, and
# an error message is cut to MAX_MESSAGE_LENGTH characters anyway.
MAX_BODY_BYTES = 4 * MAX_MESSAGE_LENGTH

DEFAULT_TRUST_STORE = "the default trust store (set ca_file or PROMETHEUS_REMOTE_WRITE_CA_FILE)"
"""What a client of the library's own, without ``ca_file``, checks server certificates against."""


def read_limited(response: httpx.Response) -> bytes:
    """Read up to :data:`MAX_BODY_BYTES` of a streamed response body."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


def written_count(headers: httpx.Headers, name: str) -> int | None:
    """Parse one ``X-Prometheus-Remote-Write-*-Written`` header; a malformed value counts as absent."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        logger.debug("ignoring malformed %s header %r", name, value)
        return None


def receiver_error(response: httpx.Response, raw: bytes, url: str, secrets: Iterable[str]) -> ReceiverError:
    """Return the error for a non-2xx answer whose body began with ``raw``, every secret masked.

    Args:
        response: the answer (its status and headers).
        raw: the start of its body (:func:`read_limited`).
        url: the endpoint, safe to display.
        secrets: every secret the request carried, in every form (``_redact.secret_forms``):
            careless receivers quote the ``Authorization`` header back.
    """
    message = scrub(_message(raw, response), secrets)
    status = response.status_code
    if status >= 500 or status == 429:
        error = RetryableReceiverError(status, message, url)
        error.retry_after = retry_after_from_headers(response.headers)
        return error
    return NonRetryableReceiverError(status, message, url)


def _message(raw: bytes, response: httpx.Response) -> str:
    """Return the receiver's error body as text, verbatim but cut to ``MAX_MESSAGE_LENGTH``."""
    text = raw.decode(response.encoding or "utf-8", errors="replace").strip()
    if 300 <= response.status_code < 400 and not text:
        location = response.headers.get("Location")
        text = f"redirect to {safe_url(location)} not followed" if location else ""
    if len(text) > MAX_MESSAGE_LENGTH:
        text = text[: MAX_MESSAGE_LENGTH - 3] + "..."
    return text


def transport_error(
    exc: BaseException,
    url: str,
    timeout: float,
    secrets: Iterable[str],
    *,
    trust_store: str,
    via: str | None = None,
) -> TransportError:
    """Return the ``TransportError`` for a request that got no answer, to raise ``from exc``.

    The errors chained under ``exc`` are scrubbed in place too: a traceback prints them under
    ours, and httpx's or h11's may quote what was sent (``Illegal header value b'...'``).

    Args:
        exc: what httpx (or ssl, or the OS) raised.
        url: the endpoint, safe to display.
        timeout: the request's timeout in seconds, to say what ran out.
        secrets: every secret the request carried, in every form.
        trust_store: what the server's certificate was checked against, in words.
        via: the URL of the request that failed, when the auth made it (a token endpoint's).
    """
    secrets = tuple(secrets)
    tls = (via or url).startswith("https:")
    why = _describe(exc, timeout, tls, trust_store)
    if via is not None:
        why = f"its auth's request to {via} failed: {why}"
    message = scrub(f"cannot send to {url}: {why}", secrets)
    scrub_exception_chain(exc, secrets)
    return TransportError(message)


_TIMEOUTS: tuple[tuple[type[httpx.TimeoutException], str], ...] = (
    (httpx.ConnectTimeout, "connecting timed out after {:g}s"),
    (httpx.ReadTimeout, "no response within {:g}s"),
    (httpx.WriteTimeout, "sending the body timed out after {:g}s"),
    (httpx.PoolTimeout, "no free connection within {:g}s"),
)


def _describe(exc: BaseException, timeout: float, tls: bool, trust_store: str) -> str:
    """Say in a few words why no answer came; never includes request headers."""
    for kind, words in _TIMEOUTS:
        if isinstance(exc, kind):
            return words.format(timeout)
    chain = list(causes(exc))
    cause = next((e for e in chain if isinstance(e, ssl.SSLError)), chain[-1])
    if tls and ended_without_answer(exc):
        # A server that requires a client certificate and gets none either sends an alert or,
        # as often under TLS 1.3 (the client has already sent its request), just closes.
        return (
            f"the server ended the TLS connection during or right after the handshake ({cause}); "
            "a server that requires a client certificate (mutual TLS) does this when it gets none "
            "it trusts (cert_file, PROMETHEUS_REMOTE_WRITE_CERT_FILE)"
        )
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or cause.reason or cause
        return f"TLS certificate verification failed: {reason}; checked against {trust_store}"
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


# How a connection ends when the peer closes or resets it instead of answering.
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
    for current in causes(exc):
        if isinstance(current, _ENDED):
            return True
        if isinstance(current, ssl.SSLError):
            # An alert or another TLS failure says more than "ended"; OpenSSL 3 may report an
            # early EOF as a plain SSLError.
            return "unexpected eof" in str(current).lower()
        if isinstance(current, httpx.RemoteProtocolError) and "without sending a response" in str(current):
            return True
    return False
