"""One remote-write endpoint over HTTP: the transport interface and its httpx implementation.

:class:`Transport` is the seam the delivery layer talks to: one ``send()`` of a compressed body
that returns a :class:`SendResult` or raises a ``SendError``, and ``close()``.  Tests and users
may pass anything that has that shape.

``HttpxTransport.send`` makes exactly one POST through an ``httpx.Client`` (its own, or one the
user gave, whose TLS, proxy and pool settings then apply) and adds, per request, what the
bridge owns: the protocol's headers, the endpoint's headers and tenant, and its auth.  What
can go wrong becomes the package's error tree in ``errors``: 5xx and 429
``RetryableReceiverError``, other non-2xx answers ``NonRetryableReceiverError``, failures
without an answer (refused, reset, TLS, timeout) ``TransportError``.  Whether and when to try
again is the retry loop's business.

Credentials never leave this module in text: the URL's ``user:password@`` becomes basic auth
and is stripped from ``HttpxTransport.url``; error messages (and the errors chained under
them), reprs, and the records httpx, httpcore and botocore log while a request is sent are
scrubbed of every secret the request carried (``_redact``): the configured ones, those an auth
reports, and the value of every secret-looking header the request went out with, whoever
(our auth, the client's own auth or default headers) set it.
"""

from __future__ import annotations

import codecs
import hashlib
import ssl
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .._config.pairs import parse_headers
from .._config.parse import parse_url
from .._exceptions import ConfigurationError, TransportError
from .._protocol.headers import headers_for
from .._redact import header_secrets, masking_logs, safe_url, secret_forms, userinfo_secrets
from .auth import BasicAuth
from .errors import (
    DEFAULT_TRUST_STORE,
    MAX_MESSAGE_LENGTH,
    read_limited,
    receiver_error,
    transport_error,
    written_count,
)

__all__ = ["MAX_MESSAGE_LENGTH", "HttpxTransport", "SendResult", "Transport"]

_SAMPLES_WRITTEN = "X-Prometheus-Remote-Write-Samples-Written"
_HISTOGRAMS_WRITTEN = "X-Prometheus-Remote-Write-Histograms-Written"
_EXEMPLARS_WRITTEN = "X-Prometheus-Remote-Write-Exemplars-Written"

