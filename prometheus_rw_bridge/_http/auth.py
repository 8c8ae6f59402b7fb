"""The HTTP client of one endpoint: auth, TLS, proxy, timeout and headers, all through httpx.

:func:`make_client` turns an :class:`~prometheus_rw_bridge._config.EndpointSettings` into an
``httpx.Client``.  What httpx already does (basic auth, proxies, timeouts, client certificates
through an ``ssl.SSLContext``) is used as is; this module only adds what it lacks:

* :class:`BearerTokenAuth` and :class:`FileBasicAuth` re-read their secret file when it changes
  (another inode, mtime or size), so rotated tokens work without a restart;
* :class:`SigV4Auth` signs each request with botocore's SigV4 signer (the ``aws`` extra);
* a certificate that fails verification is reported with the CA file it was checked against;
* an error answer that echoes a secret the client sent (some receivers quote the Authorization
  header) has it masked before anyone can log it.

Secrets never appear in reprs, log records or exception messages.
"""

from __future__ import annotations

import inspect
import logging
import os
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx

from .._config.settings import EndpointSettings
from .._exceptions import ConfigurationError, MissingDependencyError
from .._redact import (
    MASK,
    basic_auth_secrets,
    is_secret_header,
    masking_logs,
    safe_url,
    secret_forms,
    url_secrets,
)
from .http11 import direct_transport

__all__ = ["BearerTokenAuth", "FileBasicAuth", "SigV4Auth", "make_client", "make_ssl_context"]

logger = logging.getLogger(__name__)

# httpx 0.26 added ``proxy=``; 0.28 removed ``proxies=``.
_PROXY_KWARG = "proxy" if "proxy" in inspect.signature(httpx.Client.__init__).parameters else "proxies"


