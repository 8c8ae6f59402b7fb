"""The errors this package raises.

::

    Exception
     +-- RemoteWriteError                 base of everything raised here
          +-- ConfigurationError          a bad argument or environment variable (also a ValueError)
          +-- MissingDependencyError      protobuf or cramjam cannot be imported (also an ImportError)
          +-- EncodeError                 never raised (kept importable; see its docstring)
          +-- SpoolLockedError            another process owns the spool directory (names it)
          +-- SendError                   a push finally failed
               +-- ReceiverError          the receiver answered with an error status
               |    +-- RetryableReceiverError     5xx or 429; retried until the deadline
               |    +-- NonRetryableReceiverError  other 4xx; never retried
               +-- TransportError         no answer: refused, reset, TLS failure, timeout

Lower-level errors (httpx, ssl, OSError) are translated into these in one place,
``_http.errors``, and chained with ``raise ... from exc``; :func:`causes` walks such a chain
(the one walker every layer uses).
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "ConfigurationError",
    "EncodeError",
    "MissingDependencyError",
    "NonRetryableReceiverError",
    "ReceiverError",
    "RemoteWriteError",
    "RetryableReceiverError",
    "SendError",
    "SpoolLockedError",
    "TransportError",
    "causes",
]

_MAX_CHAIN = 20
"""Chained exceptions :func:`causes` follows at most: chains can be cyclic in pathological code."""


def causes(error: BaseException) -> Iterator[BaseException]:
    """Yield ``error``, then each exception chained under it (``__cause__``, else ``__context__``).

    Each exception comes once, and at most :data:`_MAX_CHAIN` of them: a chain that loops
    (code that re-raises an exception it caught under a later one) ends where it would repeat.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class RemoteWriteError(Exception):
    """Base class of every error raised by prometheus_rw_bridge."""


class ConfigurationError(RemoteWriteError, ValueError):
    """A setting is malformed; the message names it, its (masked) value and what is allowed."""


class MissingDependencyError(RemoteWriteError, ImportError):
    """An optional-at-runtime dependency cannot be imported."""

    def __init__(self, package: str, purpose: str, *, extra: str | None = None) -> None:
        self.package = package
        install = f"pip install 'prometheus-rw-bridge[{extra}]'" if extra else f"pip install {package}"
        super().__init__(
            f"{package} is required for {purpose} but cannot be imported; install it with: {install}"
        )


class EncodeError(RemoteWriteError):
    """Reserved; nothing raises it.

    Encoding never fails as a whole: a sample, series or family that cannot be encoded is
    dropped and logged (once per family and problem), and the rest is sent, so that one bad
    metric never costs an application its push.  The name stays importable so that code
    written against earlier versions (``except EncodeError``) keeps working.
    """


class SpoolLockedError(RemoteWriteError):
    """The spool directory is locked by another process, or by another spool in this one.

    One process owns a spool at a time: two writers would interleave their records and
    replay each other's data.  Give each process its own ``spool_dir``.

    Attributes:
        directory: the spool directory.
        pid: the process that holds it, as it recorded itself in the lock file, if known.
    """

    def __init__(self, directory: str, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = pid
        holder = f"another process (pid {pid})" if pid else "another process"
        super().__init__(
            f"spool directory {directory} is in use by {holder}; a spool belongs to one process "
            "at a time: give each process its own spool_dir"
        )


class SendError(RemoteWriteError):
    """A push did not reach the receiver, or the receiver refused it."""


class ReceiverError(SendError):
    """The receiver answered with an error status.

    Attributes:
        status_code: the HTTP status.
        message: the receiver's response body (truncated), verbatim.
        url: the endpoint, with any credentials removed.
    """

    def __init__(self, status_code: int, message: str, url: str) -> None:
        self.status_code = status_code
        self.message = message
        self.url = url
        super().__init__(
            f"{url} answered {status_code}: {message}" if message else f"{url} answered {status_code}"
        )


class RetryableReceiverError(ReceiverError):
    """A 5xx or 429 answer: worth retrying.

    Attributes:
        retry_after: the receiver's ``Retry-After``, in seconds, if it sent one.
    """

    retry_after: float | None = None


class NonRetryableReceiverError(ReceiverError):
    """A 4xx answer other than 429: the request itself is wrong and is never retried."""


class TransportError(SendError):
    """No HTTP answer: connection refused or reset, TLS failure, or timeout."""
