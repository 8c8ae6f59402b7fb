"""The auth of one endpoint: the ``httpx.Auth`` its settings ask for, added to each request.

What httpx already does (basic auth from a pair) is used as is; this module adds what it lacks:

* :class:`BearerTokenAuth` and :class:`FileBasicAuth` re-read their secret file when it changes
  (another inode, mtime or size), so rotated tokens work without a restart;
* :class:`SigV4Auth` signs each request with botocore's SigV4 signer (the ``aws`` extra).

Each has a ``secrets()`` method naming the values it has sent, so the transport can mask them
wherever they come back.  Secrets never appear in reprs, log records or exception messages.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Generator
from typing import Any

import httpx

from .._config.settings import EndpointSettings
from .._exceptions import ConfigurationError, MissingDependencyError
from .._redact import MASK, basic_auth_secrets

__all__ = ["BasicAuth", "BearerTokenAuth", "FileBasicAuth", "SigV4Auth", "auth_of"]

logger = logging.getLogger(__name__)


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


class BasicAuth(httpx.BasicAuth):
    """httpx's basic auth, which also names its secrets so that they can be masked.

    Args:
        username: the user name.
        password: the password.
    """

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        self._secrets = basic_auth_secrets(username, password)
        self._username = username

    def __repr__(self) -> str:
        return f"BasicAuth(username={self._username!r}, password={MASK!r})"

    def secrets(self) -> tuple[str, ...]:
        """The password and the ``Basic`` credential, so they can be masked wherever they come back."""
        return self._secrets


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


def auth_of(endpoint: EndpointSettings) -> httpx.Auth | None:
    """Return the httpx auth the endpoint's settings ask for, or None for none.

    Raises:
        ConfigurationError: SigV4 finds no region or no credentials.
        MissingDependencyError: SigV4 is asked for and botocore is not installed.
    """
    if endpoint.sigv4:
        return SigV4Auth(region=endpoint.sigv4_region)
    if endpoint.bearer_token is not None or endpoint.bearer_token_file is not None:
        return BearerTokenAuth(endpoint.bearer_token, token_file=endpoint.bearer_token_file)
    if endpoint.password_file is not None:
        return FileBasicAuth(endpoint.username or "", endpoint.password_file)
    if endpoint.username is not None:
        return BasicAuth(endpoint.username, endpoint.password or "")
    return None
