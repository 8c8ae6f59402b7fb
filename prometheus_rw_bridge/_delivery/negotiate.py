"""Which remote-write protocol to speak to one endpoint: a small, pure state machine.

``protocol="auto"`` starts with 2.0 and falls back to 1.0 when the receiver shows it does
not speak 2.0.  The 2.0 specification gives two signs:

* ``415 Unsupported Media Type``;
* a 2xx answer without any ``X-Prometheus-Remote-Write-*-Written`` header.  A 1.0
  receiver that ignores ``Content-Type`` decodes a 2.0 body as an *empty* 1.0 request
  (2.0 reserves fields 1 to 3 for exactly that), stores nothing and answers 204.
  Prometheus 2.42 does this.

We add a third: ``400 Bad Request`` while the endpoint has not yet confirmed 2.0, because
the specification tells senders to expect 400 rather than 415 from 1.x receivers.  Once a
2.0 request has been confirmed, a 400 means bad data and is the caller's business.

After a fallback the endpoint gets 1.0 for ``reprobe_after`` seconds, then one 2.0 request
probes again (a receiver may have been upgraded).  Every fallback asks the caller to send
the same data again as 1.0, so nothing is lost; a probe costs one extra request.

The caller (the pusher) owns the I/O: it asks :meth:`Negotiator.protocol` what to encode,
sends, and reports the outcome to :meth:`Negotiator.observe`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_REPROBE_AFTER", "PROTOCOLS", "Negotiator"]

PROTOCOLS = ("1.0", "2.0", "auto")
"""The values ``protocol=`` accepts."""

DEFAULT_REPROBE_AFTER = 3600.0
"""Seconds an ``auto`` endpoint stays on 1.0 after a fallback before 2.0 is tried again."""


class Negotiator:
    """Decide, per endpoint, whether the next request is 1.0 or 2.0.

    Thread-safe; cheap enough to consult before every request.

    Args:
        mode: ``"1.0"`` or ``"2.0"`` to always speak that version (never falling back),
            or ``"auto"`` to prefer 2.0 and fall back as the module docstring says.
        reprobe_after: seconds to stay on 1.0 after a fallback (``auto`` only); one hour by
            default, ``float("inf")`` to never probe again.
        clock: a monotonic clock in seconds; tests pass a fake one.

    Raises:
        ValueError: ``mode`` is not one of :data:`PROTOCOLS`, or ``reprobe_after`` is negative.
    """

    def __init__(
        self,
        mode: str,
        *,
        reprobe_after: float = DEFAULT_REPROBE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {mode!r}")
        if not reprobe_after >= 0:
            raise ValueError(f"reprobe_after must be a non-negative number of seconds, not {reprobe_after!r}")
        self._mode = mode
        self._reprobe_after = reprobe_after
        self._clock = clock
        self._lock = threading.Lock()
        self._fallback_until: float | None = None  # auto: on 1.0 until then
        self._confirmed = False  # auto: a 2.0 request got a *-Written header since the last fallback

    @property
    def mode(self) -> str:
        """The configured mode: ``"1.0"``, ``"2.0"`` or ``"auto"``."""
        return self._mode

    @property
    def confirmed_v2(self) -> bool:
        """Tell whether the receiver has confirmed a 2.0 request since the last fallback (``auto``)."""
        with self._lock:
            return self._confirmed

    def protocol(self) -> str:
        """Return the protocol of the next request: ``"1.0"`` or ``"2.0"``."""
        if self._mode != "auto":
            return self._mode
        with self._lock:
            if self._fallback_until is None:
                return "2.0"
            if self._clock() < self._fallback_until:
                return "1.0"
            self._fallback_until = None
            logger.info("Probing the receiver with remote-write 2.0 again")
            return "2.0"

    def observe(self, protocol_sent: str, *, status_code: int | None, confirmed_v2: bool) -> bool:
        """Record how the receiver answered a request; tell whether to resend the same data as 1.0.

        Args:
            protocol_sent: the protocol the request was encoded in.
            status_code: the HTTP status, or ``None`` when no answer came (timeout, refused).
            confirmed_v2: whether the answer carried any ``X-Prometheus-Remote-Write-*-Written``
                header (``SendResult.confirms_v2``).

        Returns:
            ``True`` when the receiver showed it does not speak 2.0 and the request's data must
            be sent again as 1.0 (only in ``auto`` mode, only for a 2.0 request).
        """
        if self._mode != "auto" or protocol_sent != "2.0" or status_code is None:
            return False
        with self._lock:
            if 200 <= status_code < 300:
                if confirmed_v2:
                    self._confirmed = True
                    return False
                reason = f"answered {status_code} without any X-Prometheus-Remote-Write-*-Written header"
            elif status_code == 415:
                reason = "answered 415 Unsupported Media Type"
            elif status_code == 400 and not self._confirmed:
                reason = "answered 400 Bad Request before ever confirming a 2.0 request"
            else:
                return False
            self._confirmed = False
            self._fallback_until = self._clock() + self._reprobe_after
        logger.warning(
            "The receiver %s, so it does not speak remote-write 2.0: resending as 1.0 and using 1.0 "
            "for the next %.0f s",
            reason,
            self._reprobe_after,
        )
        return True

    def __repr__(self) -> str:
        state = (
            "on 1.0 after a fallback"
            if self._fallback_until is not None
            else "confirmed"
            if self._confirmed
            else ""
        )
        return f"Negotiator(mode={self._mode!r}{', ' + state if state else ''})"
