"""When to try a failed push again, and how long to wait first.

The remote-write specs say: retry 5xx (MUST), 429 (MAY; we do), connection failures and
timeouts; never retry other 4xx; back off so a struggling receiver is not hammered.
``Retry-After`` (seconds or an HTTP date) is honoured as a floor, capped.

Everything here is pure or takes its clock and its wait as arguments, so tests drive it with
a fake clock and never sleep.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .._exceptions import (
    ConfigurationError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    SendError,
    TransportError,
)

__all__ = ["RetryPolicy", "retry_after_of", "send_with_retries"]

logger = logging.getLogger(__name__)

# 2**64 * max_backoff is far past any cap; bounding the exponent avoids float overflow.
_MAX_EXPONENT = 64


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with proportional jitter, and a cap on honoured ``Retry-After``.

    The defaults are Prometheus's ``queue_config`` defaults (``min_backoff: 30ms``,
    ``max_backoff: 5s``).  Before retry number ``n`` (``n >= 1``) the sender waits::

        base  = min(min_backoff * 2 ** (n - 1), max_backoff)
        delay = base * uniform(1 - jitter, 1 + jitter)
        delay = max(delay, min(retry_after, max_retry_after))   # when the receiver sent Retry-After

    so with the defaults a wait lies in ``[0.027 s, 5.5 s]``, or up to ``max_retry_after``
    (300 s) when the receiver asks for longer.  Jitter is proportional (not "full" jitter) so
    a retry never comes much sooner than the exponential schedule promises, while many
    processes restarted together still spread out by +-10 %.  ``Retry-After`` is a floor: a
    retry never comes sooner than the receiver asked, up to the cap.

    Attributes:
        min_backoff: the first wait, in seconds (``>= 0``).
        max_backoff: the largest exponential wait before jitter, in seconds (``>= min_backoff``).
        max_retry_after: the longest ``Retry-After`` honoured, in seconds (``>= 0``); a
            receiver asking for more gets this.
        jitter: the proportional jitter, ``0 <= jitter < 1``; ``0`` disables it.
    """

    min_backoff: float = 0.03
    max_backoff: float = 5.0
    max_retry_after: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        for name in ("min_backoff", "max_backoff", "max_retry_after", "jitter"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.max_backoff < self.min_backoff:
            raise ConfigurationError(
                f"max_backoff ({self.max_backoff!r}) must be >= min_backoff ({self.min_backoff!r})"
            )
        if self.jitter >= 1:
            raise ConfigurationError(f"jitter must be >= 0 and < 1, got {self.jitter!r}")

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Return the seconds to wait before retry number ``attempt``.

        Args:
            attempt: the retry about to be made: 1 for the first retry (values below 1 count as 1).
            retry_after: the receiver's ``Retry-After`` in seconds, if it sent one.
            rng: the random source for jitter; the module's by default.

        Returns:
            The wait, within the bounds given in the class docstring.
        """
        exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
        base = min(self.min_backoff * 2.0**exponent, self.max_backoff)
        if self.jitter:
            base *= (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None and retry_after > 0:
            base = max(base, min(retry_after, self.max_retry_after))
        return base


def retry_after_of(error: BaseException) -> float | None:
    """Return the parsed ``Retry-After`` carried by ``error``, if any."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None


_Result_co = TypeVar("_Result_co", covariant=True)


class Sender(Protocol[_Result_co]):
    """What ``send_with_retries`` needs from a transport (``HttpxTransport`` is one)."""

    @property
    def timeout(self) -> float:
        """The per-attempt timeout in seconds."""

    @property
    def url(self) -> str:
        """The endpoint, safe to display."""

    def send(
        self, body: bytes, *, protocol: str = ..., attempt: int = ..., timeout: float | None = ...
    ) -> _Result_co:
        """Send once; raise a ``SendError`` on failure."""


def _sleep(seconds: float) -> bool:
    """Wait ``seconds``; never asks to stop."""
    time.sleep(seconds)
    return False


def send_with_retries(
    transport: Sender[_Result_co],
    body: bytes,
    *,
    protocol: str = "1.0",
    deadline: float | None,
    policy: RetryPolicy = RetryPolicy(),  # frozen, so one shared default is safe
    clock: Callable[[], float] = time.monotonic,
    wait: Callable[[float], bool] = _sleep,
    on_retry: Callable[[int, SendError, float], None] | None = None,
    rng: random.Random | None = None,
) -> _Result_co:
    """Send ``body``, retrying failures that may succeed later, until ``deadline``.

    Retried: ``RetryableReceiverError`` (5xx, 429) and ``TransportError`` (refused, reset,
    TLS, timeout).  ``NonRetryableReceiverError`` (other 4xx) is raised at once: resending
    a request the receiver called invalid can never succeed.

    Args:
        transport: a ``HttpxTransport`` (or anything with the same ``send``, ``timeout`` and ``url``).
        body: the compressed request body.
        protocol: ``"1.0"`` or ``"2.0"``, passed to ``transport.send``.
        deadline: absolute time, in ``clock()`` units, after which no attempt starts and no
            attempt runs (each attempt's timeout is cut to the time left); None retries forever.
        policy: the backoff schedule.
        clock: monotonic time source.
        wait: ``wait(seconds)`` waits and returns True if the caller wants to stop early
            (``threading.Event().wait`` fits); the default sleeps.
        on_retry: called as ``on_retry(retry_number, error, delay)`` before each wait, for
            logging and self-metrics.
        rng: random source for jitter.

    Returns:
        What ``transport.send`` returned (a ``SendResult`` for a ``HttpxTransport``).

    Raises:
        NonRetryableReceiverError: the receiver refused the request; never retried.
        RetryableReceiverError: the last error, when the deadline passed or ``wait`` asked to stop.
        TransportError: likewise, when the last failure got no answer at all.
    """
    attempt = 0
    error: SendError | None = None
    while True:
        timeout = transport.timeout
        if deadline is not None:
            remaining = deadline - clock()
            if remaining <= 0:
                if error is not None:
                    raise error
                raise TransportError(f"no time left to send to {transport.url}: the deadline had passed")
            timeout = min(timeout, remaining)
        try:
            return transport.send(body, protocol=protocol, attempt=attempt, timeout=timeout)
        except NonRetryableReceiverError:
            raise
        except (RetryableReceiverError, TransportError) as exc:
            error = exc
        attempt += 1
        delay = policy.delay(attempt, retry_after_of(error), rng)
        if deadline is not None and clock() + delay >= deadline:
            logger.debug("giving up on %s: next retry would pass the deadline", transport.url)
            raise error
        if on_retry is not None:
            on_retry(attempt, error, delay)
        if wait(delay):
            raise error