class _SecretFile:
    """A secret kept in a file, re-read whenever the file changes."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self._what = what
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._value: str | None = None
        self._failing = False

    def read(self) -> str:
        """Return the file's content without surrounding whitespace.

        Raises:
            OSError: the file cannot be read (or is empty) and was never read before.
        """
        with self._lock:
            try:
                stat = os.stat(self.path)
                stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                if stamp != self._stamp or self._value is None:
                    with open(self.path, encoding="utf-8") as file:
                        value = file.read().strip()
                    if not value:
                        raise OSError(0, "the file is empty")
                    self._value, self._stamp = value, stamp
                self._failing = False
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                if self._value is None:
                    raise OSError(
                        getattr(exc, "errno", 0) or 0, f"{self._what} {self.path!r} cannot be read: {reason}"
                    ) from None
                if not self._failing:
                    self._failing = True
                    logger.warning(
                        "cannot re-read %s %r (%s); still using the value read before",
                        self._what,
                        self.path,
                        reason,
                    )
            return self._value

    @property
    def last_value(self) -> str | None:
        """The value read last, if any (for scrubbing)."""
        return self._value


class BearerTokenAuth(httpx.Auth):
    """``Authorization: Bearer <token>``, the token given or read from a file on each request.

    The file is re-read only when it changed (inode, mtime or size), so a rotated token (for
    example a Kubernetes projected service-account token) is picked up on the next request.

    Args:
        token: the token itself.
        token_file: a file holding the token (surrounding whitespace ignored).
    """

    def __init__(self, token: str | None = None, *, token_file: str | None = None) -> None:
        if (token is None) == (token_file is None):
            raise ConfigurationError("BearerTokenAuth needs exactly one of token and token_file")
        self._token = token
        self._file = _SecretFile(token_file, "bearer token file") if token_file is not None else None

    def __repr__(self) -> str:
        source = f"token_file={self._file.path!r}" if self._file is not None else f"token={MASK!r}"
        return f"BearerTokenAuth({source})"

    def secrets(self) -> tuple[str, ...]:
        """The values this auth has sent, so they can be masked wherever they come back."""
        token = self._file.last_value if self._file is not None else self._token
        return (token,) if token else ()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._file.read() if self._file is not None else self._token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class FileBasicAuth(httpx.Auth):
    """HTTP basic auth whose password is read from a file, re-read when the file changes.

    Args:
        username: the user name.
        password_file: a file holding the password (surrounding whitespace ignored).
    """

    def __init__(self, username: str, password_file: str) -> None:
        self._username = username
        self._file = _SecretFile(password_file, "password file")

    def __repr__(self) -> str:
        return f"FileBasicAuth(username={self._username!r}, password_file={self._file.path!r})"

    def secrets(self) -> tuple[str, ...]:
        """The values this auth has sent, so they can be masked wherever they come back."""
        password = self._file.last_value
        return basic_auth_secrets(self._username, password) if password else ()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield from httpx.BasicAuth(self._username, self._file.read()).auth_flow(request)


# Headers a proxy or the HTTP stack may change or drop; signing them would break the signature.
_UNSIGNED_HEADERS = frozenset(
    {"accept", "accept-encoding", "connection", "expect", "transfer-encoding", "user-agent"}
)


class SigV4Auth(httpx.Auth):
    """AWS Signature Version 4 on each request, signed by botocore (the ``aws`` extra).

    Credentials come from botocore's usual chain (environment, profile, SSO, instance or task
    role) and are refreshed by botocore when they expire.

    Args:
        region: the AWS region; by default botocore's configured region.
        service: the signing name; ``aps`` for Amazon Managed Service for Prometheus.
        credentials: botocore credentials to use instead of the default chain.

    Raises:
        MissingDependencyError: botocore is not installed.
        ConfigurationError: no region or no credentials can be found.
    """

    requires_request_body = True

    def __init__(self, *, region: str | None = None, service: str = "aps", credentials: Any = None) -> None:
        try:
            import botocore.auth
            import botocore.awsrequest
            import botocore.session
        except ImportError as exc:
            raise MissingDependencyError("botocore", "SigV4 signing", extra="aws") from exc
        self._signer_class = botocore.auth.SigV4Auth
        self._request_class = botocore.awsrequest.AWSRequest
        session = botocore.session.get_session() if credentials is None or region is None else None
        self.region = region or (session.get_config_variable("region") if session is not None else None)
        if not self.region:
            raise ConfigurationError(
                "sigv4_region: no AWS region given and none configured; set sigv4_region, "
                "PROMETHEUS_REMOTE_WRITE_SIGV4_REGION or AWS_REGION"
            )
        self.service = service
        self._credentials = credentials if credentials is not None else session.get_credentials()  # type: ignore[union-attr]
        if self._credentials is None:
            raise ConfigurationError(
                "sigv4: no AWS credentials found (environment, shared config/credentials file, "
                "SSO, or instance/task role)"
            )

    def __repr__(self) -> str:
        return f"SigV4Auth(region={self.region!r}, service={self.service!r})"

    def secrets(self) -> tuple[str, ...]:
        """The secret key and session token, so they can be masked wherever they come back."""
        credentials = self._credentials
        if hasattr(credentials, "get_frozen_credentials"):
            credentials = credentials.get_frozen_credentials()
        return tuple(v for v in (credentials.secret_key, credentials.token) if v)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        credentials = self._credentials
        if hasattr(credentials, "get_frozen_credentials"):
            credentials = credentials.get_frozen_credentials()
        signed = self._request_class(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={k: v for k, v in request.headers.items() if k.lower() not in _UNSIGNED_HEADERS},
        )
        self._signer_class(credentials, self.service, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request


def make_ssl_context(endpoint: EndpointSettings) -> ssl.SSLContext | bool:
    """Return the ``verify`` argument for httpx: ``True`` (httpx's default) or a context.

    Raises:
        ConfigurationError: the CA file, certificate or key cannot be loaded; names the file.
    """
    if not (endpoint.ca_file or endpoint.cert_file or endpoint.insecure_skip_verify):
        return True
    if endpoint.ca_file:
        try:
            context = ssl.create_default_context(cafile=endpoint.ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(
                f"ca_file {endpoint.ca_file!r} is not valid: expected PEM CA certificates ({exc})"
            ) from None
    else:
        context = httpx.create_ssl_context()  # the trust store httpx uses by default
    if endpoint.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if endpoint.cert_file:
        try:
            context.load_cert_chain(endpoint.cert_file, endpoint.key_file)
        except (ssl.SSLError, OSError) as exc:
            files = f"cert_file {endpoint.cert_file!r}" + (
                f" and key_file {endpoint.key_file!r}" if endpoint.key_file else ""
            )
            raise ConfigurationError(
                f"{files} are not valid: expected a PEM client certificate and its unencrypted key ({exc})"
            ) from None
    return context


def _auth_of(endpoint: EndpointSettings) -> httpx.Auth | None:
    """Return the httpx auth the endpoint's settings ask for."""
    if endpoint.sigv4:
        return SigV4Auth(region=endpoint.sigv4_region)
    if endpoint.bearer_token is not None or endpoint.bearer_token_file is not None:
        return BearerTokenAuth(endpoint.bearer_token, token_file=endpoint.bearer_token_file)
    if endpoint.password_file is not None:
        return FileBasicAuth(endpoint.username or "", endpoint.password_file)
    if endpoint.username is not None:
        return httpx.BasicAuth(endpoint.username, endpoint.password or "")
    return None


# Error bodies are read at most this far when masking echoed secrets in them.
_MAX_SCRUBBED_BODY = 64 * 1024


class _ScrubbedStream(httpx.SyncByteStream):
    """An error response body with every secret the client sent replaced by ``***``."""

    def __init__(self, inner: httpx.SyncByteStream, secrets: list[bytes]) -> None:
        self._inner = inner
        self._secrets = secrets

    def __iter__(self) -> Iterator[bytes]:
        # A receiver may echo the Authorization header or a token in its error message, which
        # callers log verbatim; mask it here, where every secret sent is known.
        body = bytearray()
        for chunk in self._inner:
            body += chunk
            if len(body) >= _MAX_SCRUBBED_BODY:
                break
        data = bytes(body[:_MAX_SCRUBBED_BODY])
        for secret in self._secrets:
            data = data.replace(secret, MASK.encode())
        yield data

    def close(self) -> None:
        self._inner.close()


class _Client(httpx.Client):
    """An ``httpx.Client`` that never hands back a secret it sent, and names the CA it checked against.

    A non-2xx answer's body has every secret this client sends (password, token, Basic
    credential, secret-looking header values, AWS keys) masked.  A certificate that fails
    verification is reported with the CA file (or the default trust store) it was checked against.
    """

    def __init__(self, endpoint: EndpointSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ca_file = endpoint.ca_file
        static: list[str] = [v for n, v in endpoint.request_headers.items() if is_secret_header(n) and v]
        if endpoint.bearer_token:
            static.append(endpoint.bearer_token)
        if endpoint.password:
            static.extend(basic_auth_secrets(endpoint.username or "", endpoint.password))
        if endpoint.proxy:
            static.extend(_proxy_secrets(endpoint.proxy))
        self._static_secrets = tuple(static)

    def known_secrets(self) -> tuple[str, ...]:
        """Every secret this client sends, longest first (rotated file values included)."""
        secrets_of = getattr(self.auth, "secrets", None)
        return secret_forms((*self._static_secrets, *(secrets_of() if callable(secrets_of) else ())))

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        def secrets() -> tuple[str, ...]:
            return (*self.known_secrets(), *secret_forms(url_secrets(str(request.url))))

        with masking_logs(secrets):
            return self._send(request, secrets, **kwargs)

    def _send(
        self, request: httpx.Request, secrets: Callable[[], tuple[str, ...]], **kwargs: Any
    ) -> httpx.Response:
        stream = kwargs.pop("stream", False)
        try:
            response = super().send(request, stream=True, **kwargs)
        except httpx.ConnectError as exc:
            cause = _verification_error(exc)
            if cause is None:
                raise
            where = (
                f"CA file {self.ca_file}"
                if self.ca_file
                else "the default trust store (set ca_file or PROMETHEUS_REMOTE_WRITE_CA_FILE)"
            )
            # Keep the cause an SSLCertVerificationError so callers that look for it still find it.
            explained = ssl.SSLCertVerificationError(*cause.args)
            explained.reason = cause.reason
            explained.library = cause.library
            explained.verify_code = cause.verify_code
            explained.verify_message = f"{cause.verify_message}; checked against {where}"
            raise httpx.ConnectError(
                f"{exc}; the server certificate was checked against {where}", request=request
            ) from explained
        if not response.is_success and isinstance(response.stream, httpx.SyncByteStream):
            known = [secret.encode() for secret in secrets()]
            if known:
                response.stream = _ScrubbedStream(response.stream, known)
        if not stream:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response


def _proxy_secrets(proxy: str) -> tuple[str, ...]:
    """The proxy URL's password and the ``Proxy-Authorization`` credential httpx makes of it."""
    userinfo, at, _ = urllib.parse.urlsplit(proxy).netloc.rpartition("@")
    if not at:
        return ()
    user, _, password = userinfo.partition(":")
    decoded = (urllib.parse.unquote(user), urllib.parse.unquote(password))
    return (*url_secrets(proxy), *basic_auth_secrets(*decoded))


def _verification_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """Return the certificate-verification error in ``exc``'s chain, if any."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 20:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def make_client(endpoint: EndpointSettings) -> httpx.Client:
    """Build the ``httpx.Client`` for one endpoint.

    The client carries the endpoint's auth, TLS settings, proxy, timeout and headers
    (``headers`` plus ``X-Scope-OrgID``); redirects are not followed.  The standard
    ``HTTPS_PROXY`` / ``NO_PROXY`` variables apply unless a proxy is configured.

    Args:
        endpoint: the resolved settings of the endpoint.

    Returns:
        A new client; the caller closes it.

    Raises:
        ConfigurationError: a TLS file cannot be loaded, or SigV4 finds no region/credentials.
        MissingDependencyError: SigV4 is asked for and botocore is not installed.
    """
    verify = make_ssl_context(endpoint)
    if endpoint.insecure_skip_verify:
        logger.warning(
            "TLS certificate verification is off for %s (insecure_skip_verify); use it for testing only",
            safe_url(endpoint.url),
        )
    kwargs: dict[str, Any] = {}
    if endpoint.proxy:
        kwargs[_PROXY_KWARG] = endpoint.proxy
    # Direct connections go through the lean http.client transport; a configured proxy mounts
    # httpx's own transport, built with the same ``verify``; environment proxies keep httpx's.
    context = verify if isinstance(verify, ssl.SSLContext) else None
    kwargs["transport"] = direct_transport(context, https=httpx.URL(endpoint.url).scheme == "https")
    return _Client(
        endpoint,
        auth=_auth_of(endpoint),
        headers=endpoint.request_headers,
        verify=verify,
        timeout=httpx.Timeout(endpoint.timeout),
        follow_redirects=False,
        **kwargs,
    )
