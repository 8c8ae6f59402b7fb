"""The one retry loop: send a request until it is answered, refused, or time is up.

The remote-write specs say: retry 5xx (MUST), 429 (MAY; we do), connection failures and
timeouts; never retry other 4xx; back off so a struggling receiver is not hammered.
``Retry-After`` (seconds or an HTTP date) is honoured as a floor, capped.

:func:`send_with_retries` is the loop; the background sender and ``push_to_remote_write`` both
call it.  It never raises for a failed send: it returns a :class:`Delivery` whose
:class:`Outcome` says what happened, and the caller decides what that costs (a counted drop, a
1.0 resend, an exception for the one-shot caller).  It takes its clock, its wait and its
deadline as arguments, so tests drive it with a fake clock and never sleep, and the sender's
shutdown can move the deadline while a retry waits.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._exceptions import (
    ConfigurationError,
    NonRetryableReceiverError,
    RetryableReceiverError,
    SendError,
    TransportError,
)

if TYPE_CHECKING:  # httpx is imported when the first transport is built, not at import time
    from .._http.transport import SendResult, Transport
    from .negotiate import Negotiator

__all__ = ["Delivery", "Outcome", "RetryHooks", "RetryPolicy", "retry_after_of", "send_with_retries"]

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


class Outcome(enum.Enum):
    """How one request's delivery ended."""

    SENT = "sent"
    """A 2xx answer (that, in ``auto`` mode, did not show a 1.0 receiver)."""
    REJECTED = "rejected"
    """A 4xx other than 413 and 429: the request is wrong and is never sent again."""
    TOO_LARGE = "too_large"
    """A 413: the receiver refuses requests this large; never sent again as it is."""
    FALLBACK = "fallback"
    """The receiver showed it does not speak 2.0 (``auto`` mode): send the same data as 1.0."""
    GAVE_UP = "gave_up"
    """The deadline came (or the wait was told to stop) before an answer that ends it."""
    TOO_OLD = "too_old"
    """The data passed its age limit before an answer that ends it: not sent, or not again."""


@dataclass(frozen=True)
class Delivery:
    """What :func:`send_with_retries` did with one request.

    Attributes:
        outcome: how it ended.
        result: the 2xx answer (``SENT``, and ``FALLBACK`` after a 2xx without 2.0 headers).
        error: the last failure: the refusal (``REJECTED``, ``TOO_LARGE``, ``FALLBACK`` after
            a 4xx) or the error that was being retried when time ran out (``GAVE_UP``).
        attempts: requests actually made.
        duration: seconds the last attempt took.
    """

    outcome: Outcome
    result: SendResult | None = None
    error: SendError | None = None
    attempts: int = 0
    duration: float = 0.0


class RetryHooks:
    """What the loop reports while it runs, for counters and logs; these defaults do nothing."""

    def attempt(self) -> None:
        """A request is about to be made."""

    def failed(self, error: SendError, retry: int, delay: float | None) -> None:
        """An attempt failed with a retryable ``error``; retry number ``retry`` follows after
        ``delay`` seconds, or none (``delay`` is None) because time is up."""


_NO_HOOKS = RetryHooks()
_DEFAULT_POLICY = RetryPolicy()  # frozen, so one shared default is safe


def _sleep(seconds: float) -> bool:
    """Wait ``seconds``; never asks to stop."""
    time.sleep(seconds)
    return False