_GIVEN_CLIENT_TRUST = "the trust settings of the given http_client (its verify=)"


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
        client: an ``httpx.Client`` to send through (its TLS, proxy, pool settings, default
            headers and auth apply; ours are added on top).  By default the transport creates
            one (no redirects, ``timeout``) and owns it.
        timeout: seconds allowed per request, for connecting and for each read and write; it
            applies to every request, whichever client sends it.
        headers: extra headers for every request (for example ``X-Scope-OrgID``); the
            protocol's reserved headers are refused (``_config.pairs.RESERVED_HEADERS``).
        remote_name: a name for logs and self-metrics; by default 6 hex digits hashed from
            the displayed URL, like Prometheus's unnamed remotes.
        auth: an ``httpx.Auth`` (for example a bearer token re-read from a file) or a
            ``(username, password)`` pair, used instead of the client's own auth; not allowed
            together with credentials in ``url``.
        owns_client: whether :meth:`close` closes ``client``; by default only a client the
            transport created itself.
        secrets: further strings the requests carry (a proxy's password, say), masked like
            the others wherever they would show.
        trust_store: what the client checks server certificates against, in words, for the
            message of a failed verification.

    Raises:
        ConfigurationError: ``url``, ``timeout``, ``headers`` or ``client`` is malformed; the
            message names it and masks secrets.

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
        secrets: Iterable[str] = (),
        trust_store: str | None = None,
    ) -> None:
        url = _validate_url(url)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if client is not None and not isinstance(client, httpx.Client):
            raise ConfigurationError(
                f"http_client must be an httpx.Client (a synchronous one), got {type(client).__name__}"
            )
        bare, credentials = _split_credentials(url)
        if credentials is not None and auth is not None:
            raise ConfigurationError(
                f"url={safe_url(url)!r} carries credentials and auth is also given; use one of them"
            )
        if credentials is not None:
            auth = credentials
        if isinstance(auth, tuple):
            auth = BasicAuth(str(auth[0]), str(auth[1]))
        self._post_url = bare
        self._auth: httpx.Auth | None = auth
        self._user_headers = dict(parse_headers(headers or {}, "headers"))
        self._secrets = (*userinfo_secrets(url), *secrets, *header_secrets(self._user_headers))
        self.url = safe_url(url)
        self.remote_name = remote_name if remote_name else _short_hash(self.url)
        self.timeout = float(timeout)
        self._owns_client = client is None if owns_client is None else owns_client
        if trust_store is None:
            trust_store = DEFAULT_TRUST_STORE if client is None else _GIVEN_CLIENT_TRUST
        self._trust_store = trust_store
        self._client = client if client is not None else httpx.Client(timeout=timeout, follow_redirects=False)

    def __repr__(self) -> str:
        return f"HttpxTransport(url={self.url!r}, remote_name={self.remote_name!r})"

    def __enter__(self) -> HttpxTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this transport owns it (idempotent); a given client is left open."""
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
        sent: list[str] = []  # the secret header values of every request this send makes

        def secrets() -> tuple[str, ...]:
            return self._known_secrets(sent)

        # httpx logs the URL of every request at INFO, httpcore and botocore more at DEBUG.
        with masking_logs(secrets):
            try:
                request = self._request(body, protocol, attempt, seconds)
                sent.extend(header_secrets(request.headers.items()))
                response = self._client.send(
                    request, auth=self._auth_noting(sent), follow_redirects=False, stream=True
                )
                try:
                    raw = read_limited(response)  # to its end, mostly: the connection is kept
                finally:
                    response.close()
            except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
                via = self._other_request_url(exc)
                raise transport_error(
                    exc, self.url, seconds, secrets(), trust_store=self._trust_store, via=via
                ) from exc
            except RuntimeError as exc:
                if not self._client.is_closed:
                    raise
                raise TransportError(f"cannot send to {self.url}: its http_client has been closed") from exc
        if response.is_success:
            return SendResult(
                status_code=response.status_code,
                samples_written=written_count(response.headers, _SAMPLES_WRITTEN),
                histograms_written=written_count(response.headers, _HISTOGRAMS_WRITTEN),
                exemplars_written=written_count(response.headers, _EXEMPLARS_WRITTEN),
            )
        raise receiver_error(response, raw, self.url, secrets())

    def warm_up(self) -> None:
        """Run now, in the calling thread, the steps of a first ``send()`` that may import modules.

        A thread that imports holds the module's import lock, and a fork at that moment leaves
        the lock held in the child for ever (docs/architecture.md, "Forks"), so the threads
        that call ``send()`` must find everything imported.  This builds a request as ``send()``
        does, runs the auth on it (a SigV4 signature, a token or password file read) and looks
        up the IDNA codec, with which ``socket.getaddrinfo`` and ``ssl`` encode every host
        name.  An auth whose first step would wait on the network (an OAuth2 token, an assumed
        role) has a ``warm_up()`` of its own, which does the same without sending.  Nothing is
        sent; an auth that fails here is left for ``send()`` to report.
        """
        request = self._request(b"", "1.0", 1, self.timeout)
        codecs.lookup("idna")
        auth = self._effective_auth()
        if auth is None:
            return
        # Signing logs what send() would log (botocore's canonical request): mask it the same way.
        with masking_logs(self._known_secrets):
            # An auth whose first step would wait on the network says how to warm it up.
            warm_up: Callable[[], object] | None = getattr(auth, "warm_up", None)
            flow = None if callable(warm_up) else auth.sync_auth_flow(request)
            try:
                if flow is None and warm_up is not None:
                    warm_up()
                elif flow is not None:
                    next(flow)
            except Exception:  # an unreadable token file, say: send() reports it
                pass
            finally:
                if flow is not None:
                    flow.close()

    def _other_request_url(self, exc: BaseException) -> str | None:
        """The displayable URL of the request ``exc`` is about, if not ours (the auth made it)."""
        try:
            failed = exc.request if isinstance(exc, httpx.RequestError) else None
        except RuntimeError:  # no request attached
            return None
        if failed is None or failed.url == httpx.URL(self._post_url):
            return None
        return safe_url(str(failed.url))

    def _effective_auth(self) -> httpx.Auth | None:
        """The auth a request gets: ours, else the client's own."""
        return self._auth if self._auth is not None else self._client.auth

    def _auth_noting(self, sent: list[str]) -> Any:
        """The auth argument for ``client.send`` that notes, in ``sent``, the secrets each request carries."""
        auth = self._effective_auth()
        return httpx.USE_CLIENT_DEFAULT if auth is None else _NotingSecrets(auth, sent)

    def _known_secrets(self, sent: Iterable[str] = ()) -> tuple[str, ...]:
        """Every secret a request of this transport carries, in every form it may be shown in.

        Asked again for each use: the auth may have read a rotated token meanwhile.
        """
        secrets_of = getattr(self._effective_auth(), "secrets", None)
        of_auth = secrets_of() if callable(secrets_of) else ()
        return secret_forms((*self._secrets, *of_auth, *sent))

    def _request(self, body: bytes, protocol: str, attempt: int, seconds: float) -> httpx.Request:
        """Build the POST of one request body (auth is added when it is sent)."""
        headers = {**self._user_headers, **headers_for(protocol)}
        if attempt > 0:
            headers["Retry-Attempt"] = str(attempt)
        return self._client.build_request(
            "POST", self._post_url, content=body, headers=headers, timeout=httpx.Timeout(seconds)
        )


class _NotingSecrets(httpx.Auth):
    """Run another auth, noting the secret header values of every request its flow sends.

    They are masked in the records logged while the request is sent and in the receiver's
    answer: whatever the auth is (ours, the user's ``auth=``, the given client's own).
    """

    def __init__(self, inner: httpx.Auth, sent: list[str]) -> None:
        self._inner = inner
        self._sent = sent

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._inner.sync_auth_flow(request)
        try:
            request = next(flow)
            while True:
                self._sent.extend(header_secrets(request.headers.items()))
                response = yield request
                try:
                    request = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()
