"""``enable_remote_write()`` and :class:`RemoteWriteBridge`: the background pusher.

One collector thread wakes every ``interval`` seconds (on a fixed grid, so it never drifts),
collects the registry once, encodes it with one timestamp, and hands the compressed requests
to one :class:`~prometheus_rw_bridge._delivery.sender.EndpointSender` per endpoint.  Application
threads never wait on the network: ``enable_remote_write()`` returns at once, and only
``flush()`` and ``close()`` wait, each with a timeout.

Fork safety: after ``os.fork()`` a child inherits no running bridge.  Bridges are *off* in the
child (they log once at info and do nothing); call ``enable_remote_write()`` again in the child
to push from it.  This avoids two processes pushing the same series with the same labels.
A fork also waits (at most ``forks.FORK_WAIT`` seconds) until no collection is running, so the
child never inherits prometheus_client's locks held by one (``forks``; docs/architecture.md, "Forks").
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._config.settings import DEFAULT_INTERVAL, DEFAULT_MAX_SAMPLES_PER_SEND
from .._protocol.encode import Encoder
from .._protocol.registry import read
from . import forks
from .collection import CollectionMaker, debug_text
from .groups import EncoderGroup
from .ledger import BridgeStats
from .sender import EndpointSender

logger = logging.getLogger(__name__)

__all__ = ["BridgeStats", "RemoteWriteBridge"]


def next_tick(start: float, tick: int, now: float, interval: float) -> tuple[int, float]:
    """Return the next tick number after ``tick`` and the seconds until it.

    Ticks sit on the grid ``start + n * interval``, so time spent collecting never adds
    up into drift; ticks already missed (a suspended process, a collection longer than the
    interval) are skipped rather than run back to back.
    """
    tick += 1
    due = start + tick * interval
    if due <= now:
        tick += int((now - due) // interval) + 1
        due = start + tick * interval
    return tick, due - now


class RemoteWriteBridge:
    """Pushes a registry to one or more remote-write endpoints from a background thread.

    Create one with :func:`prometheus_rw_bridge.enable_remote_write`.  A bridge is a context
    manager; leaving the ``with`` block closes it.
    """

    def __init__(
        self,
        registry: Any,
        senders: Sequence[EndpointSender],
        *,
        encoder: Encoder | None = None,
        interval: float = DEFAULT_INTERVAL,
        max_samples_per_send: int = DEFAULT_MAX_SAMPLES_PER_SEND,
        max_bytes_per_send: int | None = None,
        stale_on_close: bool = True,
        debug: bool = False,
        encoder_v2: Any = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        start: bool = True,
        disabled_reason: str | None = None,
        groups: Sequence[EncoderGroup] | None = None,
    ) -> None:
        self._registry = registry
        self._senders = list(senders)
        if groups is None:  # one group: every sender is sent what ``encoder`` (and ``encoder_v2``) make
            if encoder is None:
                raise TypeError("RemoteWriteBridge needs an encoder, or groups of senders and encoders")
            groups = [EncoderGroup(self._senders, encoder, encoder_v2)]
        self._interval = interval
        self._stale_on_close = stale_on_close
        self._debug = debug
        self._clock = clock
        self._wall_clock = wall_clock
        self._makers = [  # one per group of endpoints sent the same series (relabel rules)
            CollectionMaker(
                group.senders,
                encoder=group.encoder,
                encoder_v2=group.encoder_v2,
                max_samples=max_samples_per_send,
                max_bytes=max_bytes_per_send,
                debug=debug,
                clock=clock,
                to="" if len(groups) == 1 else ", ".join(sender.url for sender in group.senders),
            )
            for group in groups
        ]
        self._seq = 0  # of the last collection made
        self.disabled_reason = disabled_reason
        self._collect_lock = threading.Lock()
        self._collecting_in: int | None = None  # the thread ident running a collection
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = disabled_reason is not None
        self._flushed_seq = 0  # the newest collection a flush() has reported on
        self._last_ts = 0
        self._collections = 0
        self._collection_errors = 0
        self._pid = os.getpid()
        self._inherited = False  # set in a forked child: this bridge belongs to the parent
        self._thread: threading.Thread | None = None
        self._self_metrics: Any = None
        forks.track(self)
        if debug and disabled_reason is None:
            debug_text(b"")  # imports the decoder here: no thread that pushes may import
        if disabled_reason is None and start:
            self.start()

    def start(self) -> None:
        """Start the collector thread (the first collection happens at once) and the exit hook."""
        if self._closed or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="prometheus-rw-bridge", daemon=True)
        self._thread.start()
        atexit.register(self._atexit)

    def register_self_metrics(self) -> None:
        """Add the ``prometheus_remote_storage_*`` self-metrics to the pushed registry."""
        register = getattr(self._registry, "register", None)
        if self._self_metrics is not None or register is None:
            return
        from .selfmetrics import SelfMetricsCollector

        collector = SelfMetricsCollector(lambda: () if self._inherited else self._senders)
        register(collector)
        self._self_metrics = collector

    @classmethod
    def disabled(cls, reason: str) -> RemoteWriteBridge:
        """A bridge that does nothing; every method is a harmless no-op."""
        return cls(None, (), encoder=Encoder(job="", instance=""), disabled_reason=reason)

    # -- public API ------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether this bridge pushes (false when disabled, closed, or inherited across fork)."""
        return not self._closed

    @property
    def endpoints(self) -> list[str]:
        """The endpoints' URLs, credentials removed."""
        return [sender.url for sender in self._senders]

    @property
    def stats(self) -> BridgeStats:
        """Counters summed over all endpoints; see :class:`BridgeStats`."""
        per = [sender.stats() for sender in self._senders]
        return BridgeStats.summed(
            per, collections=self._collections, collection_errors=self._collection_errors
        )

    def endpoint_stats(self) -> list[Any]:
        """Per-endpoint counters (``_delivery.ledger.EndpointStats``)."""
        return [sender.stats() for sender in self._senders]

    def flush(self, timeout: float | None = None, *, collect: bool = True) -> bool:
        """Collect now, then wait until everything queued so far is delivered.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes.
            collect: False waits for what is queued without collecting first.

        Returns:
            True if every endpoint received everything queued since the previous ``flush()``;
            False on timeout, when some of it was dropped (a 4xx answer, a full queue), or when
            the bridge is disabled or closed.
        """
        if self._closed:
            return False
        deadline = None if timeout is None else self._clock() + timeout
        seq = self._collect_once(deadline=deadline) if collect else self._seq
        if seq is None:  # a collection still running elsewhere outlasted the timeout
            return False
        with self._state_lock:
            since, self._flushed_seq = self._flushed_seq, max(self._flushed_seq, seq)
        return self._wait_all(seq, deadline) and not any(s.dropped_after(since) for s in self._senders)

    def close(self, timeout: float = 5.0) -> None:
        """Push one last collection, then stale markers for every series sent, then stop.

        Idempotent; also runs at interpreter exit.  Returns within ``timeout`` seconds even
        when a receiver accepts connections and never answers.
        """
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        deadline = self._clock() + timeout
        try:
            atexit.unregister(self._atexit)
        except Exception:
            pass
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - self._clock()))
        try:
            if self._collect_once(final=True, deadline=deadline) is None:
                logger.warning(
                    "Remote-write bridge closed without a final push: a collection still running "
                    "outlasted the %.1fs close deadline",
                    timeout,
                )
        except Exception:
            logger.error("Final remote-write collection failed", exc_info=True)
        for sender in self._senders:
            sender.stop(deadline)
        if self._self_metrics is not None:
            try:
                self._registry.unregister(self._self_metrics)
            except Exception:  # already gone, or a registry without unregister
                pass
        _unregister(self)

    def __enter__(self) -> RemoteWriteBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "disabled" if self.disabled_reason else ("closed" if self._closed else "running")
        return f"<RemoteWriteBridge {state} endpoints={self.endpoints!r} interval={self._interval}>"

    # -- internals -------------------------------------------------------------------------

    def _atexit(self) -> None:
        try:
            self.close()
        except Exception:  # never let our shutdown break the host's
            logger.error("Closing the remote-write bridge at exit failed", exc_info=True)

    def _run(self) -> None:
        """Collect on a fixed grid of ``interval`` seconds; the first collection at once."""
        start = self._clock()
        tick = 0
        while True:
            try:
                self._collect_once()
            except Exception:
                logger.error("Remote-write collection failed; will retry next interval", exc_info=True)
            tick, delay = next_tick(start, tick, self._clock(), self._interval)
            if self._stop.wait(delay):
                return

    def _next_timestamp(self) -> int:
        """Now in milliseconds, but always after the previous collection's timestamp."""
        ts = int(self._wall_clock() * 1000)
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    def _collect_once(self, *, final: bool = False, deadline: float | None = None) -> int | None:
        """Collect, encode and queue one collection; return its seq, or None if ``deadline`` passed first.

        ``final`` (from ``close()``) adds stale markers for every series sent, when enabled.
        """
        wait = -1.0 if deadline is None else max(0.0, deadline - self._clock())
        if not self._collect_lock.acquire(timeout=wait):
            return None
        self._collecting_in = threading.get_ident()
        try:
            if os.getpid() != self._pid or (self._closed and not final):
                return self._seq
            timestamp_ms = self._next_timestamp()
            try:
                families: Iterable[Any] = read(self._registry)
                if sum(len(maker.protocols_wanted()) for maker in self._makers) > 1:
                    families = list(families)  # several encoders read them; else each goes once encoded
                self._make(families, timestamp_ms, stale_all=False)
                self._collections += 1
            except Exception:
                self._collection_errors += 1
                logger.error("Collecting the registry failed; nothing pushed this time", exc_info=True)
            if final and self._stale_on_close:
                self._make((), self._next_timestamp(), stale_all=True)
            return self._seq
        finally:
            self._collecting_in = None
            self._collect_lock.release()

    def _make(self, families: Iterable[Any], timestamp_ms: int, *, stale_all: bool) -> None:
        self._seq += 1
        for maker in self._makers:
            maker.make(families, timestamp_ms, self._seq, stale_all=stale_all)

    def _wait_all(self, seq: int, deadline: float | None) -> bool:
        ok = True
        for sender in self._senders:
            remaining = None if deadline is None else max(0.0, deadline - self._clock())
            ok = sender.wait_delivered(seq, remaining) and ok
        return ok

    def _after_fork_in_child(self) -> None:
        """Turn this bridge off in a forked child; see the module docstring."""
        self._collect_lock = threading.Lock()
        self._collecting_in = None
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._stop.set()
        self._thread = None
        # The self-metrics collector stays in the registry (its lock may have been held at the
        # fork, so unregistering could deadlock); it reports nothing for an inherited bridge.
        self._inherited = True
        was_running = not self._closed
        self._closed = True
        for sender in self._senders:
            sender.after_fork_in_child()
        if was_running:
            self.disabled_reason = "inherited across fork"


# The running bridge of each (registry, URLs), for enable_remote_write's reuse.
_active: dict[tuple[int, tuple[str, ...]], RemoteWriteBridge] = {}
_active_lock = threading.Lock()


def _unregister(bridge: RemoteWriteBridge) -> None:
    with _active_lock:
        for key, value in list(_active.items()):
            if value is bridge:
                del _active[key]


def _forget_active_in_child() -> None:
    """The parent's bridges are not this child's to reuse, and its lock may have been held."""
    global _active_lock
    _active_lock = threading.Lock()
    _active.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_active_in_child)