def send_with_retries(
    transport: Transport,
    body: bytes,
    *,
    protocol: str = "1.0",
    deadline: float | Callable[[], float | None] | None = None,
    expires_at: float | Callable[[], float | None] | None = None,
    policy: RetryPolicy = _DEFAULT_POLICY,
    negotiator: Negotiator | None = None,
    clock: Callable[[], float] = time.monotonic,
    wait: Callable[[float], bool] = _sleep,
    hooks: RetryHooks = _NO_HOOKS,
    rng: random.Random | None = None,
) -> Delivery:
    """Send ``body``, retrying failures that may succeed later, until ``deadline``.

    Retried: ``RetryableReceiverError`` (5xx, 429) and ``TransportError`` (refused, reset,
    TLS, timeout).  Any other answer ends the loop at once: a 2xx is ``SENT``, a 413
    ``TOO_LARGE``, another 4xx ``REJECTED`` (resending a request the receiver called invalid
    can never succeed), and, with a ``negotiator``, an answer showing a 1.0 receiver
    ``FALLBACK``.  Retry ``n`` carries ``Retry-Attempt: n`` (the transport adds it).

    Args:
        transport: the endpoint (:class:`~prometheus_rw_bridge._http.transport.Transport`).
        body: the compressed request body.
        protocol: ``"1.0"`` or ``"2.0"``, passed to ``transport.send``.
        deadline: absolute time, in ``clock()`` units, after which no attempt starts and no
            attempt runs (each attempt's timeout is cut to the time left); a callable is asked
            again before every attempt and every wait, so a shutdown can set one; None
            retries for ever.
        expires_at: when the data becomes too old to send (``sample_age_limit``), in
            ``clock()`` units, or a callable asked likewise: no attempt starts after it and no
            wait runs past it (the outcome is then ``TOO_OLD``); an attempt under way is not
            cut short.
        policy: the backoff schedule.
        negotiator: for ``protocol="auto"``: told every answer; may ask for a 1.0 resend.
        clock: monotonic time source.
        wait: ``wait(seconds)`` waits and returns True if the caller wants to stop early
            (``threading.Event().wait`` fits); the default sleeps.
        hooks: told of every attempt and every retryable failure.
        rng: random source for jitter.

    Returns:
        The :class:`Delivery`: its outcome, the answer or the last error.
    """
    deadline_of = deadline if callable(deadline) else (lambda: deadline)
    expiry_of = expires_at if callable(expires_at) else (lambda: expires_at)
    attempt = 0
    error: SendError | None = None
    while True:
        timeout = transport.timeout
        now, end, expiry = clock(), deadline_of(), expiry_of()
        if end is not None:
            if end - now <= 0:
                if error is None:
                    error = TransportError(f"no time left to send to {transport.url}: the deadline passed")
                return Delivery(Outcome.GAVE_UP, error=error, attempts=attempt)
            timeout = min(timeout, end - now)
        if expiry is not None and expiry <= now:
            return Delivery(Outcome.TOO_OLD, error=error, attempts=attempt)
        hooks.attempt()
        started = clock()
        try:
            result = transport.send(body, protocol=protocol, attempt=attempt, timeout=timeout)
        except NonRetryableReceiverError as exc:
            return _refused(exc, protocol, negotiator, attempt + 1, clock() - started)
        except RetryableReceiverError as exc:
            error = exc
        except TransportError as exc:
            # An attempt the deadline cut short failing without an answer (most often: its
            # shortened timeout ran out) says less than the full attempt's error before it.
            if error is None or timeout >= transport.timeout:
                error = exc
        else:
            outcome = Outcome.SENT
            if negotiator is not None and negotiator.observe(
                protocol, status_code=result.status_code, confirmed_v2=result.confirms_v2
            ):
                outcome = Outcome.FALLBACK
            return Delivery(outcome, result=result, attempts=attempt + 1, duration=clock() - started)
        attempt += 1
        delay = policy.delay(attempt, retry_after_of(error), rng)
        retry_at, end, expiry = clock() + delay, deadline_of(), expiry_of()
        if (end is not None and retry_at >= end) or (expiry is not None and retry_at >= expiry):
            logger.debug("not retrying %s: the next retry would come too late", transport.url)
            hooks.failed(error, attempt, None)
            late = Outcome.GAVE_UP if end is not None and retry_at >= end else Outcome.TOO_OLD
            return Delivery(late, error=error, attempts=attempt)
        hooks.failed(error, attempt, delay)
        if wait(delay):
            return Delivery(Outcome.GAVE_UP, error=error, attempts=attempt)


def _refused(
    error: NonRetryableReceiverError,
    protocol: str,
    negotiator: Negotiator | None,
    attempts: int,
    duration: float,
) -> Delivery:
    """Classify a 4xx answer other than 429."""
    if negotiator is not None and negotiator.observe(
        protocol, status_code=error.status_code, confirmed_v2=False
    ):
        outcome = Outcome.FALLBACK
    elif error.status_code == 413:
        outcome = Outcome.TOO_LARGE
    else:
        outcome = Outcome.REJECTED
    return Delivery(outcome, error=error, attempts=attempts, duration=duration)
