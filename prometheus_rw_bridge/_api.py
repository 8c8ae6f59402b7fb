"""The entry points: ``enable_remote_write()`` (background) and ``push_to_remote_write()`` (once)."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY

from ._delivery import bridge as _bridge
from ._delivery.bridge import RemoteWriteBridge
from ._delivery.groups import group_by_rules, make_encoders
from ._exceptions import ConfigurationError, MissingDependencyError, SendError
from ._protocol import snappy as _snappy
from ._protocol.batching import Request, compress_requests
from ._protocol.families import ONE_SHOT_WARNINGS
from ._protocol.registry import read

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import RemoteWriteOptions

logger = logging.getLogger(__name__)

__all__ = ["enable_remote_write", "push_to_remote_write"]

_said_no_url = threading.Event()
_said_multiproc = threading.Event()
_said_missing: set[str] = set()
# What each running bridge was started with, to say when a later call's options are ignored.
_started_with: weakref.WeakKeyDictionary[RemoteWriteBridge, Any] = weakref.WeakKeyDictionary()
_said_ignored: weakref.WeakSet[RemoteWriteBridge] = weakref.WeakSet()


def _missing_dependency() -> str | None:
    """Say which runtime dependency the pusher cannot import, if any, and how to install it."""
    error = _snappy.missing()
    if error is None:
        try:
            import httpx  # noqa: F401
        except ImportError:
            error = MissingDependencyError("httpx", "HTTP requests")
    return None if error is None else str(error)


def enable_remote_write(
    url: str | Sequence[str] | None = None,
    *,
    registry: Any = REGISTRY,
    **options: Unpack[RemoteWriteOptions],
) -> RemoteWriteBridge:
    """Start pushing ``registry`` to ``url`` every ``interval`` seconds from a background thread.

    Returns at once.  Calling it again for the same registry and URL(s) returns the bridge
    already running.  Every option can also come from a ``PROMETHEUS_REMOTE_WRITE_*``
    environment variable; an explicit argument wins over the environment, which wins over
    the default (see the configuration reference).

    Without a URL anywhere, or without cramjam, nothing is pushed: the returned bridge is
    disabled, its methods are harmless no-ops, and the reason is logged once.

    Args:
        url: the receiver's remote-write URL (e.g. ``http://prometheus:9090/api/v1/write``),
            or a list of URLs (each endpoint gets its own queue).
        registry: any ``Collector``; prometheus_client's ``REGISTRY`` by default.
        **options: every option of the configuration reference (:class:`RemoteWriteOptions`):
            ``interval`` (seconds between pushes, default 15), ``job``, ``instance``,
            ``external_labels``, ``protocol``, auth and TLS options, ...

    Returns:
        The running (or disabled) :class:`RemoteWriteBridge`.

    Raises:
        ConfigurationError: a setting is malformed.
        SpoolLockedError: another process owns an endpoint's spool under ``spool_dir``.
    """
    from ._delivery.setup import build_bridge, resolve

    settings = resolve(url=url, **options)
    if not settings.enabled:
        return RemoteWriteBridge.disabled("disabled by configuration")
    if not settings.endpoints:
        if not _said_no_url.is_set():
            _said_no_url.set()
            logger.info(
                "prometheus-rw-bridge: no remote-write URL given (argument or PROMETHEUS_REMOTE_WRITE_URL); "
                "metrics stay scrape-only"
            )
        return RemoteWriteBridge.disabled("no URL configured")
    missing = _missing_dependency()
    if missing is not None:
        if missing not in _said_missing:
            _said_missing.add(missing)
            logger.warning("prometheus-rw-bridge: remote write is off (/metrics keeps working): %s", missing)
        return RemoteWriteBridge.disabled(missing)
    if registry is REGISTRY and os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not _said_multiproc.is_set():
        _said_multiproc.set()
        logger.warning(
            "prometheus-rw-bridge: PROMETHEUS_MULTIPROC_DIR is set, so this process's REGISTRY holds only "
            "its own share of the metrics; pushing it from every worker sends partial, duplicate series. "
            "Push the merged view from one process: see prometheus_rw_bridge.gunicorn"
        )
    key = (id(registry), tuple(endpoint.url for endpoint in settings.endpoints))
    with _bridge._active_lock:
        existing = _bridge._active.get(key)
        if existing is not None and existing.enabled:
            _say_if_ignored(existing, settings)
            return existing
        bridge = build_bridge(registry, settings)
        _bridge._active[key] = bridge
        _started_with[bridge] = settings
    return bridge


def _say_if_ignored(bridge: RemoteWriteBridge, settings: Any) -> None:
    """Warn once per bridge when a call for its registry and URLs brings other options."""
    first = _started_with.get(bridge)
    if first is None or first == settings or bridge in _said_ignored:
        return
    _said_ignored.add(bridge)
    logger.warning(
        "prometheus-rw-bridge: a bridge for this registry and %s is already running, so this "
        "enable_remote_write() call returns it and its other options are ignored; close() it "
        "first to change them",
        ", ".join(bridge.endpoints),
    )


def push_to_remote_write(
    url: str | Sequence[str] | None = None,
    *,
    registry: Any = REGISTRY,
    **options: Unpack[RemoteWriteOptions],
) -> None:
    """Collect ``registry`` once and push it synchronously, for cron jobs and serverless handlers.

    Every option can come from the environment as for :func:`enable_remote_write`.  Each
    endpoint gets ``timeout`` seconds in all (``PROMETHEUS_REMOTE_WRITE_TIMEOUT``, default 30),
    within which connection errors, timeouts, 5xx and 429 are retried (honouring
    ``Retry-After``); other 4xx are never retried.  Several endpoints are pushed in parallel.
    With ``protocol="auto"`` a receiver that turns out not to speak 2.0 gets the same data
    as 1.0.  With ``spool_dir`` the push is written to disk first: if it fails it still
    raises, and the next call (with the same ``spool_dir``) delivers it first, then its own.

    Args:
        url: the receiver's remote-write URL, or a list of URLs.
        registry: any ``Collector``; prometheus_client's ``REGISTRY`` by default.
        **options: the options of :func:`enable_remote_write` (:class:`RemoteWriteOptions`);
            those of the background thread (``interval``, the queues, ``stale_on_close``) have
            no effect here.

    Raises:
        ConfigurationError: a setting is malformed, or no URL is given anywhere.
        NonRetryableReceiverError: the receiver refused the data (message has its status and text).
        RetryableReceiverError: the receiver kept failing until the timeout.
        TransportError: the receiver could not be reached before the timeout.
        SpoolLockedError: another process (or push) owns an endpoint's spool under ``spool_dir``.
        MissingDependencyError: cramjam cannot be imported.
    """
    from ._delivery.oneshot import push_once
    from ._delivery.setup import make_spools, make_transports, resolve

    settings = resolve(url=url, **options)
    if not settings.enabled:
        logger.info("prometheus-rw-bridge: remote write is disabled by configuration; nothing pushed")
        return
    if not settings.endpoints:
        raise ConfigurationError("url: no remote-write URL given (argument or PROMETHEUS_REMOTE_WRITE_URL)")
    timestamp_ms, requests = _encode_once(registry, settings)
    endpoints = settings.endpoints
    # Built (and warmed up) here, not in the pool's threads, which must import nothing.
    transports = make_transports(endpoints)
    spools = make_spools(settings, transports)  # SpoolLockedError while another push runs

    def push(index: int) -> SendError | None:
        return push_once(
            endpoints[index],
            transports[index],
            mode=settings.protocol,
            timestamp_ms=timestamp_ms,
            requests=requests[index],
            max_bytes_per_send=settings.max_bytes_per_send,
            spool=spools[index],
        )

    if len(endpoints) == 1:
        outcomes = [push(0)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(endpoints), thread_name_prefix="prometheus-rw-bridge-push") as pool:
            outcomes = list(pool.map(push, range(len(endpoints))))
    errors = [error for error in outcomes if error is not None]
    for extra in errors[1:]:
        logger.error("Remote write failed: %s", extra)
    if errors:
        raise errors[0]


def _encode_once(registry: Any, settings: Any) -> tuple[int, list[dict[str, list[Request]]]]:
    """Collect once; return the timestamp and, per endpoint, the compressed requests of each
    protocol it may be sent.

    Endpoints with equal relabel rules share one encoding (``_delivery.groups``).
    """
    families = list(read(registry))
    timestamp_ms = int(time.time() * 1000)
    limit, max_bytes = settings.max_samples_per_send, settings.max_bytes_per_send
    per_endpoint: list[dict[str, list[Request]]] = [{} for _ in settings.endpoints]
    for rules, indices in group_by_rules(settings.endpoints):
        # A process pushing again and again warns once per problem.
        encoder, encoder_v2 = make_encoders(settings, rules, warned=ONE_SHOT_WARNINGS, track_staleness=False)
        encoded = encoder.encode(families, timestamp_ms)
        if encoded.dropped:
            # No counters outlive a one-shot push; the warnings said why, this says how many.
            logger.debug(
                "push_to_remote_write: samples left out as unsendable, by reason: %s", encoded.dropped
            )
        requests = {"1.0": compress_requests(encoded, "1.0", limit, metadata=True, max_bytes=max_bytes)}
        if encoder_v2 is not None:
            encoded_v2 = encoder_v2.encode(families, timestamp_ms)
            requests["2.0"] = compress_requests(encoded_v2, "2.0", limit, metadata=False, max_bytes=max_bytes)
        for index in indices:
            per_endpoint[index] = requests
    return timestamp_ms, per_endpoint
