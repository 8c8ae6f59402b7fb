"""The auth classes of the basic schemes: basic auth and bearer tokens, their secrets kept in files.

What httpx already does (basic auth from a pair) is used as is; this module and its siblings add
what it lacks (``client.auth_of`` picks the one an endpoint's settings ask for):

* :class:`BearerTokenAuth` and :class:`FileBasicAuth` re-read their secret file when it changes
  (another inode, mtime or size), so rotated tokens work without a restart;
* ``sigv4.SigV4Auth`` signs each request with botocore's SigV4 signer (the ``aws`` extra),
  as the credential chain's identity or as an assumed role;
* ``oauth2.OAuth2Auth`` fetches, caches and refreshes an OAuth2 client-credentials token;
* ``auth=`` passes any ``httpx.Auth`` of the user's through as it is.

Each has a ``secrets()`` method naming the values it has sent, so the transport can mask them
wherever they come back.  Secrets never appear in reprs, log records or exception messages.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Generator

import httpx

from .._exceptions import ConfigurationError
from .._redact import MASK, basic_auth_secrets

__all__ = ["BasicAuth", "BearerTokenAuth", "FileBasicAuth", "SecretFile"]

logger = logging.getLogger(__name__)


class SecretFile:
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
        self._file = SecretFile(token_file, "bearer token file") if token_file is not None else None

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
        self._file = SecretFile(password_file, "password file")

    def __repr__(self) -> str:
        return f"FileBasicAuth(username={self._username!r}, password_file={self._file.path!r})"

    def secrets(self) -> tuple[str, ...]:
        """The values this auth has sent, so they can be masked wherever they come back."""
        password = self._file.last_value
        return basic_auth_secrets(self._username, password) if password else ()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield from httpx.BasicAuth(self._username, self._file.read()).auth_flow(request)
